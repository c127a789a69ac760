// Package cache defines how introspection answers are stored in proxy-wasm
// shared data: the keys and the record format. The host calls live in the
// filter; this package only decides.
//
// Shared data has no delete, no TTL and no size limit, so the cache is a fixed
// table of slots: a token hashes to one slot of maxEntries, and a new answer
// overwrites whatever the slot held. The number of keys can never exceed
// maxEntries, and an expired entry is reclaimed when its slot is reused.
// Records carry the full token hash, so a slot shared by two tokens never
// serves one token's JWT to the other.
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

// Record kinds. The first byte of every record says what it holds.
const kindActive byte = 1

// headerLen = kind + token hash + expiry.
const headerLen = 1 + sha256.Size + 8

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
	slot := binary.BigEndian.Uint64(h[:8]) % uint64(maxEntries)
	return keyPrefix + namespace + "/" + strconv.FormatUint(slot, 10)
}

// Encode builds the record of an active answer that expires at expires.
func Encode(h TokenHash, expires time.Time, jwt string) []byte {
	rec := make([]byte, headerLen, headerLen+len(jwt))
	rec[0] = kindActive
	copy(rec[1:], h[:])
	binary.BigEndian.PutUint64(rec[1+sha256.Size:], uint64(expires.UnixMilli()))
	return append(rec, jwt...)
}

// Decode returns the JWT a record holds for token h, if it holds one and the
// entry has not expired at now.
func Decode(rec []byte, h TokenHash, now time.Time) (jwt string, ok bool) {
	if len(rec) <= headerLen || rec[0] != kindActive || [sha256.Size]byte(rec[1:1+sha256.Size]) != h {
		return "", false
	}
	expires := int64(binary.BigEndian.Uint64(rec[1+sha256.Size:]))
	if now.UnixMilli() >= expires {
		return "", false
	}
	return string(rec[headerLen:]), true
}
