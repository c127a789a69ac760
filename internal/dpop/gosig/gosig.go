// Package gosig verifies DPoP proof signatures with Go's standard library in
// the module: a dpop.Verifier. Linking it costs module size (crypto/ecdsa
// with its curves, crypto/rsa with math/big and fmt, crypto/ed25519), and,
// under Envoy's V8, about ten times the CPU of Envoy's own verify_signature
// for ES256 and RS256 (see measure/sigcost). The filter does not link it: it
// verifies ES* and RS* with verify_signature, PS* with package pss and EdDSA
// with crypto/ed25519; gosig is the reference the tests and measurements
// compare with.
package gosig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"math/big"

	"github.com/phantom-token/envoy-phantom-token/internal/dpop"
)

// Verify reports whether sig is k.Alg's signature of input by k (a
// dpop.Verifier). An EC point off its curve, or at infinity, is refused.
func Verify(k dpop.Key, input, sig []byte) bool {
	switch k.Alg {
	case "ES256":
		h := sha256.Sum256(input)
		return verifyEC(elliptic.P256(), k, h[:], sig)
	case "ES384":
		h := sha512.Sum384(input)
		return verifyEC(elliptic.P384(), k, h[:], sig)
	case "ES512":
		h := sha512.Sum512(input)
		return verifyEC(elliptic.P521(), k, h[:], sig)
	case "RS256", "PS256":
		h := sha256.Sum256(input)
		return verifyRSA(k, crypto.SHA256, h[:], sig)
	case "RS384", "PS384":
		h := sha512.Sum384(input)
		return verifyRSA(k, crypto.SHA384, h[:], sig)
	case "RS512", "PS512":
		h := sha512.Sum512(input)
		return verifyRSA(k, crypto.SHA512, h[:], sig)
	case "EdDSA":
		return len(k.X) == ed25519.PublicKeySize && len(sig) == ed25519.SignatureSize &&
			ed25519.Verify(ed25519.PublicKey(k.X), input, sig)
	}
	return false
}

// verifyEC verifies r||s, each of the curve's size (RFC 7518 §3.4).
func verifyEC(c elliptic.Curve, k dpop.Key, digest, sig []byte) bool {
	size := (c.Params().BitSize + 7) / 8
	if len(k.X) != size || len(k.Y) != size || len(sig) != 2*size {
		return false
	}
	point := make([]byte, 0, 1+2*size)
	point = append(append(append(point, 4), k.X...), k.Y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(c, point)
	if err != nil {
		return false
	}
	r := new(big.Int).SetBytes(sig[:size])
	s := new(big.Int).SetBytes(sig[size:])
	return ecdsa.Verify(pub, digest, r, s)
}

// verifyRSA verifies PKCS #1 v1.5 (RS*) or PSS with a salt as long as the
// hash (PS*, RFC 7518 §3.5). dpop.Parse has bounded n and e.
func verifyRSA(k dpop.Key, h crypto.Hash, digest, sig []byte) bool {
	if len(k.E) == 0 || len(k.E) > 4 || len(k.N) == 0 {
		return false
	}
	e := 0
	for _, b := range k.E {
		e = e<<8 | int(b)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(k.N), E: e}
	if k.Alg[0] == 'P' {
		return rsa.VerifyPSS(pub, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h}) == nil
	}
	return rsa.VerifyPKCS1v15(pub, h, digest, sig) == nil
}
