package cache

import (
	"reflect"
	"testing"
	"time"
)

// staleRec is an active answer of h whose cache lifetime ended at t0 and
// that may be served stale until later.
func staleRec(h TokenHash) Record {
	r := rec(Active, h, t0.Add(-time.Second))
	r.StaleUntil = later
	return r
}

func transientRec(h TokenHash) Record {
	r := rec(Settled, h, later)
	r.Transient = true
	return r
}

// TestNextWithStaleAnswers has one row per rule of Next's table that a stale
// answer or a refresh lease takes part in.
func TestNextWithStaleAnswers(t *testing.T) {
	fresh := rec(Active, mine, later)
	gone := rec(Active, mine, t0.Add(-time.Second))
	gone.StaleUntil = t0 // its stale window has ended too
	settled := rec(Settled, mine, later)
	tests := []struct {
		name string
		set  []Record
		who  Asker
		want Step
		// kind of the record Next returns with the step
		kind Kind
	}{
		{"a fresh answer beside a refresh lease: served", []Record{fresh, rec(Pending, mine, later)}, NewRequest, Serve, Active},
		{"a stale answer alone: call, with the stale answer at hand", []Record{staleRec(mine)}, NewRequest, Call, Active},
		{"a stale answer and a call under way: wait for it", []Record{staleRec(mine), rec(Pending, mine, later)}, NewRequest, Wait, Pending},
		{"a stale answer and a transient failure: served stale to a new request", []Record{staleRec(mine), transientRec(mine)}, NewRequest, ServeStale, Active},
		{"a stale answer and a transient failure: served stale to a waiter", []Record{staleRec(mine), transientRec(mine)}, Waiter, ServeStale, Active},
		{"a stale answer and a verdict-like failure: delivered to a waiter", []Record{staleRec(mine), settled}, Waiter, Deliver, Settled},
		{"a stale answer and a verdict-like failure: a new request calls", []Record{staleRec(mine), settled}, NewRequest, Call, Active},
		{"a transient failure without a stale answer: delivered", []Record{transientRec(mine)}, Waiter, Deliver, Settled},
		{"a transient failure past the stale window: a new request calls", []Record{gone, transientRec(mine)}, NewRequest, Call, None},
		{"another token's stale answer is not ours", []Record{staleRec(other(0)), transientRec(mine)}, NewRequest, Call, None},
	}
	for _, tt := range tests {
		step, r := Next(tt.set, mine, t0, tt.who)
		if step != tt.want || r.Kind != tt.kind {
			t.Errorf("%s: %v with a %v record, want %v with %v", tt.name, step, r.Kind, tt.want, tt.kind)
		}
	}
}

// A token whose stale answer is in its second set claims its call there,
// so that the stale answer is at hand when the call fails.
func TestLookupFindsTheStaleAnswersSet(t *testing.T) {
	which, step, r := Lookup(nil, []Record{staleRec(mine)}, mine, t0, NewRequest)
	if which != 1 || step != Call || r.Kind != Active {
		t.Errorf("set %d, %v with %v", which, step, r.Kind)
	}
}

// TestPutKeepsAndDropsAnswers has one row per rule of keepsAnswer's table,
// and of what a stale answer may be displaced by.
func TestPutKeepsAndDropsAnswers(t *testing.T) {
	fresh := rec(Active, mine, later)
	inactive := rec(Settled, mine, later)
	inactive.Outcome = OutcomeInactive
	tests := []struct {
		name   string
		answer Record
		r      Record
		kept   bool
	}{
		{"a claim keeps a live answer (refresh lease)", fresh, rec(Pending, mine, later), true},
		{"a claim keeps a stale answer", staleRec(mine), rec(Pending, mine, later), true},
		{"a transient failure keeps a stale answer", staleRec(mine), transientRec(mine), true},
		{"a transient failure keeps a live answer", fresh, transientRec(mine), true},
		{"an inactive verdict takes a live answer away", fresh, inactive, false},
		{"an inactive verdict takes a stale answer away", staleRec(mine), inactive, false},
		{"another failure keeps a live answer", fresh, rec(Settled, mine, later), true},
		{"another failure takes a stale answer away", staleRec(mine), rec(Settled, mine, later), false},
		{"a new answer replaces the old", staleRec(mine), rec(Active, mine, later.Add(time.Second)), false},
	}
	for _, tt := range tests {
		out, _, ok := Put([]Record{tt.answer, rec(Pending, mine, later)}, tt.r, t0)
		if !ok {
			t.Fatalf("%s: no place", tt.name)
		}
		answer, flight := Of(out, mine, t0)
		if got := reflect.DeepEqual(answer, tt.answer); got != tt.kept {
			t.Errorf("%s: answer kept %v, want %v (set %+v)", tt.name, got, tt.kept, out)
		}
		if !tt.r.answer() && !reflect.DeepEqual(flight, tt.r) {
			t.Errorf("%s: flight record %+v", tt.name, flight)
		}
		if len(Decode(Encode(out))) != len(out) {
			t.Errorf("%s: the set does not decode", tt.name)
		}
	}
}

// A stale answer holds no place: any new answer takes it before a live one,
// and its going is not an eviction.
func TestStaleAnswersMakeRoom(t *testing.T) {
	set := []Record{rec(Active, other(0), later), staleRec(other(1)), rec(Inactive, other(2), later), rec(Active, other(3), later)}
	for _, r := range []Record{rec(Active, mine, later), rec(Inactive, mine, later)} {
		out, evicted, ok := Put(set, r, t0)
		if !ok || evicted || Find(out, mine, t0).Kind != r.Kind {
			t.Errorf("%v: ok %v evicted %v", r.Kind, ok, evicted)
		}
		if a, _ := Of(out, other(1), t0); a.Kind != None {
			t.Errorf("%v: the stale answer stayed", r.Kind)
		}
		if a, _ := Of(out, other(2), t0); a.Kind != Inactive {
			t.Errorf("%v: a live verdict went before the stale answer", r.Kind)
		}
	}
	if Load(set, t0) != 3 {
		t.Errorf("load %d: a stale answer counts", Load(set, t0))
	}
	// Past its window, a stale answer is gone at the next write.
	out, _, _ := Put([]Record{staleRec(other(1))}, rec(Pending, mine, later), later)
	if a, _ := Of(out, other(1), later); a.Kind != None || len(out) != 1 {
		t.Errorf("an ended stale window stayed: %+v", out)
	}
}

// TestLease has one row per condition of a refresh lease.
func TestLease(t *testing.T) {
	fresh := rec(Active, mine, later)
	busy := []Record{rec(Pending, other(4), later), rec(Pending, other(5), later)}
	tests := []struct {
		name    string
		set     []Record
		expires time.Time
		ok      bool
	}{
		{"a live answer, nothing under way", []Record{fresh}, later, true},
		{"the answer was replaced since the hit", []Record{fresh}, later.Add(-time.Second), false},
		{"a refresh is already under way", []Record{fresh, rec(Pending, mine, later)}, later, false},
		{"a call for the token has just ended", []Record{fresh, rec(Settled, mine, later)}, later, false},
		{"no answer", nil, later, false},
		{"a stale answer", []Record{staleRec(mine)}, t0.Add(-time.Second), false},
		{"no room for a claim", append([]Record{fresh}, busy...), later, false},
	}
	for _, tt := range tests {
		out, ok := Lease(tt.set, mine, tt.expires, t0, later)
		if ok != tt.ok {
			t.Errorf("%s: ok %v", tt.name, ok)
			continue
		}
		answer, flight := Of(out, mine, t0)
		if ok && (flight.Kind != Pending || !reflect.DeepEqual(answer, fresh)) {
			t.Errorf("%s: %+v", tt.name, out)
		}
		if !ok && !reflect.DeepEqual(out, tt.set) {
			t.Errorf("%s: the set changed", tt.name)
		}
	}
}

func TestRecordTimes(t *testing.T) {
	r := rec(Active, mine, later)
	if r.RefreshDue(t0) || r.StandsIn(later) {
		t.Error("a record without refresh or stale times")
	}
	r.RefreshAt, r.StaleUntil = t0, later.Add(time.Second)
	if !r.RefreshDue(t0) || r.RefreshDue(t0.Add(-time.Millisecond)) {
		t.Error("refresh time")
	}
	if !r.StandsIn(later) || r.StandsIn(later.Add(time.Second)) {
		t.Error("stale window")
	}
}

// The wire form keeps the new times and flag, and refuses what only an
// answer may carry on another record, and two answers of one token.
func TestEncodeDecodeStaleAndRefresh(t *testing.T) {
	a := rec(Active, mine, later)
	a.RefreshAt, a.StaleUntil = t0, later.Add(time.Minute)
	set := []Record{a, transientRec(mine), staleRec(other(1))}
	if got := Decode(Encode(set)); !reflect.DeepEqual(got, set) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, set)
	}
	pending := rec(Pending, mine, later)
	pending.StaleUntil = later
	activeFlag := rec(Active, mine, later)
	activeFlag.Transient = true
	for name, bad := range map[string][]Record{
		"two answers of one token":    {rec(Active, mine, later), rec(Inactive, mine, later)},
		"two flight records":          {rec(Pending, mine, later), rec(Settled, mine, later)},
		"a pending record with times": {pending},
		"a transient active record":   {activeFlag},
	} {
		if got := Decode(Encode(bad)); got != nil {
			t.Errorf("%s: decoded to %+v", name, got)
		}
	}
	raw := Encode([]Record{transientRec(mine)})
	raw[offFlags] = 2
	if Decode(raw) != nil {
		t.Error("an unknown flag decoded")
	}
}
