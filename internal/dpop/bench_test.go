package dpop

import (
	"testing"
	"time"
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
				p, err := Parse(proof, allAlgs)
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
		if _, err := Parse(proof, allAlgs); err == nil {
			b.Fatal("accepted")
		}
	}
}
