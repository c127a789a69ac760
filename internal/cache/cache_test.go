package cache

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/internal/introspection"
)

var (
	t0    = time.Unix(1_000_000, 0)
	later = t0.Add(10 * time.Second)
	mine  = Hash("ns", "token-a")
)

func other(i int) TokenHash { return Hash("ns", "other-"+string(rune('a'+i))) }

func rec(k Kind, h TokenHash, expires time.Time) Record {
	r := Record{Kind: k, Hash: h, Expires: expires}
	switch k {
	case Active:
		r.JWT = "h.p.s"
	case Settled:
		r.Outcome = OutcomeBadGateway
	}
	return r
}

func TestEncodeDecode(t *testing.T) {
	set := []Record{
		rec(Active, mine, later),
		rec(Pending, other(0), later),
		{Kind: Settled, Outcome: OutcomeActive, Hash: other(1), Expires: later.Truncate(time.Millisecond), JWT: "a.b.c"},
		rec(Inactive, other(2), later),
	}
	if got := Decode(Encode(set)); !reflect.DeepEqual(got, set) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, set)
	}
	full := Encode(set)
	tests := []struct {
		name string
		raw  []byte
	}{
		{"a truncated set", full[:len(full)-1]},
		{"a truncated header", full[:headerLen-1]},
		{"an unknown kind", append([]byte{9}, full[1:]...)},
		{"an active record without a JWT", Encode([]Record{{Kind: Active, Hash: mine, Expires: later}})},
		{"a pending record with a JWT", Encode([]Record{{Kind: Pending, Hash: mine, Expires: later, JWT: "x"}})},
		{"a settled record with an unknown outcome", Encode([]Record{{Kind: Settled, Outcome: 99, Hash: mine, Expires: later}})},
		{"a settled active outcome without its JWT", Encode([]Record{{Kind: Settled, Outcome: OutcomeActive, Hash: mine, Expires: later}})},
		{"more records than ways", Encode(append(set, rec(Pending, other(3), later)))},
		{"a JWT length past the end", func() []byte { b := Encode(set[:1]); b[offLen] = 0xff; return b }()},
	}
	for _, tt := range tests {
		if got := Decode(tt.raw); got != nil {
			t.Errorf("%s: decoded to %+v, want an empty set", tt.name, got)
		}
	}
	if got := Decode(nil); got != nil {
		t.Errorf("an empty value: %+v", got)
	}
}

func TestNext(t *testing.T) {
	full := []Record{rec(Active, other(0), later), rec(Active, other(1), later), rec(Pending, other(2), later), rec(Active, other(3), later)}
	with := func(r Record) []Record { return append([]Record{r}, full[:Ways-1]...) }
	tests := []struct {
		name string
		set  []Record
		who  Asker
		want Step
	}{
		{"active answer, new request", []Record{rec(Active, mine, later)}, NewRequest, Serve},
		{"active answer, waiter", []Record{rec(Active, mine, later)}, Waiter, Serve},
		{"active answer, wait over", []Record{rec(Active, mine, later)}, WaitOver, Serve},
		{"inactive verdict, new request", []Record{rec(Inactive, mine, later)}, NewRequest, Refuse},
		{"inactive verdict, waiter", []Record{rec(Inactive, mine, later)}, Waiter, Refuse},
		{"pending, new request", []Record{rec(Pending, mine, later)}, NewRequest, Wait},
		{"pending, waiter", []Record{rec(Pending, mine, later)}, Waiter, Wait},
		{"pending, wait over: takes the place over", []Record{rec(Pending, mine, later)}, WaitOver, Call},
		{"settled, new request: calls", []Record{rec(Settled, mine, later)}, NewRequest, Call},
		{"settled, waiter", []Record{rec(Settled, mine, later)}, Waiter, Deliver},
		{"settled, wait over", []Record{rec(Settled, mine, later)}, WaitOver, Deliver},
		{"nothing, empty set", nil, NewRequest, Call},
		{"nothing, a free place", full[:2], NewRequest, Call},
		{"expired answer", []Record{rec(Active, mine, t0)}, NewRequest, Call},
		{"expired pending, waiter", []Record{rec(Pending, mine, t0)}, Waiter, Call},
		{"another token's answer only", []Record{rec(Active, other(0), later)}, NewRequest, Call},
		{"full of live answers and claims", full, NewRequest, CallUnclaimed},
		{"full, waiter whose record went", full, Waiter, CallUnclaimed},
		{"full but one expired", append(full[:Ways-1:Ways-1], rec(Active, other(4), t0)), NewRequest, Call},
		{"full but one settled", append(full[:Ways-1:Ways-1], rec(Settled, other(4), later)), NewRequest, Call},
		{"full but one inactive verdict", append(full[:Ways-1:Ways-1], rec(Inactive, other(4), later)), NewRequest, Call},
		{"full, one of them ours", with(rec(Active, mine, later)), NewRequest, Serve},
	}
	for _, tt := range tests {
		if got, _ := Next(tt.set, mine, t0, tt.who); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestPlace(t *testing.T) {
	a, p := rec(Active, other(0), later), rec(Pending, other(1), later)
	tests := []struct {
		name string
		set  []Record
		want int
	}{
		{"empty set: the first place", nil, 0},
		{"a free place at the end", []Record{a, p}, 2},
		{"the token's own record first", []Record{a, rec(Active, mine, t0), p}, 1},
		{"an expired record before a free place", []Record{a, rec(Active, other(2), t0)}, 1},
		{"a free place before a settled record", []Record{a, rec(Settled, other(2), later)}, 2},
		{"full: a settled record before an inactive verdict", []Record{rec(Inactive, other(2), later), a, rec(Settled, other(3), later), p}, 2},
		{"full: an inactive verdict", []Record{a, p, rec(Inactive, other(2), later), rec(Active, other(3), later)}, 2},
		{"full of live answers and claims: none", []Record{a, p, rec(Active, other(2), later), rec(Pending, other(3), later)}, -1},
	}
	for _, tt := range tests {
		if got := Place(tt.set, mine, t0); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestPutCountsOnlyRealEvictions(t *testing.T) {
	mk := func(k Kind) []Record {
		return []Record{rec(Active, other(0), later), rec(Pending, other(1), later), rec(Active, other(2), later), rec(k, other(3), later)}
	}
	tests := []struct {
		name    string
		set     []Record
		evicted bool
		ok      bool
	}{
		{"a free place", mk(Active)[:3], false, true},
		{"an expired record", append(mk(Active)[:3], rec(Active, other(3), t0)), false, true},
		{"a settled record", mk(Settled), false, true},
		{"another token's live inactive verdict", mk(Inactive), true, true},
		{"full of live answers and claims", mk(Active), false, false},
		{"the token's own record", append(mk(Active)[:3], rec(Inactive, mine, later)), false, true},
	}
	for _, tt := range tests {
		before := append([]Record(nil), tt.set...)
		out, evicted, ok := Put(tt.set, rec(Active, mine, later), t0)
		if evicted != tt.evicted || ok != tt.ok {
			t.Errorf("%s: evicted %v ok %v, want %v %v", tt.name, evicted, ok, tt.evicted, tt.ok)
		}
		if ok && Find(out, mine, t0).Kind != Active {
			t.Errorf("%s: not stored", tt.name)
		}
		if !reflect.DeepEqual(tt.set, before) {
			t.Errorf("%s: Put changed its input", tt.name)
		}
	}
}

func TestStoreAndRelease(t *testing.T) {
	settled := rec(Settled, mine, later)
	if _, _, ok := Store([]Record{rec(Pending, mine, later)}, settled, t0); !ok {
		t.Error("a settled record did not replace its own claim")
	}
	if _, _, ok := Store(nil, settled, t0); ok {
		t.Error("a settled record took a place without a claim of its own")
	}
	if _, _, ok := Store([]Record{rec(Active, mine, later)}, settled, t0); ok {
		t.Error("a settled record replaced an active answer")
	}
	set := []Record{rec(Active, other(0), later), rec(Pending, mine, t0)}
	out, ok := Release(set, mine)
	if !ok || len(out) != 1 || out[0].Hash != other(0) {
		t.Errorf("release of an expired claim: %v %+v", ok, out)
	}
	if _, ok := Release([]Record{rec(Active, mine, later)}, mine); ok {
		t.Error("release removed an answer")
	}
}

func TestToStore(t *testing.T) {
	active := introspection.Answer{Outcome: introspection.Active, JWT: "h.p.s", CacheTTL: 30 * time.Second}
	tests := []struct {
		name     string
		a        introspection.Answer
		negative time.Duration
		claimed  bool
		want     Record
		stored   bool
	}{
		{"active and cacheable", active, 0, true, Record{Kind: Active, Hash: mine, Expires: t0.Add(30 * time.Second), JWT: "h.p.s"}, true},
		{"active, not cacheable, claimed", introspection.Answer{Outcome: introspection.Active, JWT: "h.p.s"}, 0, true,
			Record{Kind: Settled, Outcome: OutcomeActive, Hash: mine, Expires: t0.Add(SettledFor), JWT: "h.p.s"}, true},
		{"active, not cacheable, unclaimed", introspection.Answer{Outcome: introspection.Active, JWT: "h.p.s"}, 0, false, Record{}, false},
		{"inactive, negative cache on", introspection.Answer{Outcome: introspection.Inactive}, 5 * time.Second, true,
			Record{Kind: Inactive, Hash: mine, Expires: t0.Add(5 * time.Second)}, true},
		{"inactive, negative cache off, claimed", introspection.Answer{Outcome: introspection.Inactive}, 0, true,
			Record{Kind: Settled, Outcome: OutcomeInactive, Hash: mine, Expires: t0.Add(SettledFor)}, true},
		{"an error is never cached: settled for the waiters", introspection.Answer{Outcome: introspection.BadGateway, JWT: "ignored"}, 5 * time.Second, true,
			Record{Kind: Settled, Outcome: OutcomeBadGateway, Hash: mine, Expires: t0.Add(SettledFor)}, true},
		{"503", introspection.Answer{Outcome: introspection.Unavailable}, 0, true,
			Record{Kind: Settled, Outcome: OutcomeUnavailable, Hash: mine, Expires: t0.Add(SettledFor)}, true},
		{"500", introspection.Answer{Outcome: introspection.ServerError}, 0, true,
			Record{Kind: Settled, Outcome: OutcomeServerError, Hash: mine, Expires: t0.Add(SettledFor)}, true},
		{"an error, unclaimed", introspection.Answer{Outcome: introspection.BadGateway}, 0, false, Record{}, false},
	}
	for _, tt := range tests {
		got, stored := ToStore(mine, tt.a, t0, tt.negative, tt.claimed)
		if stored != tt.stored || got != tt.want {
			t.Errorf("%s: %+v %v\n want %+v %v", tt.name, got, stored, tt.want, tt.stored)
		}
		if stored && got.Kind == Settled && got.Settled() != tt.a.Outcome {
			t.Errorf("%s: settled outcome reads back as %v", tt.name, got.Settled())
		}
	}
}

func TestHashAndKey(t *testing.T) {
	if Hash("ns1", "t") == Hash("ns2", "t") {
		t.Error("namespaces share hashes")
	}
	if Hash("ns", "t1") == Hash("ns", "t2") {
		t.Error("tokens share hashes")
	}
	k := Key("ns", Hash("ns", "secret-token"), 100)
	if !strings.HasPrefix(k, "phantom-token/"+Version+"/ns/") || strings.Contains(k, "secret-token") {
		t.Errorf("key %q", k)
	}
	// The key space is bounded by the number of sets, whatever the tokens.
	keys := map[string]bool{}
	for i := 0; i < 10000; i++ {
		keys[Key("ns", Hash("ns", "t"+strings.Repeat("x", i%50)+string(rune(i))), 32)] = true
	}
	if len(keys) != Sets(32) {
		t.Errorf("10000 tokens used %d keys, want %d", len(keys), Sets(32))
	}
	if Sets(1) != 1 || Sets(4) != 1 || Sets(5) != 2 {
		t.Errorf("Sets: %d %d %d", Sets(1), Sets(4), Sets(5))
	}
	if fp := Hash("ns", "t").Fingerprint(); len(fp) != 12 {
		t.Errorf("fingerprint %q", fp)
	}
}

func TestLocal(t *testing.T) {
	c := NewLocal(2)
	a, b, d := c.Key("a"), c.Key("b"), c.Key("d")
	c.Put(a, LocalEntry{Upstream: "A", Expires: later})
	if e, ok := c.Get(a, t0); !ok || e.Upstream != "A" {
		t.Error("an entry is not served before its expiry")
	}
	if _, ok := c.Get(a, later); ok {
		t.Error("an entry is served at its expiry")
	}
	if c.Len() != 0 {
		t.Error("an expired entry is kept")
	}
	c.Put(a, LocalEntry{Expires: later})
	c.Put(b, LocalEntry{Expires: later})
	c.Put(d, LocalEntry{Expires: later})
	if c.Len() != 2 {
		t.Errorf("%d entries, bound 2", c.Len())
	}
	if NewLocal(1_000_000).max != LocalMax {
		t.Error("the copy is not bounded by LocalMax")
	}
	if c.Key("a") == NewLocal(2).Key("a") {
		t.Error("two VMs share key seeds")
	}
}

func TestEnumsPrintTheirNames(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{Active.String(), "Active"}, {Inactive.String(), "Inactive"}, {Kind(9).String(), "Kind(9)"},
		{CallUnclaimed.String(), "CallUnclaimed"}, {Deliver.String(), "Deliver"}, {Step(0).String(), "Step(0)"},
	} {
		if tt.got != tt.want {
			t.Errorf("%q, want %q", tt.got, tt.want)
		}
	}
}
