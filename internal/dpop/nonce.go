package dpop

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// Server nonces (RFC 9449 §8) are stateless: a nonce is the second it was
// made and a MAC of that second, so any worker, and any proxy holding the
// same key, can check it without shared state. Its wire format, in base64url:
//
//	byte 0      nonceVersion
//	bytes 1-8   the Unix second it was made, big-endian
//	bytes 9-24  HMAC-SHA256(key, "dpop-nonce" || bytes 0-8), first 16 bytes
const (
	nonceVersion = 1
	nonceMACLen  = 16
	nonceLen     = 1 + 8 + nonceMACLen
	// MinNonceKeyLen is the shortest key NewNonce and ValidNonce accept.
	MinNonceKeyLen = 32
	// NonceLen is the length of a nonce NewNonce makes, in characters.
	NonceLen = (nonceLen*8 + 5) / 6
)

// NewNonce returns a nonce made at now with key (at least MinNonceKeyLen
// bytes; "" for a shorter key). Nonces made in the same second are equal.
func NewNonce(key []byte, now time.Time) string {
	if len(key) < MinNonceKeyLen {
		return ""
	}
	var b [nonceLen]byte
	b[0] = nonceVersion
	binary.BigEndian.PutUint64(b[1:9], uint64(now.Unix()))
	copy(b[9:], nonceMAC(key, b[:9]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ValidNonce reports whether nonce was made by NewNonce with key at most
// lifetime from now, either side (proxies of a fleet sharing the key may
// disagree on the time by a little). The MAC is compared in constant time.
func ValidNonce(key []byte, nonce string, now time.Time, lifetime time.Duration) bool {
	if len(key) < MinNonceKeyLen || len(nonce) != NonceLen {
		return false
	}
	b, err := decodePart(nonce)
	if err != nil || len(b) != nonceLen || b[0] != nonceVersion {
		return false
	}
	if !hmac.Equal(b[9:], nonceMAC(key, b[:9])) {
		return false
	}
	made := int64(binary.BigEndian.Uint64(b[1:9]))
	if made < 0 || made > 1<<40 {
		return false
	}
	d := now.Sub(time.Unix(made, 0))
	return d <= lifetime && d >= -lifetime
}

// nonceMAC is the truncated MAC of a nonce's version and time.
func nonceMAC(key, versionAndTime []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("dpop-nonce"))
	m.Write(versionAndTime)
	return m.Sum(nil)[:nonceMACLen]
}
