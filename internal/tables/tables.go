// Package tables decides which table of cache sets in shared data each plugin
// uses, so that reconfiguration does not grow memory without bound.
//
// Shared data has no delete: a key, once set, lives as long as the vm_id
// (under Istio, as long as the proxy), and setting an empty value frees only
// the value. The cache of one configuration (one namespace, see
// config.CacheNamespace) is a table of cache.Sets keys. If tables were named
// after namespaces, every configuration change would leave its old table, and
// every JWT in it, behind for good. Instead tables are numbered, and a
// registry in one shared-data key (Key) says which namespace uses which
// number and which plugins (holders) still use it. A holder renews its lease
// while it runs and releases it when Envoy is done with it; a table whose
// holders are all gone is emptied, a bounded chunk per tick, by any plugin
// that notices, and its number is then reused. So the keys never outnumber
// MaxTables tables of the largest size used, and values are freed once their
// table is abandoned.
//
// Records carry the full token hash, keyed by the namespace, so a table that
// is emptied or taken over under a plugin that is in fact alive costs it cache
// misses, never a wrong answer.
package tables

import (
	"encoding/binary"
	"strconv"
	"time"

	"github.com/phantom-token/envoy-phantom-token/internal/cache"
)

// Key is the registry's shared-data key. The registry is part of the
// cache.Version wire format: a change to its layout bumps that version.
const Key = "phantom-token/" + cache.Version + "/tables"

// Bounds of the registry.
const (
	// MaxTables bounds the tables, so the keys: a plugin that finds every
	// table held falls back to a table named after its namespace.
	MaxTables = 64
	// MaxHolders bounds the holders of one table; when it is full the holder
	// whose lease ends first makes room.
	MaxHolders = 16
	// MaxNamespace bounds a namespace's length.
	MaxNamespace = 64
	// DrainChunk is how many sets a plugin empties in one go.
	DrainChunk = 256
)

// Leases. A plugin renews its lease every RenewEvery, and first on its first
// tick (a second after start): a plugin that never ticks (the canary VM with
// which Envoy checks a new configuration, destroyed without OnPluginDone)
// lets its short first lease lapse soon, so that the table it took is not
// kept from reuse for long.
const (
	StartLease = 3 * time.Second
	Lease      = 30 * time.Second
	RenewEvery = 10 * time.Second
)

// format is the first byte of the registry's value.
const format byte = 1

// Holder is a plugin (one configuration in one VM) that uses a table.
type Holder struct {
	ID uint64
	// Expires is when its lease ends (kept to the millisecond).
	Expires time.Time
}

// Table is one numbered table of sets.
type Table struct {
	Number uint32
	// Namespace is the configuration whose records the table holds; "" for
	// a free table, which is empty.
	Namespace string
	// Sets is the namespace's number of sets.
	Sets uint32
	// Extent is how many sets, from 0, may hold records: what must be
	// emptied before the table is free.
	Extent uint32
	// Cursor: the sets below it have been emptied since the table was left.
	Cursor  uint32
	Holders []Holder
}

// held reports whether some holder's lease runs at now.
func (t *Table) held(now time.Time) bool {
	for _, h := range t.Holders {
		if now.Before(h.Expires) {
			return true
		}
	}
	return false
}

// Registry is the list of tables.
type Registry struct {
	Tables []Table
}

// ID is the table's name in the set keys (see cache.SetKey). It cannot be
// mistaken for a namespace, which is hexadecimal.
func ID(number uint32) string { return "t" + strconv.FormatUint(uint64(number), 10) }

// Request is what a plugin asks the registry for.
type Request struct {
	Namespace string
	Sets      uint32
	Holder    uint64
	// Expires is the end of the lease it asks for.
	Expires time.Time
	// Current is the number of the table the plugin uses, or -1.
	Current int64
}

// Grant is the table a plugin is to use. The sets [EmptyFrom, EmptyTo) may
// hold another namespace's records: the plugin empties them before use.
type Grant struct {
	Number             uint32
	EmptyFrom, EmptyTo uint32
}

// Acquire finds the table of the request's namespace, at start and at every
// renewal, and makes the plugin one of its holders:
//
//	the registry holds                              the plugin gets
//	a table of its namespace                        that table; emptying it stops
//	no such table, but not the plugin's current     its current table again (the
//	  table's number either                           registry was lost)
//	a free table                                    the free table with the lowest number
//	a table whose leases all ended                  the one with least left to empty; it
//	                                                  empties what is left
//	fewer than MaxTables tables                     a new number; it empties its sets
//	                                                  (a lost registry may have used it)
//	MaxTables tables, all held                      nothing: ok is false
//
// A table the plugin joins drops the holders whose lease ended.
func Acquire(r Registry, q Request, now time.Time) (out Registry, g Grant, ok bool) {
	if q.Namespace == "" || len(q.Namespace) > MaxNamespace {
		return r, Grant{}, false
	}
	out = clone(r)
	i := -1
	for j := range out.Tables {
		if out.Tables[j].Namespace == q.Namespace {
			i = j
			break
		}
	}
	switch {
	case i >= 0:
		t := &out.Tables[i]
		t.Cursor = 0
		t.Extent = max(t.Extent, q.Sets)
		t.Sets = q.Sets
		g = Grant{Number: t.Number}
	case q.Current >= 0 && q.Current < MaxTables && out.find(uint32(q.Current)) < 0:
		out.Tables = append(out.Tables, Table{Number: uint32(q.Current), Namespace: q.Namespace, Sets: q.Sets, Extent: q.Sets})
		i = len(out.Tables) - 1
		g = Grant{Number: uint32(q.Current)}
	default:
		free, unheld := -1, -1
		for j := range out.Tables {
			t := &out.Tables[j]
			switch {
			case t.Namespace == "":
				if free < 0 || t.Number < out.Tables[free].Number {
					free = j
				}
			case !t.held(now):
				if unheld < 0 || t.Extent-t.Cursor < out.Tables[unheld].Extent-out.Tables[unheld].Cursor {
					unheld = j
				}
			}
		}
		switch {
		case free >= 0:
			i = free
			g = Grant{Number: out.Tables[i].Number}
		case unheld >= 0:
			i = unheld
			t := out.Tables[i]
			g = Grant{Number: t.Number, EmptyFrom: t.Cursor, EmptyTo: t.Extent}
		case len(out.Tables) < MaxTables:
			n := out.unused()
			out.Tables = append(out.Tables, Table{Number: n})
			i = len(out.Tables) - 1
			g = Grant{Number: n, EmptyTo: q.Sets}
		default:
			return r, Grant{}, false
		}
		out.Tables[i] = Table{Number: g.Number, Namespace: q.Namespace, Sets: q.Sets, Extent: q.Sets}
	}
	t := &out.Tables[i]
	t.Holders = renew(t.Holders, q.Holder, q.Expires, now)
	return out, g, true
}

// renew sets holder id's lease, drops the holders whose lease ended, and
// makes room by dropping the one whose lease ends first when the list is full.
func renew(hs []Holder, id uint64, expires, now time.Time) []Holder {
	out := make([]Holder, 0, len(hs)+1)
	for _, h := range hs {
		if h.ID != id && now.Before(h.Expires) {
			out = append(out, h)
		}
	}
	if len(out) >= MaxHolders {
		first := 0
		for j, h := range out {
			if h.Expires.Before(out[first].Expires) {
				first = j
			}
		}
		out = append(out[:first], out[first+1:]...)
	}
	return append(out, Holder{ID: id, Expires: expires.Truncate(time.Millisecond)})
}

// Release takes the holder out of table number's holders (Envoy is done with
// the plugin). changed is false when it was not there.
func Release(r Registry, number uint32, holder uint64) (out Registry, changed bool) {
	i := r.find(number)
	if i < 0 {
		return r, false
	}
	out = clone(r)
	t := &out.Tables[i]
	for j, h := range t.Holders {
		if h.ID == holder {
			t.Holders = append(t.Holders[:j], t.Holders[j+1:]...)
			return out, true
		}
	}
	return r, false
}

// Chunk is a run of sets of a table to empty.
type Chunk struct {
	Number    uint32
	Namespace string
	From, To  uint32
}

// NextDrain is the next chunk of an abandoned table (one whose leases all
// ended) to empty: at most DrainChunk sets from its cursor. ok is false when
// no table is abandoned.
func NextDrain(r Registry, now time.Time) (c Chunk, ok bool) {
	for i := range r.Tables {
		t := &r.Tables[i]
		if t.Namespace != "" && !t.held(now) {
			return Chunk{Number: t.Number, Namespace: t.Namespace, From: t.Cursor, To: min(t.Cursor+DrainChunk, max(t.Extent, t.Cursor))}, true
		}
	}
	return Chunk{}, false
}

// Drained records that chunk c was emptied: the table's cursor moves past it,
// and a table emptied to its extent becomes free. changed is false when the
// table has changed since (another plugin emptied the chunk, or took the
// table): the emptying then only cost that plugin misses.
func Drained(r Registry, c Chunk, now time.Time) (out Registry, changed bool) {
	i := r.find(c.Number)
	if i < 0 {
		return r, false
	}
	if t := &r.Tables[i]; t.Namespace != c.Namespace || t.Namespace == "" || t.held(now) || t.Cursor != c.From {
		return r, false
	}
	out = clone(r)
	t := &out.Tables[i]
	t.Cursor = c.To
	if t.Cursor >= t.Extent {
		*t = Table{Number: t.Number}
	}
	return out, true
}

// find is the index of table number, or -1.
func (r Registry) find(number uint32) int {
	for i := range r.Tables {
		if r.Tables[i].Number == number {
			return i
		}
	}
	return -1
}

// unused is the lowest number no table has.
func (r Registry) unused() uint32 {
	for n := uint32(0); ; n++ {
		if r.find(n) < 0 {
			return n
		}
	}
}

// clone copies r deeply, so that a decision never changes what it was given.
func clone(r Registry) Registry {
	out := Registry{Tables: make([]Table, len(r.Tables), len(r.Tables)+1)}
	for i, t := range r.Tables {
		t.Holders = append([]Holder(nil), t.Holders...)
		out.Tables[i] = t
	}
	return out
}

// The registry on the wire: the format byte, the number of tables, then each
// table: number, sets, extent, cursor (4 bytes each, big-endian), the
// namespace's length (1 byte) and bytes, the number of holders (1 byte), each
// holder's ID and lease end (unix ms), 8 bytes each.
const (
	tableHeader = 4*4 + 1
	holderLen   = 8 + 8
)

// Encode is the registry's wire form.
func Encode(r Registry) []byte {
	out := []byte{format, byte(len(r.Tables))}
	for _, t := range r.Tables {
		out = binary.BigEndian.AppendUint32(out, t.Number)
		out = binary.BigEndian.AppendUint32(out, t.Sets)
		out = binary.BigEndian.AppendUint32(out, t.Extent)
		out = binary.BigEndian.AppendUint32(out, t.Cursor)
		out = append(append(out, byte(len(t.Namespace))), t.Namespace...)
		out = append(out, byte(len(t.Holders)))
		for _, h := range t.Holders {
			out = binary.BigEndian.AppendUint64(out, h.ID)
			out = binary.BigEndian.AppendUint64(out, uint64(h.Expires.UnixMilli()))
		}
	}
	return out
}

// Decode reads a registry. A value that does not decode whole, or breaks a
// bound (too many tables or holders, a number out of range or repeated, a
// namespace used twice, a cursor past the extent), is unreadable: ok is false
// and the caller starts from an empty registry. Plugins that were in it find
// their tables again when they renew (see Acquire).
func Decode(b []byte) (r Registry, ok bool) {
	if len(b) < 2 || b[0] != format || int(b[1]) > MaxTables {
		return Registry{}, false
	}
	n := int(b[1])
	b = b[2:]
	r.Tables = make([]Table, 0, n)
	for range n {
		if len(b) < tableHeader {
			return Registry{}, false
		}
		t := Table{
			Number: binary.BigEndian.Uint32(b),
			Sets:   binary.BigEndian.Uint32(b[4:]),
			Extent: binary.BigEndian.Uint32(b[8:]),
			Cursor: binary.BigEndian.Uint32(b[12:]),
		}
		nsLen := int(b[16])
		b = b[tableHeader:]
		if nsLen > MaxNamespace || len(b) < nsLen+1 {
			return Registry{}, false
		}
		t.Namespace = string(b[:nsLen])
		nh := int(b[nsLen])
		b = b[nsLen+1:]
		if nh > MaxHolders || len(b) < nh*holderLen {
			return Registry{}, false
		}
		for range nh {
			t.Holders = append(t.Holders, Holder{ID: binary.BigEndian.Uint64(b), Expires: time.UnixMilli(int64(binary.BigEndian.Uint64(b[8:])))})
			b = b[holderLen:]
		}
		if t.Number >= MaxTables || t.Cursor > t.Extent || r.find(t.Number) >= 0 || t.Namespace != "" && r.has(t.Namespace) {
			return Registry{}, false
		}
		r.Tables = append(r.Tables, t)
	}
	if len(b) != 0 {
		return Registry{}, false
	}
	return r, true
}

// has reports whether a table has namespace ns.
func (r Registry) has(ns string) bool {
	for i := range r.Tables {
		if r.Tables[i].Namespace == ns {
			return true
		}
	}
	return false
}
