package certbound

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/phantom-token/envoy-phantom-token/internal/jwt"
)

var (
	certA = sha256.Sum256([]byte("certificate A"))
	certB = sha256.Sum256([]byte("certificate B"))
	hexA  = hex.EncodeToString(certA[:])
)

func TestProblem(t *testing.T) {
	bound := jwt.Binding{CertBound: true, CertSHA256: certA}
	dpopOnly := jwt.Binding{JKT: "k"}
	tests := []struct {
		name     string
		b        jwt.Binding
		required bool
		cert     [32]byte
		present  bool
		ok       bool
	}{
		{"bound, the same certificate", bound, false, certA, true, true},
		{"bound, the same certificate, required", bound, true, certA, true, true},
		{"bound, another certificate", bound, false, certB, true, false},
		{"bound, no certificate", bound, false, [32]byte{}, false, false},
		{"bound to a zero digest, no certificate", jwt.Binding{CertBound: true}, false, [32]byte{}, false, false},
		{"unbound, required", jwt.Binding{}, true, certA, true, false},
		{"bound to a DPoP key only, required", dpopOnly, true, certA, true, false},
		{"unbound, not required", jwt.Binding{}, false, [32]byte{}, false, true},
		{"unbound, not required, with a certificate", jwt.Binding{}, false, certA, true, true},
	}
	for _, tt := range tests {
		if got := Problem(tt.b, tt.required, tt.cert, tt.present); (got == "") != tt.ok {
			t.Errorf("%s: %q", tt.name, got)
		}
	}
}

func TestFromXFCC(t *testing.T) {
	tests := []struct {
		name, value string
		ok          bool
	}{
		{"Envoy's SANITIZE_SET", `Hash=` + hexA + `;Subject="CN=client";URI=spiffe://a/b`, true},
		{"the last element is the nearest proxy's", `By=x;Hash=` + strings.Repeat("0", 64) + `,By=y;Hash=` + hexA, true},
		{"quoted values with separators", `Hash=` + strings.Repeat("1", 64) + `,Subject="CN=a,O=b;c";Cert="-----BEGIN\"x";Hash="` + hexA + `"`, true},
		{"key case", `hash=` + hexA, true},
		{"spaces", ` By=x ; Hash=` + hexA + ` `, true},
		{"upper-case hex", `Hash=` + strings.ToUpper(hexA), true},
		{"no Hash", `By=x;Subject="CN=a"`, false},
		{"Hash only in an earlier element", `Hash=` + hexA + `,By=y`, false},
		{"two Hashes in the last element", `Hash=` + hexA + `;Hash=` + hexA, false},
		{"short hash", `Hash=` + hexA[:62], false},
		{"not hex", `Hash=` + strings.Repeat("g", 64), false},
		{"unterminated quote", `Subject="CN=a;Hash=` + hexA, false},
		{"a pair without =", `Hash=` + hexA + `;junk`, false},
		{"empty", ``, false},
		{"over the bound", `Hash=` + hexA + `;Cert="` + strings.Repeat("a", MaxXFCC) + `"`, false},
	}
	for _, tt := range tests {
		d, ok := FromXFCC(tt.value)
		if ok != tt.ok || ok && d != certA {
			t.Errorf("%s: %x %v", tt.name, d, ok)
		}
	}
}

func FuzzFromXFCC(f *testing.F) {
	f.Add(`By=x;Hash=` + hexA + `;Subject="CN=a,b"`)
	f.Add(`Hash="` + hexA + `",Hash=` + hexA)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := FromXFCC(v)
		if ok && !strings.Contains(strings.ToLower(v), hex.EncodeToString(d[:])) {
			t.Fatalf("a digest that is not in the value: %x", d)
		}
	})
}
