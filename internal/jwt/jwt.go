// Package jwt checks the shape of the JWT an introspection endpoint returns and
// reads the few claims the filter acts on. It does not verify the signature:
// the JWT comes from the identity server over the configured cluster, and the
// upstream verifies it.
package jwt

import (
	"encoding/base64"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/phantom-token/envoy-phantom-token/internal/jsonlimit"
)

// Claims are the parts of a JWT payload the filter acts on. For an RFC 9701
// response they come from the token_introspection claim.
type Claims struct {
	// Introspection is true when the payload holds an RFC 9701
	// token_introspection object.
	Introspection bool
	// HasActive and Active report the "active" member, when present.
	HasActive bool
	Active    bool
	// Exp is the earliest expiry found (JWT exp, token_introspection.exp);
	// zero when there is none.
	Exp time.Time
	// Scopes are the granted scopes from the "scope" claim: a string of
	// scopes separated by spaces (%x20 only, RFC 6749 §3.3), or an array of
	// strings, one scope each. JWT access tokens with a "scope" array come
	// from IdentityServer4/Duende (unless EmitScopesAsSpaceDelimitedStringInJwt),
	// Spring Authorization Server and Cloud Foundry UAA. Other names (Okta's
	// or Azure AD's "scp") are not read.
	Scopes []string
	// BadScope is true when the "scope" claim is neither a string nor an
	// array of strings. It matters only where scopes are required (Check).
	BadScope bool
	// Binding is the key or certificate the token is bound to (its "cnf"
	// claim), if any.
	Binding Binding
}

// Binding is what a sender-constrained token is bound to: the SHA-256 of a
// client certificate (cnf "x5t#S256", RFC 8705 §3), the RFC 7638 thumbprint
// of a DPoP key (cnf "jkt", RFC 9449 §6.1), or both. The zero value is an
// unbound token.
type Binding struct {
	CertBound bool
	// CertSHA256 is the certificate's SHA-256, decoded from x5t#S256.
	CertSHA256 [32]byte
	// JKT is the key's thumbprint as the token has it (base64url).
	JKT string
}

// Bound reports whether the token is bound to anything.
func (b Binding) Bound() bool { return b.CertBound || b.JKT != "" }

// ReadBinding reads a "cnf" claim (absent: unbound). A binding the filter
// cannot read is an error, never an unbound token.
func ReadBinding(v gjson.Result) (Binding, error) {
	var b Binding
	if !v.Exists() {
		return b, nil
	}
	if !v.IsObject() {
		return b, errors.New("cnf is not an object")
	}
	if name, dup := jsonlimit.Duplicate(v, "x5t#S256", "jkt"); dup {
		return b, errors.New("cnf has a duplicate member " + strconv.Quote(name))
	}
	if x := v.Get(gjson.Escape("x5t#S256")); x.Exists() {
		if !readSHA256(x, &b.CertSHA256) {
			return b, errors.New("cnf.x5t#S256 is not a base64url SHA-256")
		}
		b.CertBound = true
	}
	if j := v.Get("jkt"); j.Exists() {
		var d [32]byte
		if !readSHA256(j, &d) {
			return b, errors.New("cnf.jkt is not a base64url SHA-256 thumbprint")
		}
		b.JKT = j.Str
	}
	return b, nil
}

// readSHA256 reads a SHA-256 written in canonical base64url (43 characters)
// into d.
func readSHA256(v gjson.Result, d *[32]byte) bool {
	if v.Type != gjson.String || !IsBase64URL(v.Str) {
		return false
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(v.Str)
	if err != nil || len(raw) != len(d) {
		return false
	}
	copy(d[:], raw)
	return true
}

// Merge is the binding of a token described twice (an RFC 9701 JWT's own
// cnf and its token_introspection's, or a JSON answer's and its JWT's): what
// either says binds it, and two that say different things are an error.
func (b Binding) Merge(o Binding) (Binding, error) {
	if b.CertBound && o.CertBound && b.CertSHA256 != o.CertSHA256 || b.JKT != "" && o.JKT != "" && b.JKT != o.JKT {
		return b, errors.New("two cnf claims disagree")
	}
	if o.CertBound {
		b.CertBound, b.CertSHA256 = true, o.CertSHA256
	}
	if o.JKT != "" {
		b.JKT = o.JKT
	}
	return b, nil
}

// Claim names the filter reads. Each may appear at most once in the payload
// and in token_introspection: gjson reads the first of two, most parsers the
// last, so the filter and the upstream would disagree.
var readClaims = []string{"active", "exp", "scope", "token_introspection", "cnf"}

// Parse checks that s is a compact JWS (three non-empty base64url parts, a JSON
// header naming an algorithm other than "none", a JSON object payload) and
// returns its claims.
func Parse(s string) (Claims, error) {
	var c Claims
	header, rest, ok1 := strings.Cut(s, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.IndexByte(sig, '.') >= 0 {
		return c, errors.New("not three dot-separated parts")
	}
	// Go's base64 decoder skips CR and LF: the alphabet is checked first so
	// that no line break inside a part reaches the upstream header.
	if !IsBase64URL(header) || !IsBase64URL(payload) || !IsBase64URL(sig) || len(sig)%4 == 1 {
		return c, errors.New("empty or non-base64url part")
	}
	h, err := decodeJSONObject(header, "alg")
	if err != nil {
		return c, errors.New("header: " + err.Error())
	}
	if alg := h.Get("alg"); alg.Type != gjson.String || alg.Str == "" || strings.EqualFold(alg.Str, "none") {
		return c, errors.New("header has no signing algorithm")
	}
	p, err := decodeJSONObject(payload, readClaims...)
	if err != nil {
		return c, errors.New("payload: " + err.Error())
	}
	if err := ReadExp(p.Get("exp"), &c.Exp); err != nil {
		return c, err
	}
	if c.Binding, err = ReadBinding(p.Get("cnf")); err != nil {
		return c, err
	}
	claims := p
	if ti := p.Get("token_introspection"); ti.Exists() {
		if !ti.IsObject() {
			return c, errors.New("token_introspection is not an object")
		}
		if name, dup := jsonlimit.Duplicate(ti, readClaims...); dup {
			return c, errors.New("token_introspection has a duplicate member " + strconv.Quote(name))
		}
		c.Introspection, claims = true, ti
		if err := ReadExp(ti.Get("exp"), &c.Exp); err != nil {
			return c, err
		}
		inner, err := ReadBinding(ti.Get("cnf"))
		if err == nil {
			c.Binding, err = c.Binding.Merge(inner)
		}
		if err != nil {
			return c, errors.New("token_introspection: " + err.Error())
		}
	}
	switch a := claims.Get("active"); a.Type {
	case gjson.True, gjson.False:
		c.HasActive, c.Active = true, a.Type == gjson.True
	case gjson.Null:
		if a.Exists() {
			return c, errors.New("active is not a boolean")
		}
	default:
		return c, errors.New("active is not a boolean")
	}
	c.Scopes, c.BadScope = readScopes(claims.Get("scope"))
	return c, nil
}

// readScopes reads a scope claim: "a b c" (split on %x20 only, so
// "read\u00a0write" is one scope; empty parts between spaces are dropped) or
// ["a", "b", "c"] (each non-empty string one scope, as is). bad is true for any other
// type, null included.
func readScopes(v gjson.Result) (scopes []string, bad bool) {
	switch {
	case !v.Exists():
		return nil, false
	case v.Type == gjson.String:
		for _, s := range strings.Split(v.Str, " ") {
			if s != "" {
				scopes = append(scopes, s)
			}
		}
		return scopes, false
	case v.IsArray():
		v.ForEach(func(_, s gjson.Result) bool {
			if s.Type != gjson.String {
				bad = true
				return false
			}
			if s.Str != "" { // as the empty parts of a string: no scope
				scopes = append(scopes, s.Str)
			}
			return true
		})
		if bad {
			return nil, true
		}
		return scopes, false
	}
	return nil, true
}

// ReadExp keeps the earliest of *exp and the NumericDate v (absent: *exp
// unchanged). The introspection package reads a JSON answer's exp with it.
func ReadExp(v gjson.Result, exp *time.Time) error {
	if !v.Exists() {
		return nil
	}
	if v.Type != gjson.Number || math.IsNaN(v.Num) || v.Num < 0 || v.Num > 1<<40 {
		return errors.New("exp is not a NumericDate")
	}
	// Whole seconds and the fraction apart: as one Duration in nanoseconds,
	// an exp past 2262 would overflow (found by FuzzParse).
	sec, frac := math.Modf(v.Num)
	t := time.Unix(int64(sec), int64(frac*float64(time.Second)))
	if exp.IsZero() || t.Before(*exp) {
		*exp = t
	}
	return nil
}

// decodeJSONObject decodes a base64url part holding a JSON object in which
// none of unique repeats, checking its nesting depth before gjson sees it.
func decodeJSONObject(part string, unique ...string) (gjson.Result, error) {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(part)
	if err != nil {
		return gjson.Result{}, errors.New("not base64url")
	}
	return jsonlimit.Object(string(raw), unique...)
}

// IsBase64URL: s is non-empty and only of the base64url alphabet. (Go's
// base64 decoder skips CR and LF: check this before decoding.)
func IsBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}

// Verdict is the outcome of the per-request checks.
type Verdict int

const (
	Valid             Verdict = iota
	Expired                   // 401 invalid_token
	InsufficientScope         // 403 insufficient_scope
	// UnreadableScope: scopes are required and the scope claim is neither a
	// string nor an array of strings. 502: the identity server's answer is
	// not what RFC 6749/7662 define, not the client's fault.
	UnreadableScope
)

func (v Verdict) String() string {
	switch v {
	case Valid:
		return "Valid"
	case Expired:
		return "Expired"
	case InsufficientScope:
		return "InsufficientScope"
	case UnreadableScope:
		return "UnreadableScope"
	}
	return "Verdict(" + strconv.Itoa(int(v)) + ")"
}

// Check runs the checks every request gets, whether its JWT came from the
// identity server or from the cache: the JWT has not expired and it grants
// every required scope. A scope claim of the wrong type matters only when a
// scope is required.
func (c *Claims) Check(now time.Time, required []string) Verdict {
	if !c.Exp.IsZero() && !now.Before(c.Exp) {
		return Expired
	}
	if len(required) > 0 && c.BadScope {
		return UnreadableScope
	}
	for _, r := range required {
		found := false
		for _, s := range c.Scopes {
			if s == r {
				found = true
				break
			}
		}
		if !found {
			return InsufficientScope
		}
	}
	return Valid
}

// ClaimSet is the object a JWT's claims are read from, as Parse reads them:
// its payload, or the token_introspection object of an RFC 9701 answer. It
// is for a JWT Parse accepted.
func ClaimSet(s string) (gjson.Result, error) {
	_, rest, _ := strings.Cut(s, ".")
	payload, _, _ := strings.Cut(rest, ".")
	p, err := decodeJSONObject(payload, readClaims...)
	if err != nil {
		return gjson.Result{}, err
	}
	if ti := p.Get("token_introspection"); ti.IsObject() {
		return ti, nil
	}
	return p, nil
}
