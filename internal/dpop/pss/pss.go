// Package pss verifies RSASSA-PSS signatures (RFC 8017 §8.1.2) as JWS's
// PS256, PS384 and PS512 make them (RFC 7518 §3.5: MGF1 with the message's
// hash, a salt as long as the hash). Envoy's verify_signature cannot ask for
// PSS padding, and Go's crypto/rsa would add 512 kB to the module, math/big's
// Exp 212 kB, where this package adds 39 kB (docs/sender-constrained.md), so
// the RSA public-key operation is done here with a small Montgomery
// exponentiation (rsa.go). It only ever handles public values, a public key
// and a signature, so it need not run in constant time.
package pss

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"math/bits"

	"github.com/phantom-token/envoy-phantom-token/internal/dpop"
)

// Bounds on the key: a modulus of 2048 to 8192 bits, and a public exponent
// of 3 to 2^31-1 (dpop.Parse's bounds; checked again here).
const (
	MinBits = 2048
	MaxBits = 8192
	MaxE    = 1<<31 - 1
)

// Verify reports whether sig is k.Alg's signature (PS256, PS384 or PS512)
// of input by the RSA key k (a dpop.Verifier for those algorithms). Any
// other alg, a key out of bounds and a signature that is not as long as the
// modulus, or not below it, are refused.
func Verify(k dpop.Key, input, sig []byte) bool {
	var h hashFunc
	switch k.Alg {
	case "PS256":
		h = sha256Sum
	case "PS384":
		h = sha384Sum
	case "PS512":
		h = sha512Sum
	default:
		return false
	}
	return verifyDigest(k.N, k.E, h, h(input), sig)
}

// A hashFunc is one of sha256Sum, sha384Sum and sha512Sum.
type hashFunc func(b ...[]byte) []byte

func sha256Sum(b ...[]byte) []byte {
	d := sha256.New()
	for _, p := range b {
		d.Write(p)
	}
	return d.Sum(nil)
}

func sha384Sum(b ...[]byte) []byte {
	d := sha512.New384()
	for _, p := range b {
		d.Write(p)
	}
	return d.Sum(nil)
}

func sha512Sum(b ...[]byte) []byte {
	d := sha512.New()
	for _, p := range b {
		d.Write(p)
	}
	return d.Sum(nil)
}

// verifyDigest verifies sig over digest, hashed with h, by the RSA key of
// modulus n and exponent e (big-endian, as a JWK holds them): RSAVP1, then
// EMSA-PSS-VERIFY with MGF1-h and a salt as long as digest.
func verifyDigest(n, e []byte, h hashFunc, digest, sig []byte) bool {
	for len(n) > 0 && n[0] == 0 {
		n = n[1:]
	}
	if len(n) == 0 || len(e) == 0 || len(e) > 4 || len(sig) != len(n) {
		return false
	}
	modBits := len(n)*8 - bits.LeadingZeros8(n[0])
	var ev uint32
	for _, b := range e {
		ev = ev<<8 | uint32(b)
	}
	if modBits < MinBits || modBits > MaxBits || n[len(n)-1]&1 == 0 || ev < 3 || ev > MaxE || ev&1 == 0 {
		return false
	}
	m, ok := publicOp(n, ev, sig)
	if !ok {
		return false
	}
	// The encoded message has emBits = modBits-1: one byte fewer than the
	// modulus when emBits is a multiple of 8, whose byte must then be zero
	// (I2OSP).
	emBits := modBits - 1
	emLen := (emBits + 7) / 8
	if len(m) > emLen {
		if m[0] != 0 {
			return false
		}
		m = m[1:]
	}
	return emsaPSSVerify(m, emBits, h, digest)
}

// emsaPSSVerify is RFC 8017 §9.1.2 with sLen = hLen.
func emsaPSSVerify(em []byte, emBits int, h hashFunc, mHash []byte) bool {
	hLen := len(mHash)
	sLen := hLen
	emLen := len(em)
	if emLen < hLen+sLen+2 || em[emLen-1] != 0xbc {
		return false
	}
	dbLen := emLen - hLen - 1
	maskedDB, hash := em[:dbLen], em[dbLen:emLen-1]
	topMask := byte(0xff >> (8*emLen - emBits)) // the bits of DB[0] that count
	if maskedDB[0]&^topMask != 0 {
		return false
	}
	db := mgf1(h, hash, dbLen)
	subtle.XORBytes(db, db, maskedDB)
	db[0] &= topMask
	ps := dbLen - sLen - 1 // zero bytes before the 0x01
	for _, b := range db[:ps] {
		if b != 0 {
			return false
		}
	}
	if db[ps] != 1 {
		return false
	}
	var zeros [8]byte
	return subtle.ConstantTimeCompare(h(zeros[:], mHash, db[dbLen-sLen:]), hash) == 1
}

// mgf1 is MGF1 (RFC 8017 §B.2.1) with h: n bytes of mask from seed.
func mgf1(h hashFunc, seed []byte, n int) []byte {
	mask := make([]byte, 0, n+64)
	var counter [4]byte
	for c := uint32(0); len(mask) < n; c++ {
		counter[0], counter[1], counter[2], counter[3] = byte(c>>24), byte(c>>16), byte(c>>8), byte(c)
		mask = append(mask, h(seed, counter[:])...)
	}
	return mask[:n]
}
