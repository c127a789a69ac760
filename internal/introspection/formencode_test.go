package introspection

import (
	"math/rand/v2"
	"net/url"
	"testing"
)

// FormEncode encodes as net/url.QueryEscape does, byte for byte: every single
// byte, the table's strings, and 10,000 random ones.
func TestFormEncodeMatchesQueryEscape(t *testing.T) {
	inputs := []string{"", "abc", "a b", "a+b&c=d", "100%", "é", "\x00\xff", "tok.en-_~/?#[]@!$'()*,;"}
	for c := range 256 {
		inputs = append(inputs, string([]byte{byte(c)}))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		inputs = append(inputs, string(b))
	}
	for _, in := range inputs {
		if got, want := FormEncode(in), url.QueryEscape(in); got != want {
			t.Fatalf("FormEncode(%q) = %q, want %q", in, got, want)
		}
	}
}
