// Package replay remembers the jti of every DPoP proof the filter accepted
// until the proof could no longer be accepted anyway (its iat window), so
// that a proof is used once (RFC 9449 §11.1). The memory is shared data: one
// per proxy, for all its workers, in fixed sets of SetSize entries, each set
// a shared-data value written with compare-and-swap.
//
// A set that is full of live entries refuses a new proof rather than forget
// a live one: forgetting would let that proof be replayed.
package replay

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"time"
)

// SetSize is the entries of one set, and spread the sets per entry of
// dpop_replay_max_entries: proofs fall into sets by their hash, so a set
// fills before the whole memory does. With four entries a set on average at
// the configured load and room for sixteen, a set is full with a
// probability of about 10⁻⁶ (Poisson, λ = 4): a proxy taking as many proofs
// in two windows as configured is not refused. (Eight per set, as first
// built, refused 4 to 9 of 28,000 proofs with the memory a third full:
// docs/performance.md, DPoP.)
const (
	SetSize = 16
	spread  = 4
)

// Entry is a remembered proof: a hash of its key thumbprint and jti, and
// when it may be forgotten.
type Entry struct {
	Hash    [16]byte
	Expires int64 // unix nanoseconds
}

// Verdict is what a set says of a proof.
type Verdict int

const (
	// Fresh: not seen; the set with it added is to be written.
	Fresh Verdict = iota
	// Replayed: seen within its window.
	Replayed
	// Full: every entry of the set is live; the proof cannot be remembered.
	Full
)

func (v Verdict) String() string {
	switch v {
	case Fresh:
		return "fresh"
	case Replayed:
		return "replayed"
	case Full:
		return "full"
	}
	return "Verdict(" + strconv.Itoa(int(v)) + ")"
}

// Hash names a proof: its key's thumbprint and its jti (a jti is unique
// per key, RFC 9449 §4.2).
func Hash(jkt, jti string) [16]byte {
	h := sha256.New()
	h.Write([]byte(jkt))
	h.Write([]byte{0})
	h.Write([]byte(jti))
	var out [16]byte
	copy(out[:], h.Sum(nil))
	return out
}

// Sets is the number of sets for maxEntries proofs (see spread).
func Sets(maxEntries int) int { return max(1, (maxEntries+spread-1)/spread) }

// SetOf is the set a proof's hash belongs to, of n.
func SetOf(h [16]byte, n int) int { return int(binary.LittleEndian.Uint64(h[:8]) % uint64(n)) }

// Key is the shared-data key of set n.
func Key(n int) string { return "phantom-token/v3/dpop-jti/" + strconv.Itoa(n) }

// Add decides on a proof with hash h, remembered until expires, against the
// set's entries at now: expired entries are dropped; a live entry of h is a
// replay; a set of SetSize live entries is full.
func Add(set []Entry, h [16]byte, now, expires time.Time) ([]Entry, Verdict) {
	out := set[:0:0]
	for _, e := range set {
		if e.Expires <= now.UnixNano() {
			continue
		}
		if e.Hash == h {
			return set, Replayed
		}
		out = append(out, e)
	}
	if len(out) >= SetSize {
		return set, Full
	}
	return append(out, Entry{Hash: h, Expires: expires.UnixNano()}), Fresh
}

const entrySize = 24

// Encode is a set as stored.
func Encode(set []Entry) []byte {
	b := make([]byte, 0, len(set)*entrySize)
	for _, e := range set {
		b = append(b, e.Hash[:]...)
		b = binary.LittleEndian.AppendUint64(b, uint64(e.Expires))
	}
	return b
}

// Decode reads a stored set. Bytes that do not make whole entries, or more
// than SetSize, are read as far as they go: a set is never larger than
// Encode makes it.
func Decode(b []byte) []Entry {
	n := min(len(b)/entrySize, SetSize)
	set := make([]Entry, n)
	for i := range set {
		copy(set[i].Hash[:], b[i*entrySize:])
		set[i].Expires = int64(binary.LittleEndian.Uint64(b[i*entrySize+16:]))
	}
	return set
}
