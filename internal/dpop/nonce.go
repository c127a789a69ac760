package dpop

import (
	"crypto/sha256"
	"crypto/subtle"
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
	if subtle.ConstantTimeCompare(b[9:], nonceMAC(key, b[:9])) != 1 {
		return false
	}
	made := int64(binary.BigEndian.Uint64(b[1:9]))
	if made < 0 || made > 1<<40 {
		return false
	}
	d := now.Sub(time.Unix(made, 0))
	return d <= lifetime && d >= -lifetime
}

// nonceMAC is the truncated HMAC-SHA256 (RFC 2104) of a nonce's version and
// time. It is written out rather than taken from crypto/hmac, which links
// the FIPS module's hash registry and SHA-3 into the module.
func nonceMAC(key, versionAndTime []byte) []byte {
	const block = 64
	if len(key) > block {
		k := sha256.Sum256(key)
		key = k[:]
	}
	var ipad, opad [block]byte
	copy(ipad[:], key)
	copy(opad[:], key)
	for i := range block {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	inner := sha256.New()
	inner.Write(ipad[:])
	inner.Write([]byte("dpop-nonce"))
	inner.Write(versionAndTime)
	outer := sha256.New()
	outer.Write(opad[:])
	outer.Write(inner.Sum(nil))
	return outer.Sum(nil)[:nonceMACLen]
}
