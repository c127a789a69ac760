package gosig

import (
	"testing"

	"github.com/phantom-token/envoy-phantom-token/internal/dpop"
)

// TestVerifyRefuses: keys and signatures of the wrong shape are refused
// without a panic (dpop.Parse checks them first; Verify does not rely on it).
// Valid signatures are TestParseAlgorithms' in package dpop.
func TestVerifyRefuses(t *testing.T) {
	x32, sig64 := make([]byte, 32), make([]byte, 64)
	tests := []struct {
		name string
		key  dpop.Key
		sig  []byte
	}{
		{"unknown alg", dpop.Key{Alg: "HS256", X: x32}, sig64},
		{"empty alg", dpop.Key{}, sig64},
		{"EC key of the wrong size", dpop.Key{Alg: "ES256", X: x32[:31], Y: x32}, sig64},
		{"EC point at infinity", dpop.Key{Alg: "ES256", X: x32, Y: x32}, sig64},
		{"EC signature of the wrong size", dpop.Key{Alg: "ES384", X: make([]byte, 48), Y: make([]byte, 48)}, sig64},
		{"RSA without n", dpop.Key{Alg: "RS256", E: []byte{1, 0, 1}}, sig64},
		{"RSA exponent of 5 bytes", dpop.Key{Alg: "PS256", N: x32, E: []byte{1, 0, 0, 0, 1}}, sig64},
		{"Ed25519 key of 31 bytes", dpop.Key{Alg: "EdDSA", X: x32[:31]}, sig64},
		{"Ed25519 signature of 63 bytes", dpop.Key{Alg: "EdDSA", X: x32}, sig64[:63]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if Verify(tt.key, []byte("input"), tt.sig) {
				t.Errorf("Verify accepted")
			}
		})
	}
}
