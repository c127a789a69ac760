// Package bearer reads the access token from the Authorization request header
// as RFC 6750 §2.1 defines it.
package bearer

import (
	"strconv"
	"strings"
)

// Result says what the Authorization header held.
type Result int

const (
	// Found: one header with the Bearer scheme and a well-formed token.
	Found Result = iota
	// Missing: no header, an empty one, another scheme or Bearer without a
	// token. Answered with a challenge that carries no error code (RFC 6750 §3.1).
	Missing
	// Malformed: a Bearer token that is not a b64token or is too long.
	Malformed
	// Duplicate: more than one Authorization header.
	Duplicate
)

func (r Result) String() string {
	switch r {
	case Found:
		return "Found"
	case Missing:
		return "Missing"
	case Malformed:
		return "Malformed"
	case Duplicate:
		return "Duplicate"
	}
	return "Result(" + strconv.Itoa(int(r)) + ")"
}

// Scheme is the authorization scheme a token came with.
type Scheme int

const (
	// Bearer: RFC 6750.
	Bearer Scheme = iota
	// DPoP: RFC 9449 §7.1; the token's proof is in the DPoP header.
	DPoP
)

func (s Scheme) String() string {
	if s == DPoP {
		return "DPoP"
	}
	return "Bearer"
}

// FromHeader takes the Authorization header's value (present false when the
// request has none) and returns the token. maxLen bounds the token's length.
// Envoy folds repeated Authorization headers into one value joined by ",",
// which is how a second credential shows (Duplicate).
//
// Unlike the NGINX module, which searches for "bearer " anywhere in the value,
// the scheme must start the value: "Foo Bearer x" is another scheme.
func FromHeader(v string, present bool, maxLen int) (string, Result) {
	token, _, r := WithScheme(v, present, maxLen, false)
	return token, r
}

// WithScheme is FromHeader that also accepts the DPoP scheme when dpop is
// true (RFC 9449 §7.1: its token has the syntax of a Bearer token), and says
// which scheme the token came with. Without dpop, "DPoP x" is another scheme
// (Missing), as "Basic x" is.
func WithScheme(v string, present bool, maxLen int, dpop bool) (string, Scheme, Result) {
	if !present {
		return "", Bearer, Missing
	}
	token, scheme, r := parse(v, maxLen, dpop)
	// A value that holds a token has no comma (a b64token has none), so
	// only another result needs the look for a second credential.
	if r != Found && folded(v) {
		return "", Bearer, Duplicate
	}
	return token, scheme, r
}

// parse reads one credential: the scheme, then the token.
func parse(v string, maxLen int, dpop bool) (string, Scheme, Result) {
	scheme, rest, ok := Bearer, "", false
	if rest, ok = cutScheme(v, "bearer"); !ok && dpop {
		scheme = DPoP
		rest, ok = cutScheme(v, "dpop")
	}
	if !ok {
		return "", Bearer, Missing
	}
	token := trimSpace(rest)
	switch {
	case token == "":
		return "", scheme, Missing
	case len(token) > maxLen || !isB64Token(token):
		return "", scheme, Malformed
	}
	return token, scheme, Found
}

// HasBearerScheme reports whether v starts with the Bearer scheme (in any
// case) and a space or tab: the first thing WithScheme checks of a Bearer
// token.
func HasBearerScheme(v string) bool {
	_, ok := cutScheme(v, "bearer")
	return ok
}

// cutScheme returns what follows the scheme name (lower-case ASCII letters)
// when v starts with it in any case and a space or tab follows it. (A cache
// hit parses a header: these loops are the strings functions' work without
// their calls.)
func cutScheme(v, name string) (string, bool) {
	if len(v) <= len(name) || !isSpace(v[len(name)]) {
		return "", false
	}
	for i := range len(name) {
		if v[i]|0x20 != name[i] { // ASCII letters only: upper and lower case
			return "", false
		}
	}
	return v[len(name):], true
}

// trimSpace trims spaces and tabs from both ends.
func trimSpace(s string) string {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// folded reports a value that holds a second credential after a comma. Envoy
// folds repeated headers it indexes, Authorization among them, into one value
// joined by ",": "Bearer a" sent twice arrives as "Bearer a,Bearer a".
func folded(v string) bool {
	_, rest, found := strings.Cut(v, ",")
	for found {
		var part string
		part, rest, found = strings.Cut(rest, ",")
		part = strings.TrimLeft(part, " \t")
		scheme, credentials, spaced := strings.Cut(part, " ")
		if strings.EqualFold(part, "bearer") || spaced && scheme != "" && strings.TrimSpace(credentials) != "" {
			return true
		}
	}
	return false
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' }

// isB64Token: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
func isB64Token(s string) bool {
	i := 0
	for i+4 <= len(s) && b64char[s[i]] && b64char[s[i+1]] && b64char[s[i+2]] && b64char[s[i+3]] {
		i += 4 // four at a time: a token is tens of bytes, and a cache hit reads each
	}
	for i < len(s) && b64char[s[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// b64char marks the characters of a b64token before its padding.
var b64char = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
	}
	return t
}()
