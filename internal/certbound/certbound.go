// Package certbound checks certificate-bound access tokens (RFC 8705 §3): a
// token whose cnf claim has "x5t#S256" is admitted only with a client
// certificate of that SHA-256 thumbprint.
package certbound

import (
	"crypto/subtle"
	"strings"

	"github.com/phantom-token/envoy-phantom-token/internal/jwt"
)

// Problem says why a request's client certificate does not satisfy its
// token's binding, or "" when it does. cert is the certificate's SHA-256,
// present false when the request has none. required: every token must be
// bound to a certificate.
//
//	token                      certificate        outcome
//	bound (x5t#S256)           the same SHA-256   admitted
//	bound                      another one        refused
//	bound                      none               refused
//	unbound, required          any                refused
//	unbound, not required      any                admitted
func Problem(b jwt.Binding, required bool, cert [32]byte, present bool) string {
	switch {
	case !b.CertBound && required:
		return "token is not bound to a client certificate, and require_certificate_bound is set"
	case !b.CertBound:
		return ""
	case !present:
		return "token is bound to a client certificate, and the request came without one"
	case subtle.ConstantTimeCompare(cert[:], b.CertSHA256[:]) != 1:
		return "token is bound to another client certificate than the request's"
	}
	return ""
}

// ParseDigest reads a SHA-256 written as 64 hex digits, either case (Envoy's
// connection.sha256_peer_certificate_digest, and the Hash of
// x-forwarded-client-cert). It is written out rather than taken from
// encoding/hex, whose errors link fmt into the module (0.2 MB).
func ParseDigest(s string) (d [32]byte, ok bool) {
	if len(s) != 64 {
		return d, false
	}
	for i := range d {
		hi, ok1 := fromHex(s[2*i])
		lo, ok2 := fromHex(s[2*i+1])
		if !ok1 || !ok2 {
			return [32]byte{}, false
		}
		d[i] = hi<<4 | lo
	}
	return d, true
}

func fromHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// MaxXFCC bounds the x-forwarded-client-cert value read.
const MaxXFCC = 64 << 10

// FromXFCC reads the client certificate's SHA-256 from an
// x-forwarded-client-cert value, as Envoy writes it: elements separated by
// commas, each of key=value pairs separated by semicolons, values that hold
// either quoted. The last element is the one the nearest proxy added (the TLS
// terminator in front of this gateway); its Hash is the certificate's. ok is
// false when the value is over MaxXFCC, not well formed, or its last element
// has no single valid Hash.
func FromXFCC(v string) (digest [32]byte, ok bool) {
	if len(v) > MaxXFCC {
		return digest, false
	}
	elements, ok := split(v, ',')
	if !ok || len(elements) == 0 {
		return digest, false
	}
	pairs, ok := split(elements[len(elements)-1], ';')
	if !ok {
		return digest, false
	}
	found := 0
	for _, p := range pairs {
		key, value, eq := strings.Cut(strings.TrimSpace(p), "=")
		if !eq {
			return digest, false
		}
		if strings.EqualFold(strings.TrimSpace(key), "hash") {
			found++
			digest, ok = ParseDigest(strings.Trim(strings.TrimSpace(value), `"`))
		}
	}
	return digest, found == 1 && ok
}

// split cuts s at each sep outside double quotes (a backslash escapes the
// next character inside them); ok is false for an unterminated quote.
func split(s string, sep byte) (parts []string, ok bool) {
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	if quoted {
		return nil, false
	}
	return append(parts, s[start:]), true
}
