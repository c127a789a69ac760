package pss

import (
	"crypto/rand"
	"crypto/rsa"
	"testing"
)

// BenchmarkVerify: one PS verification by Verify and by crypto/rsa, per key
// (hashing the input included). Under wazero: GOOS=wasip1 GOARCH=wasm go
// test -c, then run the test binary with wazero (see
// docs/sender-constrained.md).
func BenchmarkVerify(b *testing.B) {
	input := []byte("eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IlBTMjU2In0.eyJqdGkiOiIxIn0")
	for _, c := range []struct{ key, alg string }{
		{"2048, e 65537", "PS256"},
		{"3072, e 2^31-1", "PS256"},
		{"4100, e 65537", "PS384"},
		{"8192, e 65537", "PS512"},
	} {
		k := testKeys(b)[c.key]
		h := hashes[c.alg]
		sig, err := rsa.SignPSS(rand.Reader, k, h, digest(h, input), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		if err != nil {
			b.Fatal(err)
		}
		key := jwsKey(c.alg, &k.PublicKey)
		b.Run(c.alg+" "+c.key+"/pss", func(b *testing.B) {
			for b.Loop() {
				if !Verify(key, input, sig) {
					b.Fatal("refused")
				}
			}
		})
		b.Run(c.alg+" "+c.key+"/crypto_rsa", func(b *testing.B) {
			for b.Loop() {
				if rsa.VerifyPSS(&k.PublicKey, h, digest(h, input), sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) != nil {
					b.Fatal("refused")
				}
			}
		})
	}
}

// BenchmarkPublicOpWorst: the RSA operation on the largest key Verify
// accepts, an 8192-bit modulus with the largest exponent, 2^31-1 (31
// squarings and 30 multiplications instead of 65537's 16 and 1): what a
// hostile proof can cost at most.
func BenchmarkPublicOpWorst(b *testing.B) {
	k := testKeys(b)["8192, e 65537"]
	n := k.N.Bytes()
	s := append([]byte(nil), n...)
	s[0]-- // below n
	for b.Loop() {
		if _, ok := publicOp(n, MaxE, s); !ok {
			b.Fatal("refused")
		}
	}
}
