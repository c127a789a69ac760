package cache

import (
	"strconv"
	"time"

	"github.com/phantom-token/envoy-phantom-token/internal/introspection"
)

// Step is what a request does next, given what the cache holds for its token.
type Step int

const (
	// Serve: an active answer is cached; admit its JWT.
	Serve Step = iota + 1
	// Refuse: an inactive verdict is cached (negative cache); 401.
	Refuse
	// Wait: another worker is calling for the token; wait for its answer.
	Wait
	// Deliver: the call a waiting request waited on has settled; it gets
	// that call's outcome.
	Deliver
	// Call: claim a place in the set (a Pending record) and call.
	Call
	// CallUnclaimed: the set has no place to claim; call without telling
	// other workers (they may call too).
	CallUnclaimed
	// ServeStale: the token's last call failed for a reason that is not the
	// identity server's verdict, and its stale answer may stand in.
	ServeStale
)

// Found reports whether the step comes from a record of the token's own, so
// that its other set need not be looked at.
func (s Step) Found() bool {
	return s == Serve || s == Refuse || s == Wait || s == Deliver || s == ServeStale
}

func (s Step) String() string {
	switch s {
	case Serve:
		return "Serve"
	case Refuse:
		return "Refuse"
	case Wait:
		return "Wait"
	case Deliver:
		return "Deliver"
	case Call:
		return "Call"
	case CallUnclaimed:
		return "CallUnclaimed"
	case ServeStale:
		return "ServeStale"
	}
	return "Step(" + strconv.Itoa(int(s)) + ")"
}

// Asker says who looks at the token's record.
type Asker int

const (
	// NewRequest: a request that has not waited.
	NewRequest Asker = iota
	// Waiter: a request waiting for another worker's call.
	Waiter
	// WaitOver: a request that waited as long as a call may take
	// (PendingFor); it calls itself now.
	WaitOver
)

// Next is what a request does with the token's records in the set:
//
//	records                          new request     waiting         waiting past its bound
//	Active                           Serve           Serve           Serve
//	Inactive                         Refuse          Refuse          Refuse
//	Pending                          Wait            Wait            Call (takes the place over)
//	Settled, transient, stale answer ServeStale      ServeStale      ServeStale
//	Settled                          Call            Deliver         Deliver
//	none                             Call, or CallUnclaimed when the set has no room for a claim
//
// A new request never uses a Settled record of another kind: it may be the
// outcome of a call that ended before the request came (an error, an answer
// that may not be cached). A failed call's Settled record stands for
// SettledFor, so a token whose calls fail is called at most about once per
// SettledFor while its stale answer is served.
//
// The record returned is the one the step uses: the answer served, the
// Settled record delivered, or, for a call, the token's stale answer (Kind
// None when it has none), which stands in if the call fails.
func Next(set []Record, h TokenHash, now time.Time, w Asker) (Step, Record) {
	answer, flight := Of(set, h, now)
	switch {
	case answer.Kind == Active && answer.live(now):
		return Serve, answer
	case answer.Kind == Inactive:
		return Refuse, answer
	case flight.Kind == Pending && w != WaitOver:
		return Wait, flight
	case flight.Kind == Settled && flight.Transient && answer.StandsIn(now):
		return ServeStale, answer
	case flight.Kind == Settled && w != NewRequest:
		return Deliver, flight
	case !Room(set, h, now):
		return CallUnclaimed, answer
	}
	return Call, answer
}

// Here reports whether Next's step and record say the token's place is in
// this set: a record of its own is there (a stale answer included), so its
// other set need not be looked at.
func Here(s Step, r Record) bool { return s.Found() || r.Kind != None }

// PendingFor is how long a Pending record stands for a call made with the
// given timeout: the call's own bound, and a second for the answer to be
// stored. Past it, a waiting request calls itself.
func PendingFor(timeout time.Duration) time.Duration { return timeout + time.Second }

// SettledFor is how long a Settled record stays for the requests of other
// workers that waited on the call; they look at least once per tick period.
const SettledFor = time.Second

// Claim writes a Pending record for token h until `until`. See Put for
// evicted and ok.
func Claim(set []Record, h TokenHash, now, until time.Time) (out []Record, evicted, ok bool) {
	return Put(set, Record{Kind: Pending, Hash: h, Expires: until}, now)
}

// Release removes the token's Pending claim, expired or not, so that other
// workers stop waiting for a call that will not answer. ok is false when the
// set holds no claim of the token's.
func Release(set []Record, h TokenHash) (out []Record, ok bool) {
	for i, r := range set {
		if r.Hash == h && r.Kind == Pending {
			return append(append(make([]Record, 0, len(set)-1), set[:i]...), set[i+1:]...), true
		}
	}
	return set, false
}

// Policy is what the configuration says of the records an answer leaves.
type Policy struct {
	// NegativeTTL is how long an inactive verdict is kept (0: not at all).
	NegativeTTL time.Duration
	// RefreshAhead is the last part of an active answer's cache lifetime
	// in which a hit starts a refresh (0: never).
	RefreshAhead float64
}

// ToStore is the record an introspection answer leaves for token h:
//
//	answer                                 record
//	active, its binding beside its JWT     nothing (the JWT alone would lose it)
//	active, cacheable (CacheTTL > 0)       Active until now + CacheTTL, stale for StaleFor more
//	inactive, NegativeTTL > 0              Inactive until now + NegativeTTL
//	anything else, the call was claimed    Settled for SettledFor (for waiters elsewhere)
//	anything else                          nothing
//
// Errors are never cached: a Settled record only answers the requests that
// waited on this very call, and for SettledFor says that the call failed.
func ToStore(h TokenHash, a introspection.Answer, now time.Time, p Policy, claimed bool) (Record, bool) {
	switch {
	case a.Outcome == introspection.Active && a.BindingBeside:
		return Record{}, false
	case a.Outcome == introspection.Active && a.CacheTTL > 0:
		r := Record{Kind: Active, Hash: h, Expires: now.Add(a.CacheTTL), JWT: a.JWT}
		if a.StaleFor > 0 {
			r.StaleUntil = r.Expires.Add(a.StaleFor)
		}
		if p.RefreshAhead > 0 {
			r.RefreshAt = r.Expires.Add(-time.Duration(float64(a.CacheTTL) * p.RefreshAhead))
		}
		return r, true
	case a.Outcome == introspection.Inactive && p.NegativeTTL > 0:
		return Record{Kind: Inactive, Hash: h, Expires: now.Add(p.NegativeTTL)}, true
	case claimed:
		r := Record{Kind: Settled, Outcome: storedOutcome[a.Outcome], Transient: a.Transient, Hash: h, Expires: now.Add(SettledFor)}
		if a.Outcome == introspection.Active {
			r.JWT, r.Transient = a.JWT, false
		}
		return r, r.Outcome != 0
	}
	return Record{}, false
}

// Store writes r into the set. A Settled record goes only where the token's
// own Pending claim still stands, so that it never takes another token's
// place. An answer that finds no place (see Put) where the token's claim
// stands leaves a Settled record there instead, for the requests of other
// workers that wait on the claim. See Put for evicted and ok.
func Store(set []Record, r Record, now time.Time) (out []Record, evicted, ok bool) {
	_, flight := Of(set, r.Hash, now)
	claimed := flight.Kind == Pending
	if r.Kind == Settled && !claimed {
		return set, false, false
	}
	if out, evicted, ok = Put(set, r, now); ok || !claimed {
		return out, evicted, ok
	}
	s := Record{Kind: Settled, Outcome: storedOutcome[introspection.Active], Hash: r.Hash, Expires: now.Add(SettledFor), JWT: r.JWT}
	if r.Kind == Inactive {
		s.Outcome, s.JWT = storedOutcome[introspection.Inactive], ""
	}
	return Put(set, s, now)
}

// Choose is the set, 0 or 1, where a token found in neither of its two sets
// claims its place and stores its answer: one where a claim has room, and of
// those the one with fewer live answers (the first on a tie). Placing each
// token in the less loaded of two sets is what lets a table of
// cache_max_entries live tokens hold almost all of them.
func Choose(first, second []Record, h TokenHash, now time.Time) int {
	r0, r1 := Room(first, h, now), Room(second, h, now)
	if r0 != r1 {
		if r1 {
			return 1
		}
		return 0
	}
	if Load(second, now) < Load(first, now) {
		return 1
	}
	return 0
}

// Lookup is what a request does when the token is not in its first set
// (Next did not find a record of its own there): it may be in the second;
// else it claims and stores in the set Choose picks. which is 0 or 1.
func Lookup(first, second []Record, h TokenHash, now time.Time, w Asker) (which int, step Step, r Record) {
	if step, r = Next(first, h, now, w); Here(step, r) {
		return 0, step, r
	}
	if step, r = Next(second, h, now, w); Here(step, r) {
		return 1, step, r
	}
	which = Choose(first, second, h, now)
	step, r = Next([2][]Record{first, second}[which], h, now, w)
	return which, step, r
}

// Lease writes a Pending record for token h until `until`, beside its live
// active answer, for a refresh ahead of the answer's end: only when the
// answer is still the one a hit found (its expiry is expires), no call for
// the token is under way or has just ended, and the set has room for a
// claim. The answer stays and is served until the refresh's answer replaces
// it.
func Lease(set []Record, h TokenHash, expires, now, until time.Time) (out []Record, ok bool) {
	answer, flight := Of(set, h, now)
	if answer.Kind != Active || !answer.live(now) || !answer.Expires.Equal(expires) || flight.Kind != None {
		return set, false
	}
	out, _, ok = Put(set, Record{Kind: Pending, Hash: h, Expires: until}, now)
	return out, ok
}

// MarkSeen marks the token's live Inactive verdict as having refused a request
// (see Put). ok is false when there is nothing to mark.
func MarkSeen(set []Record, h TokenHash, now time.Time) (out []Record, ok bool) {
	for i, r := range set {
		if r.Hash == h && r.Kind == Inactive && !r.Seen && r.live(now) {
			out = append([]Record(nil), set...)
			out[i].Seen = true
			return out, true
		}
	}
	return set, false
}

// storedOutcome maps the filter's outcomes to their wire codes.
var storedOutcome = map[introspection.Outcome]Outcome{
	introspection.Active:      OutcomeActive,
	introspection.Inactive:    OutcomeInactive,
	introspection.BadGateway:  OutcomeBadGateway,
	introspection.Unavailable: OutcomeUnavailable,
	introspection.ServerError: OutcomeServerError,
}

// Settled is the outcome a Settled record stands for. The JWT of an active one
// is parsed again by the reader (see Decode for what cannot be read).
func (r Record) Settled() introspection.Outcome {
	for o, code := range storedOutcome {
		if code == r.Outcome {
			return o
		}
	}
	return introspection.ServerError
}
