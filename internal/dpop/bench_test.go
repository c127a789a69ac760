package dpop_test

import (
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/internal/dpop"
	"github.com/phantom-token/envoy-phantom-token/internal/dpop/gosig"
)

// BenchmarkParse is the per-request cost of a proof: parse, verify, and
// check against the request.
//
//	go test -run=^$ -bench=. -benchmem ./internal/dpop
func BenchmarkParse(b *testing.B) {
	for _, name := range []string{"ES256", "RS256", "PS256", "EdDSA", "ES384"} {
		b.Run(name, func(b *testing.B) {
			k := key(b, name)
			proof := k.sign(k.header("", ""), payload())
			now := time.Unix(testIAT, 0)
			b.ReportAllocs()
			for b.Loop() {
				p, err := dpop.Parse(proof, allAlgs, gosig.Verify)
				if err != nil {
					b.Fatal(err)
				}
				if err := p.Check(testMethod, testURI, testToken, now, time.Minute); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRefused is the cost of a proof refused before its signature (a
// proof for another URI is refused after it, at the full price).
func BenchmarkRefused(b *testing.B) {
	k := key(b, "ES256")
	proof := k.sign(k.header("", `"d":"AA"`), payload())
	for b.Loop() {
		if _, err := dpop.Parse(proof, allAlgs, gosig.Verify); err == nil {
			b.Fatal("accepted")
		}
	}
}

// BenchmarkParseOnly is Parse and Check without the signature's cost (a
// verifier that accepts): what every proof costs whichever verifier runs.
func BenchmarkParseOnly(b *testing.B) {
	for _, name := range []string{"ES256", "RS256"} {
		b.Run(name, func(b *testing.B) {
			k := key(b, name)
			proof := k.sign(k.header("", ""), payload())
			now := time.Unix(testIAT, 0)
			accept := func(dpop.Key, []byte, []byte) bool { return true }
			b.ReportAllocs()
			for b.Loop() {
				p, err := dpop.Parse(proof, allAlgs, accept)
				if err != nil {
					b.Fatal(err)
				}
				if err := p.Check(testMethod, testURI, testToken, now, time.Minute); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
