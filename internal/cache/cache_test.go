package cache

import (
	"strings"
	"testing"
	"time"
)

func TestRecord(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	h, other := Hash("ns", "token-a"), Hash("ns", "token-b")
	until := now.Add(10 * time.Second)
	active := Encode(h, Entry{Kind: Active, Expires: until, JWT: "the.jwt.here"})
	pending := Encode(h, Entry{Kind: Pending, Expires: until})
	settled := Encode(h, Entry{Kind: Settled, Expires: until, Outcome: 3})
	tests := []struct {
		name string
		rec  []byte
		h    TokenHash
		at   time.Time
		want Entry
	}{
		{"fresh answer", active, h, now, Entry{Kind: Active, Expires: until, JWT: "the.jwt.here"}},
		{"just before expiry", active, h, until.Add(-time.Millisecond), Entry{Kind: Active, Expires: until, JWT: "the.jwt.here"}},
		{"at expiry", active, h, until, Entry{}},
		{"after expiry", active, h, now.Add(time.Hour), Entry{}},
		{"another token in the same slot", active, other, now, Entry{}},
		{"pending", pending, h, now, Entry{Kind: Pending, Expires: until}},
		{"pending past its deadline", pending, h, until, Entry{}},
		{"settled", settled, h, now, Entry{Kind: Settled, Expires: until, Outcome: 3}},
		{"empty value (a cleared slot)", nil, h, now, Entry{}},
		{"truncated record", active[:20], h, now, Entry{}},
		{"unknown kind", append([]byte{9}, active[1:]...), h, now, Entry{}},
		{"active without a JWT", Encode(h, Entry{Kind: Active, Expires: until}), h, now, Entry{}},
	}
	for _, tt := range tests {
		if got := Decode(tt.rec, tt.h, tt.at); got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
	if !Live(active, now) || Live(active, until) || Live(pending, now) || Live(nil, now) {
		t.Error("Live")
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
	if !strings.HasPrefix(k, "phantom-token/v1/ns/") || strings.Contains(k, "secret-token") {
		t.Errorf("key %q", k)
	}
	// The key space is bounded by the number of slots, whatever the tokens.
	slots := map[string]bool{}
	for i := 0; i < 10000; i++ {
		slots[Key("ns", Hash("ns", "t"+strings.Repeat("x", i%50)+string(rune(i))), 8)] = true
	}
	if len(slots) != 8 {
		t.Errorf("10000 tokens used %d keys, want 8", len(slots))
	}
	if fp := Hash("ns", "t").Fingerprint(); len(fp) != 12 {
		t.Errorf("fingerprint %q", fp)
	}
}
