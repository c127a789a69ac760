package cache

import (
	"reflect"
	"testing"
	"time"
)

// FuzzDecode: any value decodes to a set of at most Ways well-formed records,
// or to an empty set; a decoded set encodes back to the very same bytes, and
// what it means (Next) never panics.
func FuzzDecode(f *testing.F) {
	set := []Record{
		{Kind: Active, Hash: mine, Expires: later, JWT: "h.p.s"},
		{Kind: Pending, Hash: other(0), Expires: later},
		{Kind: Settled, Outcome: OutcomeBadGateway, Hash: other(1), Expires: later},
		{Kind: Inactive, Hash: other(2), Expires: later},
	}
	f.Add(Encode(set))
	f.Add(Encode(set[:1]))
	f.Add([]byte{})
	f.Add([]byte("phantom-token v1 record"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got := Decode(raw)
		if len(got) > Ways+FlightWays {
			t.Fatalf("%d records", len(got))
		}
		if got == nil {
			return
		}
		if back := Encode(got); !reflect.DeepEqual(back, raw) {
			t.Fatalf("decoded set does not encode back to its bytes")
		}
		for _, r := range got {
			switch r.Kind {
			case Active:
				if r.JWT == "" {
					t.Fatal("an active record without a JWT")
				}
			case Pending, Inactive:
				if r.JWT != "" {
					t.Fatal("a JWT in a record that holds none")
				}
			case Settled:
				if r.Outcome < OutcomeActive || r.Outcome > OutcomeServerError {
					t.Fatalf("settled outcome %d", r.Outcome)
				}
			default:
				t.Fatalf("kind %v", r.Kind)
			}
			for _, who := range []Asker{NewRequest, Waiter, WaitOver} {
				Next(got, r.Hash, time.UnixMilli(0), who)
			}
		}
	})
}
