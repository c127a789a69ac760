// Package cache decides how introspection answers are kept in proxy-wasm
// shared data and what a request does with what it finds there. The host calls
// live in the filter; this package only decides.
//
// Shared data has no delete, no TTL and no size limit, so the cache is a fixed
// table of sets: a token hashes to one of Sets(maxEntries) keys, and each key
// holds up to Ways records. The number of keys never exceeds maxEntries/Ways,
// rounded up, and expired records are reclaimed when their place is reused.
// Records carry the full token hash, so tokens that share a set never see each
// other's answers.
//
// A new token takes a free or expired place, or one that holds no answer worth
// keeping (a Settled record, another token's cached inactive verdict); it
// never takes a live Active answer or another worker's Pending claim. When the
// set has no such place the request calls without claiming: a flood of new
// tokens can cost calls, never hits (see Place).
//
// Besides answers, a record can say that a worker is introspecting the token
// right now (Pending), or what that introspection concluded, for the requests
// of other workers that waited for it (Settled). This is how workers share one
// introspection per token.
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
const Version = "v2"

// keyPrefix also keeps our keys apart from other plugins: Istio gives every
// WasmPlugin the same empty vm_id.
const keyPrefix = "phantom-token/" + Version + "/"

// Ways is the number of records a set holds.
const Ways = 4

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
	Hash    TokenHash
	Expires time.Time
	// JWT is set for Active, and for a Settled active answer.
	JWT string
}

// live reports whether r still counts at now.
func (r Record) live(now time.Time) bool { return r.Kind != None && now.Before(r.Expires) }

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

// Sets is the number of sets a table of maxEntries records has.
func Sets(maxEntries int) int { return (maxEntries + Ways - 1) / Ways }

// Key is the shared-data key of the set the token hashes to.
func Key(namespace string, h TokenHash, maxEntries int) string {
	return SetKey(namespace, binary.BigEndian.Uint64(h[:8])%uint64(Sets(maxEntries)))
}

// SetKey is the shared-data key of set number n.
func SetKey(namespace string, n uint64) string {
	return keyPrefix + namespace + "/" + strconv.FormatUint(n, 10)
}

// A record on the wire: kind, outcome, token hash, expiry (unix ms), JWT
// length, JWT. A set is its records one after the other.
const (
	offKind    = 0
	offOutcome = 1
	offHash    = 2
	offExpires = offHash + sha256.Size
	offLen     = offExpires + 8
	headerLen  = offLen + 4
)

// Decode reads every record of a set. A set that does not decode whole (a
// format this version does not know, a truncated value) is empty: whatever it
// held is treated as absent, never as a reason to wait, and its places are
// free.
func Decode(set []byte) []Record {
	var out []Record
	for len(set) > 0 {
		r, n, ok := decodeOne(set)
		if !ok || len(out) == Ways {
			return nil
		}
		out = append(out, r)
		set = set[n:]
	}
	return out
}

func decodeOne(b []byte) (Record, int, bool) {
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
	if o := Outcome(b[offOutcome]); k == Settled && (o < OutcomeActive || o > OutcomeServerError || (o == OutcomeActive) != (n > 0)) {
		return Record{}, 0, false
	}
	r := Record{Kind: k, Outcome: Outcome(b[offOutcome]), Hash: TokenHash(b[offHash:offExpires])}
	r.Expires = time.UnixMilli(int64(binary.BigEndian.Uint64(b[offExpires:])))
	if n > 0 {
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
		h[offKind], h[offOutcome] = byte(r.Kind), byte(r.Outcome)
		copy(h[offHash:], r.Hash[:])
		binary.BigEndian.PutUint64(h[offExpires:], uint64(r.Expires.UnixMilli()))
		binary.BigEndian.PutUint32(h[offLen:], uint32(len(r.JWT)))
		out = append(append(out, h[:]...), r.JWT...)
	}
	return out
}

// Find returns the token's live record in the set, or a record of Kind None.
func Find(set []Record, h TokenHash, now time.Time) Record {
	for _, r := range set {
		if r.Hash == h && r.live(now) {
			return r
		}
	}
	return Record{}
}

// Place is where a record for token h goes in the set: the token's own record
// first (whatever it holds), then a free place, an expired record, a Settled
// record, another token's cached inactive verdict. It never takes another
// token's live Active answer or live Pending claim. It returns -1 when there
// is no such place, and len(set) for a free place at the end.
func Place(set []Record, h TokenHash, now time.Time) int {
	best, rank := -1, 0
	for i, r := range set {
		var rk int
		switch {
		case r.Hash == h:
			return i
		case !r.live(now):
			rk = 3
		case r.Kind == Settled:
			rk = 2
		case r.Kind == Inactive:
			rk = 1
		}
		if rk > rank {
			best, rank = i, rk
		}
	}
	if len(set) < Ways && rank < 3 {
		return len(set)
	}
	return best
}

// Put writes r at its place (see Place) and returns the new set. ok is false
// when the set has no place for it; evicted reports that a live cached verdict
// of another token was replaced.
func Put(set []Record, r Record, now time.Time) (out []Record, evicted, ok bool) {
	i := Place(set, r.Hash, now)
	if i < 0 {
		return set, false, false
	}
	out = append(make([]Record, 0, len(set)+1), set...)
	if i == len(out) {
		return append(out, r), false, true
	}
	old := out[i]
	out[i] = r
	return out, old.Hash != r.Hash && old.live(now) && old.Kind == Inactive, true
}
