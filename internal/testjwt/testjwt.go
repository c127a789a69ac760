// Package testjwt makes JWT-shaped strings for tests. The signature is not a
// real one: the filter checks the shape, the upstream checks the signature.
package testjwt

import (
	"encoding/base64"
	"strings"
)

func enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// Make returns a compact JWS with an RS256 header and the given JSON payload.
func Make(payload string) string {
	return enc(`{"alg":"RS256","typ":"JWT","kid":"k1"}`) + "." + enc(payload) + "." + enc("signature-bytes")
}

// Parts joins raw header and payload JSON and a signature part as given.
func Parts(header, payload, signature string) string {
	return enc(header) + "." + enc(payload) + "." + signature
}

// Nest is n levels of open ("[" or `{"a":`) around 1, closed: JSON nested
// past any parser's stack, for the depth-bound tests.
func Nest(open string, n int) string {
	closer := "]"
	if open != "[" {
		closer = "}"
	}
	return strings.Repeat(open, n) + "1" + strings.Repeat(closer, n)
}
