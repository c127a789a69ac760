package tables

import (
	"bytes"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	t0      = time.UnixMilli(1_000_000_000)
	ended   = t0.Add(-time.Second)
	running = t0.Add(Lease)
)

func held(id uint64) []Holder { return []Holder{{ID: id, Expires: running}} }

func reg(ts ...Table) Registry { return Registry{Tables: ts} }

func ask(ns string) Request {
	return Request{Namespace: ns, Sets: 100, Holder: 7, Expires: t0.Add(StartLease), Current: -1}
}

func TestAcquire(t *testing.T) {
	me := Holder{ID: 7, Expires: t0.Add(StartLease)}
	tests := []struct {
		name  string
		reg   Registry
		req   Request
		want  Registry
		grant Grant
		ok    bool
	}{
		{
			name:  "an empty registry gives number 0, whose sets it empties",
			req:   ask("a"),
			want:  reg(Table{Number: 0, Namespace: "a", Sets: 100, Extent: 100, Holders: []Holder{me}}),
			grant: Grant{Number: 0, EmptyTo: 100}, ok: true,
		},
		{
			name:  "joins the table of its namespace",
			reg:   reg(Table{Number: 0, Namespace: "b", Sets: 5, Extent: 5, Holders: held(1)}, Table{Number: 1, Namespace: "a", Sets: 100, Extent: 100, Holders: held(2)}),
			req:   ask("a"),
			want:  reg(Table{Number: 0, Namespace: "b", Sets: 5, Extent: 5, Holders: held(1)}, Table{Number: 1, Namespace: "a", Sets: 100, Extent: 100, Holders: []Holder{{ID: 2, Expires: running}, me}}),
			grant: Grant{Number: 1}, ok: true,
		},
		{
			name:  "joining an abandoned table of its namespace stops its emptying",
			reg:   reg(Table{Number: 3, Namespace: "a", Sets: 100, Extent: 100, Cursor: 50, Holders: []Holder{{ID: 2, Expires: ended}}}),
			req:   ask("a"),
			want:  reg(Table{Number: 3, Namespace: "a", Sets: 100, Extent: 100, Holders: []Holder{me}}),
			grant: Grant{Number: 3}, ok: true,
		},
		{
			name:  "a renewal keeps one entry per holder and drops leases that ended",
			reg:   reg(Table{Number: 0, Namespace: "a", Sets: 100, Extent: 100, Holders: []Holder{{ID: 7, Expires: running}, {ID: 8, Expires: ended}, {ID: 9, Expires: running}}}),
			req:   ask("a"),
			want:  reg(Table{Number: 0, Namespace: "a", Sets: 100, Extent: 100, Holders: []Holder{{ID: 9, Expires: running}, me}}),
			grant: Grant{Number: 0}, ok: true,
		},
		{
			name:  "takes its current table back when the registry lost it",
			reg:   reg(Table{Number: 0, Namespace: "b", Sets: 5, Extent: 5, Holders: held(1)}),
			req:   Request{Namespace: "a", Sets: 100, Holder: 7, Expires: me.Expires, Current: 4},
			want:  reg(Table{Number: 0, Namespace: "b", Sets: 5, Extent: 5, Holders: held(1)}, Table{Number: 4, Namespace: "a", Sets: 100, Extent: 100, Holders: []Holder{me}}),
			grant: Grant{Number: 4}, ok: true,
		},
		{
			name:  "its current number gone to another namespace: another table",
			reg:   reg(Table{Number: 0, Namespace: "b", Sets: 5, Extent: 5, Holders: held(1)}),
			req:   Request{Namespace: "a", Sets: 100, Holder: 7, Expires: me.Expires, Current: 0},
			want:  reg(Table{Number: 0, Namespace: "b", Sets: 5, Extent: 5, Holders: held(1)}, Table{Number: 1, Namespace: "a", Sets: 100, Extent: 100, Holders: []Holder{me}}),
			grant: Grant{Number: 1, EmptyTo: 100}, ok: true,
		},
		{
			name:  "takes the free table with the lowest number, empty already",
			reg:   reg(Table{Number: 5}, Table{Number: 0, Namespace: "b", Sets: 5, Extent: 5, Holders: held(1)}, Table{Number: 2}),
			req:   ask("a"),
			want:  reg(Table{Number: 5}, Table{Number: 0, Namespace: "b", Sets: 5, Extent: 5, Holders: held(1)}, Table{Number: 2, Namespace: "a", Sets: 100, Extent: 100, Holders: []Holder{me}}),
			grant: Grant{Number: 2}, ok: true,
		},
		{
			name:  "prefers a free table to an abandoned one",
			reg:   reg(Table{Number: 0, Namespace: "b", Sets: 5, Extent: 5}, Table{Number: 1}),
			req:   ask("a"),
			want:  reg(Table{Number: 0, Namespace: "b", Sets: 5, Extent: 5}, Table{Number: 1, Namespace: "a", Sets: 100, Extent: 100, Holders: []Holder{me}}),
			grant: Grant{Number: 1}, ok: true,
		},
		{
			name:  "takes over a table whose leases all ended and empties what is left of it",
			reg:   reg(Table{Number: 0, Namespace: "b", Sets: 300, Extent: 300, Cursor: 256, Holders: []Holder{{ID: 1, Expires: ended}}}),
			req:   ask("a"),
			want:  reg(Table{Number: 0, Namespace: "a", Sets: 100, Extent: 100, Holders: []Holder{me}}),
			grant: Grant{Number: 0, EmptyFrom: 256, EmptyTo: 300}, ok: true,
		},
		{
			name:  "takes over a table all its holders released",
			reg:   reg(Table{Number: 0, Namespace: "b", Sets: 50, Extent: 50}),
			req:   ask("a"),
			want:  reg(Table{Number: 0, Namespace: "a", Sets: 100, Extent: 100, Holders: []Holder{me}}),
			grant: Grant{Number: 0, EmptyTo: 50}, ok: true,
		},
		{
			name: "takes over the abandoned table with least left to empty",
			reg: reg(Table{Number: 0, Namespace: "b", Sets: 50, Extent: 50},
				Table{Number: 1, Namespace: "c", Sets: 500, Extent: 500, Cursor: 480}),
			req: ask("a"),
			want: reg(Table{Number: 0, Namespace: "b", Sets: 50, Extent: 50},
				Table{Number: 1, Namespace: "a", Sets: 100, Extent: 100, Holders: []Holder{me}}),
			grant: Grant{Number: 1, EmptyFrom: 480, EmptyTo: 500}, ok: true,
		},
		{
			name:  "never takes a held table: a new number, the lowest unused",
			reg:   reg(Table{Number: 0, Namespace: "b", Sets: 5, Extent: 5, Holders: held(1)}, Table{Number: 2, Namespace: "c", Sets: 5, Extent: 5, Holders: held(1)}),
			req:   ask("a"),
			want:  reg(Table{Number: 0, Namespace: "b", Sets: 5, Extent: 5, Holders: held(1)}, Table{Number: 2, Namespace: "c", Sets: 5, Extent: 5, Holders: held(1)}, Table{Number: 1, Namespace: "a", Sets: 100, Extent: 100, Holders: []Holder{me}}),
			grant: Grant{Number: 1, EmptyTo: 100}, ok: true,
		},
		{
			name: "MaxTables tables all held: no table",
			reg:  heldTables(MaxTables),
			req:  ask("a"),
			want: heldTables(MaxTables),
		},
		{
			name: "an empty namespace: no table",
			req:  ask(""),
		},
		{
			name: "a namespace longer than MaxNamespace: no table",
			req:  ask(strings.Repeat("a", MaxNamespace+1)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := Encode(tt.reg)
			got, g, ok := Acquire(tt.reg, tt.req, t0)
			if ok != tt.ok || g != tt.grant {
				t.Errorf("grant %+v, %v; want %+v, %v", g, ok, tt.grant, tt.ok)
			}
			if !reflect.DeepEqual(norm(got), norm(tt.want)) {
				t.Errorf("registry\n got %+v\nwant %+v", got, tt.want)
			}
			if !bytes.Equal(Encode(tt.reg), before) {
				t.Error("Acquire changed the registry it was given")
			}
		})
	}
}

func heldTables(n int) Registry {
	var r Registry
	for i := range n {
		r.Tables = append(r.Tables, Table{Number: uint32(i), Namespace: "n" + strconv.Itoa(i), Sets: 1, Extent: 1, Holders: held(1)})
	}
	return r
}

// norm makes empty and nil lists compare equal.
func norm(r Registry) Registry {
	r = clone(r)
	for i := range r.Tables {
		if len(r.Tables[i].Holders) == 0 {
			r.Tables[i].Holders = nil
		}
	}
	if len(r.Tables) == 0 {
		r.Tables = nil
	}
	return r
}

func TestAcquireBoundsHolders(t *testing.T) {
	var hs []Holder
	for i := range MaxHolders {
		hs = append(hs, Holder{ID: uint64(100 + i), Expires: running.Add(time.Duration(i) * time.Second)})
	}
	hs[5].Expires = running.Add(-time.Millisecond) // ends first
	r := reg(Table{Number: 0, Namespace: "a", Sets: 100, Extent: 100, Holders: hs})
	got, _, ok := Acquire(r, ask("a"), t0)
	if !ok {
		t.Fatal("no table")
	}
	h := got.Tables[0].Holders
	if len(h) != MaxHolders || h[len(h)-1].ID != 7 {
		t.Fatalf("holders %+v", h)
	}
	for _, x := range h {
		if x.ID == 105 {
			t.Error("the lease that ends first was kept")
		}
	}
}

func TestRelease(t *testing.T) {
	base := reg(Table{Number: 2, Namespace: "a", Sets: 9, Extent: 9, Holders: []Holder{{ID: 1, Expires: running}, {ID: 7, Expires: running}}})
	tests := []struct {
		name    string
		number  uint32
		holder  uint64
		changed bool
		holders []Holder
	}{
		{"takes the holder out", 2, 7, true, held(1)},
		{"a holder that is not there changes nothing", 2, 8, false, base.Tables[0].Holders},
		{"a table that is not there changes nothing", 3, 7, false, base.Tables[0].Holders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := Release(base, tt.number, tt.holder)
			if changed != tt.changed || !reflect.DeepEqual(got.Tables[0].Holders, tt.holders) {
				t.Errorf("changed %v, holders %+v", changed, got.Tables[0].Holders)
			}
			if len(base.Tables[0].Holders) != 2 {
				t.Error("Release changed the registry it was given")
			}
		})
	}
}

func TestNextDrain(t *testing.T) {
	tests := []struct {
		name  string
		reg   Registry
		chunk Chunk
		ok    bool
	}{
		{"nothing to empty in an empty registry", reg(), Chunk{}, false},
		{"a held table is not emptied", reg(Table{Number: 0, Namespace: "a", Extent: 900, Holders: held(1)}), Chunk{}, false},
		{"a free table is not emptied", reg(Table{Number: 0}), Chunk{}, false},
		{"a table whose leases ended: at most DrainChunk sets from the start",
			reg(Table{Number: 0, Namespace: "a", Holders: held(1)}, Table{Number: 1, Namespace: "b", Extent: 900, Holders: []Holder{{ID: 1, Expires: ended}}}),
			Chunk{Number: 1, Namespace: "b", From: 0, To: DrainChunk}, true},
		{"resumes at the cursor", reg(Table{Number: 4, Namespace: "b", Extent: 900, Cursor: 512}),
			Chunk{Number: 4, Namespace: "b", From: 512, To: 768}, true},
		{"the last chunk ends at the extent", reg(Table{Number: 4, Namespace: "b", Extent: 900, Cursor: 768}),
			Chunk{Number: 4, Namespace: "b", From: 768, To: 900}, true},
		{"a table of no sets: an empty chunk, to free it", reg(Table{Number: 4, Namespace: "b"}),
			Chunk{Number: 4, Namespace: "b"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := NextDrain(tt.reg, t0)
			if c != tt.chunk || ok != tt.ok {
				t.Errorf("got %+v, %v; want %+v, %v", c, ok, tt.chunk, tt.ok)
			}
		})
	}
}

func TestDrained(t *testing.T) {
	abandoned := Table{Number: 4, Namespace: "b", Sets: 900, Extent: 900, Cursor: 256, Holders: []Holder{{ID: 1, Expires: ended}}}
	tests := []struct {
		name    string
		reg     Registry
		chunk   Chunk
		changed bool
		want    Table
	}{
		{"moves the cursor past the chunk", reg(abandoned), Chunk{4, "b", 256, 512}, true,
			Table{Number: 4, Namespace: "b", Sets: 900, Extent: 900, Cursor: 512, Holders: abandoned.Holders}},
		{"the last chunk frees the table", reg(abandoned), Chunk{4, "b", 256, 900}, true, Table{Number: 4}},
		{"a chunk another plugin emptied first changes nothing", reg(abandoned), Chunk{4, "b", 0, 256}, false, abandoned},
		{"a table another namespace took changes nothing", reg(Table{Number: 4, Namespace: "c", Extent: 900, Cursor: 256}), Chunk{4, "b", 256, 512}, false,
			Table{Number: 4, Namespace: "c", Extent: 900, Cursor: 256}},
		{"a table held again changes nothing", reg(Table{Number: 4, Namespace: "b", Extent: 900, Cursor: 256, Holders: held(2)}), Chunk{4, "b", 256, 512}, false,
			Table{Number: 4, Namespace: "b", Extent: 900, Cursor: 256, Holders: held(2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := Drained(tt.reg, tt.chunk, t0)
			if changed != tt.changed || !reflect.DeepEqual(norm(got).Tables[0], norm(reg(tt.want)).Tables[0]) {
				t.Errorf("changed %v, table %+v; want %v, %+v", changed, got.Tables[0], tt.changed, tt.want)
			}
		})
	}
	if _, changed := Drained(reg(), Chunk{Number: 1, Namespace: "b"}, t0); changed {
		t.Error("a table that is not there was changed")
	}
}

// Twenty reconfigurations: each new configuration starts (a canary that
// never ticks, then two workers) while the old one runs; the old one's
// workers are then released and the survivors empty what was left, a chunk a
// tick. The numbers in use never grow past three, so the keys do not grow.
func TestReconfigurationsReuseTables(t *testing.T) {
	const sets = 500
	var r Registry
	now := t0
	seen := map[uint32]bool{}
	var prev []uint64
	prevTable := uint32(0)
	for i := range 20 {
		ns := "ns" + strconv.Itoa(i)
		var ids []uint64
		var table uint32
		for w := range 3 { // the canary, then two workers
			id := uint64(i*10 + w)
			var g Grant
			var ok bool
			if r, g, ok = Acquire(r, Request{Namespace: ns, Sets: sets, Holder: id, Expires: now.Add(StartLease), Current: -1}, now); !ok {
				t.Fatalf("reconfiguration %d: no table", i)
			}
			table = g.Number
			if w > 0 {
				ids = append(ids, id)
			}
		}
		seen[table] = true
		for _, id := range prev {
			r, _ = Release(r, prevTable, id)
		}
		// Ticks of the new workers: renewals and emptying, for 12 s.
		for range 12 {
			now = now.Add(time.Second)
			for _, id := range ids {
				r, _, _ = Acquire(r, Request{Namespace: ns, Sets: sets, Holder: id, Expires: now.Add(Lease), Current: int64(table)}, now)
				if c, ok := NextDrain(r, now); ok {
					r, _ = Drained(r, c, now)
				}
			}
		}
		prev, prevTable = ids, table
	}
	if len(seen) > 3 || len(r.Tables) > 3 {
		t.Errorf("numbers used %v, tables %d: want at most 3", seen, len(r.Tables))
	}
	for _, tb := range r.Tables {
		if tb.Namespace != "" && tb.Namespace != "ns19" {
			t.Errorf("table %d still holds %s", tb.Number, tb.Namespace)
		}
	}
}

func TestEncodeDecode(t *testing.T) {
	full := reg(
		Table{Number: 0, Namespace: "0123456789abcdef", Sets: 2500, Extent: 2600, Cursor: 256, Holders: []Holder{{ID: 1<<64 - 1, Expires: t0}, {ID: 2, Expires: running}}},
		Table{Number: 63},
	)
	got, ok := Decode(Encode(full))
	if !ok || !reflect.DeepEqual(norm(got), norm(full)) {
		t.Fatalf("round trip: %+v, %v", got, ok)
	}
	if got, ok := Decode(Encode(Registry{})); !ok || len(got.Tables) != 0 {
		t.Errorf("an empty registry: %+v, %v", got, ok)
	}
	raw := Encode(full)
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), raw...)) }
	tests := []struct {
		name string
		raw  []byte
	}{
		{"no value", nil},
		{"an unknown format", mutate(func(b []byte) []byte { b[0] = 2; return b })},
		{"more tables than MaxTables", mutate(func(b []byte) []byte { b[1] = MaxTables + 1; return b })},
		{"more tables than the value holds", mutate(func(b []byte) []byte { b[1] = 3; return b })},
		{"a truncated value", raw[:len(raw)-1]},
		{"bytes after the last table", append(append([]byte(nil), raw...), 0)},
		{"a namespace longer than MaxNamespace", Encode(reg(Table{Number: 0, Namespace: strings.Repeat("a", MaxNamespace+1)}))},
		{"more holders than MaxHolders", Encode(reg(Table{Number: 0, Namespace: "a", Holders: make([]Holder, MaxHolders+1)}))},
		{"a number out of range", Encode(reg(Table{Number: MaxTables}))},
		{"a number twice", Encode(reg(Table{Number: 1}, Table{Number: 1}))},
		{"a namespace twice", Encode(reg(Table{Number: 1, Namespace: "a"}, Table{Number: 2, Namespace: "a"}))},
		{"a cursor past the extent", Encode(reg(Table{Number: 1, Namespace: "a", Extent: 5, Cursor: 6}))},
	}
	for _, tt := range tests {
		if got, ok := Decode(tt.raw); ok || len(got.Tables) != 0 {
			t.Errorf("%s: decoded to %+v, want an unreadable (empty) registry", tt.name, got)
		}
	}
}

// The largest registry is bounded: every VM reads it once a second.
func TestRegistrySizeBound(t *testing.T) {
	var r Registry
	for i := range MaxTables {
		tb := Table{Number: uint32(i), Namespace: strings.Repeat(strconv.Itoa(i%10), MaxNamespace)}
		for j := range MaxHolders {
			tb.Holders = append(tb.Holders, Holder{ID: uint64(j), Expires: running})
		}
		tb.Namespace = tb.Namespace[:MaxNamespace-2] + strconv.Itoa(10+i)
		r.Tables = append(r.Tables, tb)
	}
	raw := Encode(r)
	if _, ok := Decode(raw); !ok {
		t.Fatal("the largest registry does not decode")
	}
	if len(raw) > 22<<10 {
		t.Errorf("the largest registry is %d bytes", len(raw))
	}
}

func TestID(t *testing.T) {
	if ID(0) != "t0" || ID(63) != "t63" {
		t.Errorf("ID: %q %q", ID(0), ID(63))
	}
}
