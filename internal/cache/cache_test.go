package cache

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/internal/introspection"
	"github.com/phantom-token/envoy-phantom-token/internal/jwt"
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
	answers := []Record{rec(Active, other(0), later), rec(Active, other(1), later), rec(Inactive, other(2), later), rec(Active, other(3), later)}
	claims := []Record{rec(Pending, other(4), later), rec(Settled, other(5), later)}
	full := append(append([]Record(nil), answers...), claims...)
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
		{"expired answer", []Record{rec(Active, mine, t0)}, NewRequest, Call},
		{"expired pending, waiter", []Record{rec(Pending, mine, t0)}, Waiter, Call},
		{"another token's answer only", []Record{rec(Active, other(0), later)}, NewRequest, Call},
		{"answers full: a claim has places of its own", answers, NewRequest, Call},
		{"claims full of live claims and settled records", full, NewRequest, CallUnclaimed},
		{"claims full, waiter whose record went", full, Waiter, CallUnclaimed},
		{"claims full but one expired", append(full[:5:5], rec(Pending, other(6), t0)), NewRequest, Call},
		{"full, one of them ours", append(full[:3:3], rec(Active, mine, later)), NewRequest, Serve},
	}
	for _, tt := range tests {
		if got, _ := Next(tt.set, mine, t0, tt.who); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestPut has one row per rule of Put's table.
func TestPut(t *testing.T) {
	seen := func(h TokenHash, exp time.Time) Record { r := rec(Inactive, h, exp); r.Seen = true; return r }
	soon, sooner := later.Add(-5*time.Second), later.Add(-8*time.Second)
	actives := []Record{rec(Active, other(0), later), rec(Active, other(1), soon), rec(Active, other(2), later), rec(Active, other(3), later)}
	mixed := []Record{rec(Active, other(0), sooner), rec(Inactive, other(1), later), rec(Active, other(2), later), seen(other(3), soon)}
	verdicts := []Record{seen(other(0), later), rec(Inactive, other(1), later), rec(Inactive, other(2), soon), seen(other(3), sooner)}
	flights := []Record{rec(Pending, other(4), later), rec(Settled, other(5), later)}
	tests := []struct {
		name    string
		set     []Record
		r       Record
		gone    TokenHash // the record displaced, if any
		evicted bool
		ok      bool
	}{
		{"active: a free place", actives[:3], rec(Active, mine, later), TokenHash{}, false, true},
		{"active: an expired record's place", append(actives[:3:3], rec(Active, other(3), t0)), rec(Active, mine, later), TokenHash{}, false, true},
		{"active: replaces the token's own claim", append(actives[:3:3], rec(Pending, mine, later)), rec(Active, mine, later), TokenHash{}, false, true},
		{"active: replaces the token's own verdict", append(actives[:3:3], rec(Inactive, mine, later)), rec(Active, mine, later), TokenHash{}, false, true},
		{"active: claims do not take answer places", append(actives[:3:3], flights...), rec(Active, mine, later), TokenHash{}, false, true},
		{"active, answers full: a verdict, even a seen one, before an answer", mixed, rec(Active, mine, later), other(3), true, true},
		{"active, answers full of answers: the one that expires first", actives, rec(Active, mine, later), other(1), true, true},
		{"inactive, answers full of answers: no place", actives, rec(Inactive, mine, later), TokenHash{}, false, false},
		{"inactive: never a seen verdict, the unseen one that expires first", verdicts, rec(Inactive, mine, later), other(2), true, true},
		{"inactive: a free place beside a verdict", mixed[:2:2], rec(Inactive, mine, later), TokenHash{}, false, true},
		{"inactive, full of seen verdicts and answers", append(actives[:2:2], seen(other(5), later), seen(other(6), later)), rec(Inactive, mine, later), TokenHash{}, false, false},
		{"pending: a place of its own when answers are full", actives, rec(Pending, mine, later), TokenHash{}, false, true},
		{"pending, claims full: displaces nothing", append(actives[:1:1], flights...), rec(Pending, mine, later), TokenHash{}, false, false},
		{"settled replaces the token's claim in a full set", append(actives[:4:4], flights[0], rec(Pending, mine, later)), rec(Settled, mine, later), TokenHash{}, false, true},
	}
	for _, tt := range tests {
		before := append([]Record(nil), tt.set...)
		out, evicted, ok := Put(tt.set, tt.r, t0)
		if evicted != tt.evicted || ok != tt.ok {
			t.Errorf("%s: evicted %v ok %v, want %v %v", tt.name, evicted, ok, tt.evicted, tt.ok)
		}
		if !reflect.DeepEqual(tt.set, before) {
			t.Errorf("%s: Put changed its input", tt.name)
		}
		if !ok {
			continue
		}
		if got := Find(out, mine, t0); got.Kind != tt.r.Kind {
			t.Errorf("%s: the token's record is %v", tt.name, got.Kind)
		}
		if raw := Encode(out); Decode(raw) == nil {
			t.Errorf("%s: the set it made does not decode", tt.name)
		}
		if tt.gone != (TokenHash{}) && Find(out, tt.gone, t0).Kind != None {
			t.Errorf("%s: the expected victim is still there", tt.name)
		}
		if n := len(before) - len(out) + 1; tt.gone == (TokenHash{}) && n > 1 {
			for _, o := range before {
				if o.Hash != mine && o.Expires.After(t0) && Find(out, o.Hash, t0).Kind == None {
					t.Errorf("%s: a live record of another token went", tt.name)
				}
			}
		}
	}
}

func TestChooseAndMarkSeen(t *testing.T) {
	one := []Record{rec(Active, other(0), later)}
	two := []Record{rec(Active, other(0), later), rec(Active, other(1), later)}
	claims := []Record{rec(Pending, other(2), later), rec(Pending, other(3), later)}
	tests := []struct {
		name          string
		first, second []Record
		want          int
	}{
		{"both empty: the first", nil, nil, 0},
		{"the less loaded: second", two, one, 1},
		{"the less loaded: first", one, two, 0},
		{"a tie: the first", one, one, 0},
		{"expired answers do not count", []Record{rec(Active, other(0), t0), rec(Active, other(1), t0)}, one, 0},
		{"room for a claim before a lighter load", claims, two, 1},
	}
	for _, tt := range tests {
		if got := Choose(tt.first, tt.second, mine, t0); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
	out, ok := MarkSeen([]Record{rec(Active, other(0), later), rec(Inactive, mine, later)}, mine, t0)
	if !ok || !Find(out, mine, t0).Seen {
		t.Error("a verdict was not marked seen")
	}
	if _, ok := MarkSeen(out, mine, t0); ok {
		t.Error("a seen verdict was marked again")
	}
	if back := Decode(Encode(out)); !back[1].Seen || back[0].Seen {
		t.Error("seen does not survive the wire")
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
	// A verdict with no place where the token's claim stands leaves a Settled
	// record for the waiters instead.
	answers := []Record{rec(Active, other(0), later), rec(Active, other(1), later), rec(Active, other(2), later), rec(Active, other(3), later)}
	out, _, ok := Store(append(answers, rec(Pending, mine, later)), rec(Inactive, mine, later), t0)
	if got := Find(out, mine, t0); !ok || got.Kind != Settled || got.Settled() != introspection.Inactive {
		t.Errorf("a verdict without a place: %v %+v", ok, got)
	}
	if _, _, ok := Store(answers, rec(Inactive, mine, later), t0); ok {
		t.Error("a verdict without a place or a claim was stored")
	}
	set := []Record{rec(Active, other(0), later), rec(Pending, mine, t0)}
	out, ok = Release(set, mine)
	if !ok || len(out) != 1 || out[0].Hash != other(0) {
		t.Errorf("release of an expired claim: %v %+v", ok, out)
	}
	if _, ok := Release([]Record{rec(Active, mine, later)}, mine); ok {
		t.Error("release removed an answer")
	}
}

func TestToStore(t *testing.T) {
	active := introspection.Answer{Outcome: introspection.Active, JWT: "h.p.s", CacheTTL: 30 * time.Second}
	staleToo := active
	staleToo.StaleFor = time.Minute
	negative := Policy{NegativeTTL: 5 * time.Second}
	ahead := Policy{RefreshAhead: 0.25}
	transient := introspection.Answer{Outcome: introspection.BadGateway, Transient: true}
	tests := []struct {
		name    string
		a       introspection.Answer
		p       Policy
		claimed bool
		want    Record
		stored  bool
	}{
		{"active and cacheable", active, Policy{}, true, Record{Kind: Active, Hash: mine, Expires: t0.Add(30 * time.Second), JWT: "h.p.s"}, true},
		{"active, stale-if-error: kept a minute past its lifetime", staleToo, Policy{}, true,
			Record{Kind: Active, Hash: mine, Expires: t0.Add(30 * time.Second), StaleUntil: t0.Add(90 * time.Second), JWT: "h.p.s"}, true},
		{"active, refresh ahead: refreshed in its last quarter", active, ahead, false,
			Record{Kind: Active, Hash: mine, Expires: t0.Add(30 * time.Second), RefreshAt: t0.Add(22500 * time.Millisecond), JWT: "h.p.s"}, true},
		{"active, not cacheable, claimed", introspection.Answer{Outcome: introspection.Active, JWT: "h.p.s"}, Policy{}, true,
			Record{Kind: Settled, Outcome: OutcomeActive, Hash: mine, Expires: t0.Add(SettledFor), JWT: "h.p.s"}, true},
		{"active, not cacheable, unclaimed", introspection.Answer{Outcome: introspection.Active, JWT: "h.p.s"}, Policy{}, false, Record{}, false},
		{"inactive, negative cache on", introspection.Answer{Outcome: introspection.Inactive}, negative, true,
			Record{Kind: Inactive, Hash: mine, Expires: t0.Add(5 * time.Second)}, true},
		{"inactive, negative cache off, claimed", introspection.Answer{Outcome: introspection.Inactive}, Policy{}, true,
			Record{Kind: Settled, Outcome: OutcomeInactive, Hash: mine, Expires: t0.Add(SettledFor)}, true},
		{"an error is never cached: settled for the waiters", introspection.Answer{Outcome: introspection.BadGateway, JWT: "ignored"}, negative, true,
			Record{Kind: Settled, Outcome: OutcomeBadGateway, Hash: mine, Expires: t0.Add(SettledFor)}, true},
		{"a failure that is not the identity server's verdict says so", transient, Policy{}, true,
			Record{Kind: Settled, Outcome: OutcomeBadGateway, Transient: true, Hash: mine, Expires: t0.Add(SettledFor)}, true},
		{"503", introspection.Answer{Outcome: introspection.Unavailable}, Policy{}, true,
			Record{Kind: Settled, Outcome: OutcomeUnavailable, Hash: mine, Expires: t0.Add(SettledFor)}, true},
		{"500", introspection.Answer{Outcome: introspection.ServerError}, Policy{}, true,
			Record{Kind: Settled, Outcome: OutcomeServerError, Hash: mine, Expires: t0.Add(SettledFor)}, true},
		{"an error, unclaimed", introspection.Answer{Outcome: introspection.BadGateway}, Policy{}, false, Record{}, false},
	}
	for _, tt := range tests {
		got, stored := ToStore(mine, tt.a, t0, tt.p, tt.claimed)
		if stored != tt.stored || !reflect.DeepEqual(got, tt.want) {
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
	k := Keys("ns", Hash("ns", "secret-token"), 100)
	for _, k := range k {
		if !strings.HasPrefix(k, "phantom-token/"+Version+"/ns/") || strings.Contains(k, "secret-token") {
			t.Errorf("key %q", k)
		}
	}
	if k[0] == k[1] {
		t.Error("a token's two sets are one")
	}
	// The key space is bounded by the number of sets, whatever the tokens.
	keys := map[string]bool{}
	for i := 0; i < 10000; i++ {
		k := Keys("ns", Hash("ns", "t"+strings.Repeat("x", i%50)+string(rune(i))), 32)
		keys[k[0]], keys[k[1]] = true, true
	}
	if len(keys) != Sets(32) {
		t.Errorf("10000 tokens used %d keys, want %d", len(keys), Sets(32))
	}
	// 1.25 places an entry, Ways places a set.
	for _, tt := range [][2]int{{1, 1}, {3, 1}, {4, 2}, {32, 10}, {10000, 3125}} {
		if got := Sets(tt[0]); got != tt[1] {
			t.Errorf("Sets(%d) = %d, want %d", tt[0], got, tt[1])
		}
	}
	if k := Keys("ns", Hash("ns", "t"), 1); k[0] != k[1] {
		t.Error("a table of one set has two")
	}
	if fp := Hash("ns", "t").Fingerprint(); len(fp) != 12 {
		t.Errorf("fingerprint %q", fp)
	}
}

func TestLocal(t *testing.T) {
	const ns = "0123456789abcdef"
	c := NewLocal(2)
	a, b, d := c.Key(ns, "a"), c.Key(ns, "b"), c.Key(ns, "d")
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
	c.Put(a, LocalEntry{Upstream: "A", Expires: later, RefreshAt: t0})
	c.Postpone(a, t0.Add(time.Second))
	if e, _ := c.Get(a, t0); e.RefreshAt != t0.Add(time.Second) || e.Upstream != "A" {
		t.Errorf("postponed: %+v", e)
	}
	if c.Delete(a); c.Len() != 0 || c.Bytes() != 0 {
		t.Error("a deleted entry is kept")
	}
	c.Postpone(a, later) // of an absent entry: nothing
	c.Delete(a)
	if c.Len() != 0 {
		t.Error("postponing an absent entry made one")
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
	// The copy is bounded in bytes too.
	big := NewLocal(1000)
	jwt := strings.Repeat("j", 64<<10)
	for i := range 200 {
		big.Put(big.Key(ns, strconv.Itoa(i)), LocalEntry{Upstream: "Bearer " + jwt, Expires: later})
	}
	if big.Bytes() > LocalMaxBytes || big.Len() >= 200 || big.Len() < LocalMaxBytes/(70<<10) {
		t.Errorf("%d entries, %d bytes: bound %d bytes", big.Len(), big.Bytes(), LocalMaxBytes)
	}
	big.Put(big.Key(ns, "huge"), LocalEntry{Upstream: strings.Repeat("j", LocalMaxBytes), Expires: later})
	if _, ok := big.Get(big.Key(ns, "huge"), t0); ok {
		t.Error("an entry larger than the whole bound was kept")
	}
	for i := range 200 {
		big.Get(big.Key(ns, strconv.Itoa(i)), later)
	}
	if big.Len() != 0 || big.Bytes() != 0 {
		t.Errorf("after every entry expired: %d entries, %d bytes", big.Len(), big.Bytes())
	}
	if c.Key(ns, "a") == NewLocal(2).Key(ns, "a") {
		t.Error("two VMs share key seeds")
	}
	// Two identity servers' answers for one token never share an entry,
	// nor does a token that spells another namespace and a token.
	if c.Key(ns, "a") == c.Key("fedcba9876543210", "a") || c.Key(ns, "fedcba9876543210a") == c.Key("fedcba9876543210", ns+"a") {
		t.Error("a key does not depend on the namespace")
	}
}

// TestLocalHit: a plain hit (served before anything is parsed) is one whose
// entry is neither expired, nor due for a refresh, nor past its JWT's exp.
func TestLocalHit(t *testing.T) {
	const ns = "0123456789abcdef"
	soon := t0.Add(time.Second)
	for _, c := range []struct {
		name  string
		entry LocalEntry
		at    time.Time
		plain bool
	}{
		{"before its expiry", LocalEntry{Expires: later}, t0, true},
		{"at its expiry", LocalEntry{Expires: later}, later, false},
		{"after its expiry", LocalEntry{Expires: later}, later.Add(time.Nanosecond), false},
		{"a nanosecond before its expiry", LocalEntry{Expires: later}, later.Add(-time.Nanosecond), true},
		{"before its refresh time", LocalEntry{Expires: later, RefreshAt: soon}, t0, true},
		{"at its refresh time", LocalEntry{Expires: later, RefreshAt: soon}, soon, false},
		{"a refresh time past the expiry", LocalEntry{Expires: soon, RefreshAt: later}, soon, false},
		{"before the JWT's exp", LocalEntry{Expires: later, Claims: jwt.Claims{Exp: soon}}, t0, true},
		{"at the JWT's exp, before the entry's expiry", LocalEntry{Expires: later, Claims: jwt.Claims{Exp: soon}}, soon, false},
		{"a JWT's exp before 1678", LocalEntry{Expires: later, Claims: jwt.Claims{Exp: time.Unix(-1e11, 0)}}, t0, false},
		{"a JWT's exp after 2262", LocalEntry{Expires: later, Claims: jwt.Claims{Exp: time.Unix(1e11, 0)}}, t0, true},
		{"no expiry", LocalEntry{}, t0, false},
		{"a token bound to a key", LocalEntry{Expires: later, Claims: jwt.Claims{Binding: jwt.Binding{JKT: "k"}}}, t0, false},
		{"a token bound to a certificate", LocalEntry{Expires: later, Claims: jwt.Claims{Binding: jwt.Binding{CertBound: true}}}, t0, false},
	} {
		l := NewLocal(2)
		k := l.Key(ns, "a")
		l.Put(k, c.entry)
		if e := l.Hit(k, c.at.UnixNano()); (e != nil) != c.plain {
			t.Errorf("%s: plain hit %v, want %v", c.name, e != nil, c.plain)
		}
		if l.Hit(l.Key(ns, "b"), c.at.UnixNano()) != nil {
			t.Errorf("%s: a hit on another token", c.name)
		}
	}
	// A postponed refresh makes the hit plain again until then.
	l := NewLocal(2)
	k := l.Key(ns, "a")
	l.Put(k, LocalEntry{Expires: later, RefreshAt: t0})
	if l.Hit(k, t0.UnixNano()) != nil {
		t.Error("a plain hit on an entry due for a refresh")
	}
	l.Postpone(k, soon)
	if l.Hit(k, t0.UnixNano()) == nil || l.Hit(k, soon.UnixNano()) != nil {
		t.Error("a postponed refresh is not when the hit stops being plain")
	}
	// A namespace of the same bytes at another address is the same one.
	if l.Key(strings.Clone(ns), "a") != k || l.Key("fedcba9876543210", "a") == k {
		t.Error("a namespace is recognised by its address alone")
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

// A waiter copies only its own token's JWT.
func TestDecodeForCopiesOnlyTheTokensJWT(t *testing.T) {
	set := []Record{rec(Active, other(0), later), {Kind: Active, Hash: mine, Expires: later.Truncate(time.Millisecond), JWT: "m.i.ne"}, rec(Active, other(1), later)}
	got := DecodeFor(Encode(set), mine)
	if len(got) != 3 || got[1].JWT != "m.i.ne" || got[0].JWT != "" || got[2].JWT != "" {
		t.Errorf("DecodeFor: %+v", got)
	}
	if step, r := Next(got, mine, t0, Waiter); step != Serve || r.JWT != "m.i.ne" {
		t.Errorf("Next on DecodeFor's set: %v %q", step, r.JWT)
	}
}

// An answer whose binding is partly beside its JWT leaves nothing in the
// set, not even for the waiters of other workers: the JWT alone would admit
// the token without its binding.
func TestBindingBesideIsNeverStored(t *testing.T) {
	a := introspection.Answer{Outcome: introspection.Active, JWT: "j", CacheTTL: time.Minute, BindingBeside: true}
	for _, claimed := range []bool{false, true} {
		if r, ok := ToStore(Hash("ns", "t"), a, t0, Policy{}, claimed); ok {
			t.Errorf("claimed %v: stored %+v", claimed, r)
		}
	}
}

// Two tokens never share an entry of a worker's copy: not within a
// namespace, not across namespaces, and not when the first halves of their
// keys meet (an entry is found only by its whole key). The keys differ from
// one VM to the next (a key random to each copy).
func TestLocalKeepsTokensApart(t *testing.T) {
	const ns1, ns2 = "0123456789abcdef", "fedcba9876543210"
	c := NewLocal(LocalMax)
	seen := map[LocalKey]string{}
	for i := range 200_000 {
		tok := "tok-" + strconv.Itoa(i)
		for _, ns := range []string{ns1, ns2} {
			k := c.Key(ns, tok)
			if other, dup := seen[k]; dup {
				t.Fatalf("%s in %s has the key of %s", tok, ns, other)
			}
			seen[k] = ns + "/" + tok
		}
	}
	a, b := c.Key(ns1, "a"), c.Key(ns1, "b")
	c.Put(a, LocalEntry{Upstream: "Bearer A", Expires: later})
	if _, ok := c.Get(b, t0); ok {
		t.Error("another token finds a token's entry")
	}
	if _, ok := c.Get(c.Key(ns2, "a"), t0); ok {
		t.Error("the same token finds its entry of another namespace")
	}
	forged := LocalKey{a[0], a[1] ^ 1} // shares the first half only
	if _, ok := c.Get(forged, t0); ok {
		t.Error("a key that shares the first half of another's finds its entry")
	}
	c.Delete(forged)
	c.Postpone(forged, later)
	if e, ok := c.Get(a, t0); !ok || e.Upstream != "Bearer A" || !e.RefreshAt.IsZero() {
		t.Error("a key that shares the first half of another's changed its entry")
	}
	if NewLocal(1).Key(ns1, "a") == a {
		t.Error("two copies key a token alike")
	}
}

// TestLocalTable runs random puts, deletes and lookups on keys made to share
// home slots (and first halves) against a Go map: the open-addressed table
// finds every entry it holds, only those, and stays within its bounds.
func TestLocalTable(t *testing.T) {
	for _, max := range []int{1, 2, 5, 64} {
		rnd := rand.New(rand.NewPCG(7, uint64(max)))
		c := NewLocal(max)
		model := map[LocalKey]string{}
		key := func() LocalKey {
			// Few distinct first halves and home slots, so that probe
			// runs are long and wrap around the table's end.
			return LocalKey{uint64(rnd.IntN(6)) * uint64(len(c.table)/4+1), uint64(rnd.IntN(3))}
		}
		for step := range 20000 {
			k := key()
			switch rnd.IntN(3) {
			case 0:
				v := strconv.Itoa(step)
				c.Put(k, LocalEntry{Upstream: v, Expires: later})
				model[k] = v
			case 1:
				c.Delete(k)
				delete(model, k)
			}
			// The table may have evicted any entry: what it holds must be
			// in the model with the same value, and nothing else.
			held := 0
			for mk, v := range model {
				e, ok := c.Get(mk, t0)
				if !ok && max >= 6*3 {
					t.Fatalf("max %d, step %d: key %v lost, with room for every key", max, step, mk)
				}
				if !ok {
					delete(model, mk) // evicted to make room
					continue
				}
				if e.Upstream != v || e.key != mk {
					t.Fatalf("max %d, step %d: key %v holds %q, want %q", max, step, mk, e.Upstream, v)
				}
				held++
			}
			if held != c.Len() || c.Len() > max {
				t.Fatalf("max %d, step %d: %d entries found, Len %d, bound %d", max, step, held, c.Len(), max)
			}
		}
	}
}

// A worker's copy holds no raw token: not in its keys, not in its entries.
func TestLocalHoldsNoRawToken(t *testing.T) {
	const ns, token = "0123456789abcdef", "opaque-token-2f1c9a7e"
	c := NewLocal(8)
	k := c.Key(ns, token)
	c.Put(k, LocalEntry{Upstream: "Bearer header.payload.sig", Expires: later})
	dump := fmt.Sprintf("%#v", *c)
	for _, e := range c.table {
		if e != nil {
			dump += fmt.Sprintf("%#v", *e)
		}
	}
	if strings.Contains(dump, token) || strings.Contains(dump, "2f1c9a7e") {
		t.Errorf("the copy holds the token: %s", dump)
	}
}
