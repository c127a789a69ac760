// Package cache defines how introspection answers are kept in proxy-wasm
// shared data: the keys and the record format. The host calls live in the
// filter; this package only decides.
//
// Shared data has no delete, no TTL and no size limit, so the cache is a fixed
// table of slots: a token hashes to one slot of maxEntries, and a new record
// overwrites whatever the slot held. The number of keys can never exceed
// maxEntries, and an expired entry is reclaimed when its slot is reused.
// Records carry the full token hash, so a slot shared by two tokens never
// serves one token's JWT to the other.
//
// Besides answers, a slot can say that a worker is introspecting the token
// right now (Pending), or what that introspection concluded, for the requests
// of other workers that waited for it (Settled). This is how workers share
// one introspection per token.
package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"time"
)

// Version is part of every key, so that a new record format never reads an
// old one left in the same VM's shared data.
const Version = "v1"

// keyPrefix also keeps our keys apart from other plugins: Istio gives every
// WasmPlugin the same empty vm_id.
const keyPrefix = "phantom-token/" + Version + "/"

// Kind is what a slot holds for a token.
type Kind byte

const (
	// None: nothing for this token (empty slot, another token, or expired).
	None Kind = iota
	// Active: a cached JWT, served to every request until it expires.
	Active
	// Pending: a worker is introspecting the token until the record expires.
	Pending
	// Settled: the outcome of an introspection, for requests that were
	// waiting on it; new requests do not use it.
	Settled
)

// Entry is a decoded record.
type Entry struct {
	Kind    Kind
	Expires time.Time
	// Outcome is the caller's code for a Settled answer.
	Outcome byte
	// JWT is set for Active, and for a Settled active answer.
	JWT string
}

// headerLen = kind + outcome + token hash + expiry (unix ms).
const headerLen = 2 + sha256.Size + 8

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

// Key is the shared-data key of the slot the token hashes to.
func Key(namespace string, h TokenHash, maxEntries int) string {
	return SlotKey(namespace, binary.BigEndian.Uint64(h[:8])%uint64(maxEntries))
}

// SlotKey is the shared-data key of a slot.
func SlotKey(namespace string, slot uint64) string {
	return keyPrefix + namespace + "/" + strconv.FormatUint(slot, 10)
}

// Encode builds a record for token h that is valid until expires.
func Encode(h TokenHash, e Entry) []byte {
	rec := make([]byte, headerLen, headerLen+len(e.JWT))
	rec[0], rec[1] = byte(e.Kind), e.Outcome
	copy(rec[2:], h[:])
	binary.BigEndian.PutUint64(rec[2+sha256.Size:], uint64(e.Expires.UnixMilli()))
	return append(rec, e.JWT...)
}

// Decode reads a slot for token h at now. A record of another token, an
// expired one or anything unreadable is None.
func Decode(rec []byte, h TokenHash, now time.Time) Entry {
	if len(rec) < headerLen || Kind(rec[0]) < Active || Kind(rec[0]) > Settled ||
		[sha256.Size]byte(rec[2:2+sha256.Size]) != h {
		return Entry{}
	}
	e := Entry{Kind: Kind(rec[0]), Outcome: rec[1], JWT: string(rec[headerLen:])}
	e.Expires = time.UnixMilli(int64(binary.BigEndian.Uint64(rec[2+sha256.Size:])))
	if !now.Before(e.Expires) || e.Kind == Active && e.JWT == "" {
		return Entry{}
	}
	return e
}

// Live reports whether rec holds an unexpired answer for any token: a store
// that overwrites it evicts that answer.
func Live(rec []byte, now time.Time) bool {
	return len(rec) > headerLen && Kind(rec[0]) == Active &&
		now.UnixMilli() < int64(binary.BigEndian.Uint64(rec[2+sha256.Size:]))
}
