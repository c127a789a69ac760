// Package cache decides how introspection answers are kept in proxy-wasm
// shared data and what a request does with what it finds there. The host calls
// live in the filter; this package only decides.
//
// Shared data has no delete, no TTL and no size limit, so the cache is a fixed
// table of sets: Sets(maxEntries) keys, each holding up to Ways answers (Active,
// Inactive) and FlightWays records of introspections under way or just ended
// (Pending, Settled). A token may live in either of two sets (Keys): it is
// looked for in both and placed in the one with fewer live answers. With
// Headroom places per configured entry, cache_max_entries live tokens all find
// a place (two choices of a 4-way set leave about 1 % of them to the worker's
// own copy at 80 % fill, against 19 % for one choice at 100 %).
//
// Records carry the full token hash, so tokens that share a set never see each
// other's answers. A set holds at most one record per token. What a new record
// may displace is a table (see Put): an active answer takes a free or expired
// place, else the place of another token's inactive verdict, else the live
// answer that expires first, so that a flood of valid tokens can never make
// new tokens uncacheable; an inactive verdict (the optional negative cache)
// only ever displaces a verdict that no request has been refused by yet, so a
// flood of random tokens cannot flush the verdicts of tokens being replayed.
// Claims never displace answers: they have places of their own.
//
// Besides answers, a record can say that a worker is introspecting the token
// right now (Pending), or what that introspection concluded, for the requests
// of other workers that waited for it (Settled). This is how workers share one
// introspection per token. A token has at most one answer and one such flight
// record in a set: a call for a token whose answer still stands (a refresh
// ahead of its end, or a stale answer kept for stale-if-error) leaves the
// answer in place until the call's own answer replaces it.
//
// An active answer has three times: it is served until Expires (its cache
// lifetime); a hit from RefreshAt on starts a refresh (refresh_ahead); and
// between Expires and StaleUntil it is stale: kept only to be served when
// the call for the token fails for a reason that is not the identity
// server's verdict (stale_if_error), and its place is free for any new
// answer.
package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"time"
)

// Version is part of every key. Any change to the record format, or to what a
// record may hold, bumps it, so that a module never reads another version's
// records (several module versions can share one vm_id, see keyPrefix).
const Version = "v4"

// keyPrefix also keeps our keys apart from other plugins: Istio gives every
// WasmPlugin the same empty vm_id.
const keyPrefix = "phantom-token/" + Version + "/"

// Ways is the number of answers (Active, Inactive) a set holds; FlightWays
// the number of Pending and Settled records beside them.
const (
	Ways       = 4
	FlightWays = 2
)

// Headroom is how many places the table has per configured entry, in
// quarters: 5 (1.25 places an entry), so that a table of cache_max_entries
// live tokens is filled to 80 % and two choices place almost all of them.
const headroomQuarters = 5

// Kind is what a record holds. The values are the wire format: explicit, never
// iota, and never reused for another meaning.
type Kind byte

const (
	// None: no usable record for the token.
	None Kind = 0
	// Active: a cached JWT, served to every request until it expires.
	Active Kind = 1
	// Pending: a worker is introspecting the token until the record expires.
	Pending Kind = 2
	// Settled: the outcome of an introspection, for requests of other workers
	// that were waiting on it; new requests do not use it.
	Settled Kind = 3
	// Inactive: a cached inactive verdict (the optional negative cache).
	Inactive Kind = 4
)

func (k Kind) String() string {
	switch k {
	case None:
		return "None"
	case Active:
		return "Active"
	case Pending:
		return "Pending"
	case Settled:
		return "Settled"
	case Inactive:
		return "Inactive"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Outcome is the stored code of a Settled record's introspection outcome. The
// values are the wire format; the filter maps them to and from its own
// outcomes in one table.
type Outcome byte

const (
	OutcomeActive      Outcome = 1
	OutcomeInactive    Outcome = 2
	OutcomeBadGateway  Outcome = 3
	OutcomeUnavailable Outcome = 4
	OutcomeServerError Outcome = 5
)

// Record is one decoded record.
type Record struct {
	Kind    Kind
	Outcome Outcome // Settled only
	// Transient: a Settled failure that is not the identity server's
	// verdict (no answer, 5xx, 429): a stale answer may stand in for it.
	Transient bool
	// Seen: a request was refused by this Inactive verdict since it was
	// stored, so it belongs to a token being replayed (see Put).
	Seen    bool
	Hash    TokenHash
	Expires time.Time
	// Active only: a hit from RefreshAt on starts a refresh (zero: never);
	// the answer may be served stale until StaleUntil (zero or Expires:
	// never).
	RefreshAt  time.Time
	StaleUntil time.Time
	// JWT is set for Active, and for a Settled active answer (see
	// DecodeFor for where it is not).
	JWT string
}

// answer reports whether r takes one of the Ways places of answers.
func (r Record) answer() bool { return r.Kind == Active || r.Kind == Inactive }

// live reports whether r still counts at now.
func (r Record) live(now time.Time) bool { return r.Kind != None && now.Before(r.Expires) }

// stale reports whether r is an active answer past its cache lifetime that
// may still be served when a call fails (stale-if-error).
func (r Record) stale(now time.Time) bool {
	return r.Kind == Active && !now.Before(r.Expires) && now.Before(r.StaleUntil)
}

// kept reports whether r holds its place at now: live, or stale.
func (r Record) kept(now time.Time) bool { return r.live(now) || r.stale(now) }

// StandsIn reports whether r may be served in place of a failed call at now:
// an active answer within its stale-if-error window (or still fresh).
func (r Record) StandsIn(now time.Time) bool { return r.Kind == Active && now.Before(r.StaleUntil) }

// RefreshDue reports whether a hit on r at now starts a refresh.
func (r Record) RefreshDue(now time.Time) bool {
	return r.Kind == Active && !r.RefreshAt.IsZero() && !now.Before(r.RefreshAt)
}

// TokenHash identifies a token within a configuration's namespace. The raw
// token is never stored or logged.
type TokenHash [sha256.Size]byte

// Hash returns the token's hash, keyed by the configuration's namespace.
func Hash(namespace, token string) TokenHash {
	h := sha256.New()
	h.Write([]byte(namespace))
	h.Write([]byte{0})
	h.Write([]byte(token))
	var out TokenHash
	h.Sum(out[:0])
	return out
}

// Fingerprint is a short, non-reversible name for the token, for logs.
func (h TokenHash) Fingerprint() string { return hex.EncodeToString(h[:6]) }

// Sets is the number of sets of a table for maxEntries live tokens: Ways
// answers a set, with headroom (see headroomQuarters).
func Sets(maxEntries int) int {
	places := (maxEntries*headroomQuarters + 3) / 4
	return (places + Ways - 1) / Ways
}

// Keys are the shared-data keys of the two sets the token may live in; they
// are the same key only in a table of one set.
func Keys(namespace string, h TokenHash, maxEntries int) [2]string {
	n := uint64(Sets(maxEntries))
	a, b := binary.BigEndian.Uint64(h[:8])%n, binary.BigEndian.Uint64(h[8:16])%n
	if a == b && n > 1 {
		b = (a + 1) % n
	}
	return [2]string{SetKey(namespace, a), SetKey(namespace, b)}
}

// SetKey is the shared-data key of set number n.
func SetKey(namespace string, n uint64) string {
	return keyPrefix + namespace + "/" + strconv.FormatUint(n, 10)
}

// A record on the wire: kind, detail (a Settled record's outcome; 1 for a Seen
// Inactive verdict; else 0), flags (flagTransient for a Settled record), token
// hash, expiry, refresh time, end of the stale window (unix ms; 0 for none),
// JWT length, JWT. A set is its records one after the other.
const (
	offKind    = 0
	offDetail  = 1
	offFlags   = 2
	offHash    = 3
	offExpires = offHash + sha256.Size
	offRefresh = offExpires + 8
	offStale   = offRefresh + 8
	offLen     = offStale + 8
	headerLen  = offLen + 4

	flagTransient = 1
)

// Decode reads every record of a set. A set that does not decode whole (a
// format this version does not know, a truncated value, more records of a
// kind than it has places for, two records of one token) is empty: whatever it
// held is treated as absent, never as a reason to wait, and its places are
// free.
//
// Each JWT is copied out of set.
func Decode(set []byte) []Record { return decode(set, nil) }

// DecodeFor is Decode for a reader that uses only token h's record: the JWTs
// of other tokens' records are not copied (their JWT is empty), so a waiter
// that looks at a set every tick copies one JWT at most. What it returns must
// never be written back: a writer decodes with Decode.
//
// Nothing keeps a view of set: a value the host returned may be freed by the
// Go runtime of a wasm module while still referenced (the host writes its
// address without a write barrier), so what is used is copied at once.
func DecodeFor(set []byte, h TokenHash) []Record { return decode(set, &h) }

func decode(set []byte, only *TokenHash) []Record {
	var out []Record
	answers := 0
	for len(set) > 0 {
		r, n, ok := decodeOne(set, only)
		if !ok || len(out) == Ways+FlightWays {
			return nil
		}
		if r.answer() {
			answers++
		}
		for _, o := range out {
			if o.Hash == r.Hash && o.answer() == r.answer() {
				return nil
			}
		}
		if answers > Ways || len(out)+1-answers > FlightWays {
			return nil
		}
		out = append(out, r)
		set = set[n:]
	}
	return out
}

func decodeOne(b []byte, only *TokenHash) (Record, int, bool) {
	if len(b) < headerLen {
		return Record{}, 0, false
	}
	k := Kind(b[offKind])
	if k != Active && k != Pending && k != Settled && k != Inactive {
		return Record{}, 0, false
	}
	n := int(binary.BigEndian.Uint32(b[offLen:]))
	if n > len(b)-headerLen || (k == Active) != (n > 0) && k != Settled {
		return Record{}, 0, false
	}
	d, flags := b[offDetail], b[offFlags]
	refresh, stale := binary.BigEndian.Uint64(b[offRefresh:]), binary.BigEndian.Uint64(b[offStale:])
	switch o := Outcome(d); {
	case k == Settled && (o < OutcomeActive || o > OutcomeServerError || (o == OutcomeActive) != (n > 0)):
		return Record{}, 0, false
	case k == Inactive && d > 1, k == Active && d != 0, k == Pending && d != 0:
		return Record{}, 0, false
	case flags&^flagTransient != 0, flags != 0 && (k != Settled || o == OutcomeActive || o == OutcomeInactive):
		return Record{}, 0, false
	case k != Active && (refresh != 0 || stale != 0):
		return Record{}, 0, false
	}
	r := Record{Kind: k, Hash: TokenHash(b[offHash:offExpires])}
	if k == Settled {
		r.Outcome, r.Transient = Outcome(d), flags == flagTransient
	}
	r.Seen = k == Inactive && d == 1
	r.Expires = time.UnixMilli(int64(binary.BigEndian.Uint64(b[offExpires:])))
	if refresh != 0 {
		r.RefreshAt = time.UnixMilli(int64(refresh))
	}
	if stale != 0 {
		r.StaleUntil = time.UnixMilli(int64(stale))
	}
	if n > 0 && (only == nil || *only == r.Hash) {
		r.JWT = string(b[headerLen : headerLen+n])
	}
	return r, headerLen + n, true
}

// Encode is the wire form of a set.
func Encode(records []Record) []byte {
	size := 0
	for _, r := range records {
		size += headerLen + len(r.JWT)
	}
	out := make([]byte, 0, size)
	for _, r := range records {
		var h [headerLen]byte
		h[offKind], h[offDetail] = byte(r.Kind), byte(r.Outcome)
		if r.Kind == Inactive && r.Seen {
			h[offDetail] = 1
		}
		if r.Transient {
			h[offFlags] = flagTransient
		}
		copy(h[offHash:], r.Hash[:])
		binary.BigEndian.PutUint64(h[offExpires:], uint64(r.Expires.UnixMilli()))
		if !r.RefreshAt.IsZero() {
			binary.BigEndian.PutUint64(h[offRefresh:], uint64(r.RefreshAt.UnixMilli()))
		}
		if !r.StaleUntil.IsZero() {
			binary.BigEndian.PutUint64(h[offStale:], uint64(r.StaleUntil.UnixMilli()))
		}
		binary.BigEndian.PutUint32(h[offLen:], uint32(len(r.JWT)))
		out = append(append(out, h[:]...), r.JWT...)
	}
	return out
}

// Of returns the token's records in the set: its answer, live or stale, and
// its live Pending or Settled record; Kind None where there is none.
func Of(set []Record, h TokenHash, now time.Time) (answer, flight Record) {
	for _, r := range set {
		switch {
		case r.Hash != h || !r.kept(now):
		case r.answer():
			answer = r
		default:
			flight = r
		}
	}
	return answer, flight
}

// Find returns the token's live record in the set: its live answer, else its
// live Pending or Settled record, else a record of Kind None.
func Find(set []Record, h TokenHash, now time.Time) Record {
	answer, flight := Of(set, h, now)
	if answer.live(now) {
		return answer
	}
	return flight
}

// Put writes r into the set and returns the new set. An answer (Active,
// Inactive) replaces both records of the token's; a Pending or Settled record
// replaces the token's earlier one of those, and leaves its answer as
// keepsAnswer says. Expired records go. A record takes a place of its own area (answers: Ways places; Pending
// and Settled: FlightWays) when one is free, else it displaces:
//
//	new record        displaces (first stale answers, then the one that expires first)
//	Active            another token's stale answer, else its Inactive verdict, else its Active answer
//	Inactive          another token's stale answer, else its Inactive verdict that no request was refused by yet
//	Pending, Settled  nothing: a claim never displaces anything
//
// ok is false when the set has no place for r (the set is returned
// unchanged); evicted reports that a live answer of another token was
// displaced (a stale one is not counted).
func Put(set []Record, r Record, now time.Time) (out []Record, evicted, ok bool) {
	out = make([]Record, 0, len(set)+1)
	used := 0
	for _, o := range set {
		if o.kept(now) && (o.Hash != r.Hash || keepsAnswer(r, o, now)) {
			out = append(out, o)
			if o.answer() == r.answer() {
				used++
			}
		}
	}
	room := FlightWays
	if r.answer() {
		room = Ways
	}
	if used < room {
		return append(out, r), false, true
	}
	victim := -1
	for i, o := range out {
		if displaces(r, o, now) && (victim < 0 || rank(o, now) < rank(out[victim], now) ||
			rank(o, now) == rank(out[victim], now) && o.Expires.Before(out[victim].Expires)) {
			victim = i
		}
	}
	if victim < 0 {
		return set, false, false
	}
	evicted = out[victim].live(now)
	out[victim] = r
	return out, evicted, true
}

// keepsAnswer reports whether the token's answer o stays beside its new
// Pending or Settled record r:
//
//	new record                   live answer   stale answer
//	Pending                      stays         stays (served if the call fails)
//	Settled, transient failure   stays         stays (served in its place)
//	Settled, inactive verdict    goes          goes (never served stale)
//	Settled, anything else       stays         goes
func keepsAnswer(r, o Record, now time.Time) bool {
	switch {
	case !o.answer() || r.answer():
		return false
	case r.Kind == Pending || r.Transient:
		return true
	case r.Outcome == OutcomeInactive:
		return false
	}
	return o.live(now)
}

// displaces reports whether new record r may take kept record o's place at
// now.
func displaces(r, o Record, now time.Time) bool {
	switch r.Kind {
	case Active:
		return o.answer()
	case Inactive:
		return o.Kind == Inactive && !o.Seen || o.stale(now)
	}
	return false
}

// rank orders the records an answer may displace: stale answers first, then
// verdicts, then live answers.
func rank(o Record, now time.Time) int {
	switch {
	case o.stale(now):
		return 0
	case o.Kind == Inactive:
		return 1
	}
	return 2
}

// Room reports whether token h could claim a place in the set (see Put).
func Room(set []Record, h TokenHash, now time.Time) bool {
	n := 0
	for _, o := range set {
		switch {
		case o.answer():
		case o.Hash == h:
			return true
		case o.live(now):
			n++
		}
	}
	return n < FlightWays
}

// Load is the number of live answers in the set.
func Load(set []Record, now time.Time) int {
	n := 0
	for _, o := range set {
		if o.live(now) && o.answer() {
			n++
		}
	}
	return n
}
