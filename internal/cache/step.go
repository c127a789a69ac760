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
)

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

// Next is what a request does with the token's record in the set:
//
//	record        new request     waiting         waiting past its bound
//	Active        Serve           Serve           Serve
//	Inactive      Refuse          Refuse          Refuse
//	Pending       Wait            Wait            Call (takes the place over)
//	Settled       Call            Deliver         Deliver
//	none          Call, or CallUnclaimed when the set has no place
//
// A new request never uses a Settled record: it may be the outcome of a call
// that ended before the request came (an error, an answer that may not be
// cached).
func Next(set []Record, h TokenHash, now time.Time, w Asker) (Step, Record) {
	r := Find(set, h, now)
	switch {
	case r.Kind == Active:
		return Serve, r
	case r.Kind == Inactive:
		return Refuse, r
	case r.Kind == Pending && w != WaitOver:
		return Wait, r
	case r.Kind == Settled && w != NewRequest:
		return Deliver, r
	case Place(set, h, now) < 0:
		return CallUnclaimed, Record{}
	}
	return Call, Record{}
}

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

// ToStore is the record an introspection answer leaves for token h:
//
//	answer                                 record
//	active, cacheable (CacheTTL > 0)       Active until now + CacheTTL
//	inactive, negativeTTL > 0              Inactive until now + negativeTTL
//	anything else, the call was claimed    Settled for SettledFor (for waiters elsewhere)
//	anything else                          nothing
//
// Errors are never cached: a Settled record only answers the requests that
// waited on this very call.
func ToStore(h TokenHash, a introspection.Answer, now time.Time, negativeTTL time.Duration, claimed bool) (Record, bool) {
	switch {
	case a.Outcome == introspection.Active && a.CacheTTL > 0:
		return Record{Kind: Active, Hash: h, Expires: now.Add(a.CacheTTL), JWT: a.JWT}, true
	case a.Outcome == introspection.Inactive && negativeTTL > 0:
		return Record{Kind: Inactive, Hash: h, Expires: now.Add(negativeTTL)}, true
	case claimed:
		r := Record{Kind: Settled, Outcome: storedOutcome[a.Outcome], Hash: h, Expires: now.Add(SettledFor)}
		if a.Outcome == introspection.Active {
			r.JWT = a.JWT
		}
		return r, r.Outcome != 0
	}
	return Record{}, false
}

// Store writes r into the set. A Settled record goes only where the token's
// own Pending claim still stands, so that it never takes another token's
// place. See Put for evicted and ok.
func Store(set []Record, r Record, now time.Time) (out []Record, evicted, ok bool) {
	if r.Kind == Settled && Find(set, r.Hash, now).Kind != Pending {
		return set, false, false
	}
	return Put(set, r, now)
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
