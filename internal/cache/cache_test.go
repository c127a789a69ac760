package cache

import (
	"strings"
	"testing"
	"time"
)

func TestRecord(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	h, other := Hash("ns", "token-a"), Hash("ns", "token-b")
	rec := Encode(h, now.Add(10*time.Second), "the.jwt.here")
	tests := []struct {
		name string
		rec  []byte
		h    TokenHash
		at   time.Time
		jwt  string
		ok   bool
	}{
		{"fresh entry", rec, h, now, "the.jwt.here", true},
		{"just before expiry", rec, h, now.Add(10*time.Second - time.Millisecond), "the.jwt.here", true},
		{"at expiry", rec, h, now.Add(10 * time.Second), "", false},
		{"after expiry", rec, h, now.Add(time.Hour), "", false},
		{"another token in the same slot", rec, other, now, "", false},
		{"empty value", nil, h, now, "", false},
		{"truncated record", rec[:20], h, now, "", false},
		{"unknown kind", append([]byte{9}, rec[1:]...), h, now, "", false},
	}
	for _, tt := range tests {
		jwt, ok := Decode(tt.rec, tt.h, tt.at)
		if jwt != tt.jwt || ok != tt.ok {
			t.Errorf("%s: got %q %v", tt.name, jwt, ok)
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
	if !strings.HasPrefix(k, "phantom-token/v1/ns/") || strings.Contains(k, "secret-token") {
		t.Errorf("key %q", k)
	}
	slots := map[string]bool{}
	for i := 0; i < 1000; i++ {
		slots[Key("ns", Hash("ns", "t"+string(rune('a'+i%26))+strings.Repeat("x", i)), 8)] = true
	}
	if len(slots) != 8 {
		t.Errorf("1000 tokens used %d slots of 8", len(slots))
	}
	if fp := Hash("ns", "t").Fingerprint(); len(fp) != 12 {
		t.Errorf("fingerprint %q", fp)
	}
}
