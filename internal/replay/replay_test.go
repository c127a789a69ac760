package replay

import (
	"reflect"
	"strconv"
	"testing"
	"time"
)

func TestAdd(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	later := now.Add(time.Minute)
	a, b := Hash("key", "jti-1"), Hash("key", "jti-2")
	live := func(h [16]byte) Entry { return Entry{Hash: h, Expires: later.UnixNano()} }
	dead := func(h [16]byte) Entry { return Entry{Hash: h, Expires: now.UnixNano()} }
	var full []Entry
	for i := range SetSize {
		full = append(full, live(Hash("key", "other-"+strconv.Itoa(i))))
	}
	tests := []struct {
		name    string
		set     []Entry
		verdict Verdict
		size    int
	}{
		{"empty set", nil, Fresh, 1},
		{"another proof", []Entry{live(b)}, Fresh, 2},
		{"the same proof, live", []Entry{live(b), live(a)}, Replayed, 2},
		{"the same proof, expired: forgotten", []Entry{dead(a)}, Fresh, 1},
		{"expired entries make room", append(append([]Entry{}, full[:SetSize-1]...), dead(b)), Fresh, SetSize},
		{"full of live entries: refused, nothing forgotten", full, Full, SetSize},
	}
	for _, tt := range tests {
		before := append([]Entry(nil), tt.set...)
		out, v := Add(tt.set, a, now, later)
		if v != tt.verdict || len(out) != tt.size {
			t.Errorf("%s: %v, %d entries", tt.name, v, len(out))
		}
		if !reflect.DeepEqual(tt.set, before) {
			t.Errorf("%s: the set read was changed", tt.name)
		}
	}
	if Hash("key", "jti") == Hash("other", "jti") || Hash("k", "ej") == Hash("ke", "j") {
		t.Error("a proof of another key, or another split, has the same hash")
	}
}

func TestEncoding(t *testing.T) {
	set := []Entry{{Hash("a", "1"), 1}, {Hash("b", "2"), 1 << 62}}
	if got := Decode(Encode(set)); !reflect.DeepEqual(got, set) {
		t.Errorf("round trip %+v", got)
	}
	if got := Decode(append(Encode(set), 1, 2, 3)); len(got) != 2 {
		t.Errorf("trailing bytes: %d entries", len(got))
	}
	big := make([]byte, entrySize*(SetSize+3))
	if got := Decode(big); len(got) != SetSize {
		t.Errorf("oversized value: %d entries", len(got))
	}
	if Sets(1) != 1 || Sets(spread) != 1 || Sets(spread+1) != 2 || Sets(100_000) != 25_000 {
		t.Error("Sets")
	}
	for i := range 100 {
		if n := SetOf(Hash("k", strconv.Itoa(i)), 7); n < 0 || n >= 7 {
			t.Fatalf("set %d of 7", n)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode([]Entry{{Hash("a", "1"), 5}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		set := Decode(b)
		if len(set) > SetSize {
			t.Fatalf("%d entries", len(set))
		}
		out, _ := Add(set, Hash("x", "y"), time.Unix(0, 3), time.Unix(0, 9))
		if len(out) > SetSize {
			t.Fatalf("%d entries after Add", len(out))
		}
	})
}
