// Package jwt checks the shape of the JWT an introspection endpoint returns and
// reads the few claims the filter acts on. It does not verify the signature:
// the JWT comes from the identity server over the configured cluster, and the
// upstream verifies it.
package jwt

import (
	"encoding/base64"
	"errors"
	"math"
	"strings"
	"time"

	"github.com/tidwall/gjson"
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
	// Scopes are the granted scopes, from the space-separated "scope" claim.
	Scopes []string
}

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
	if header == "" || payload == "" || sig == "" || !isBase64URL(sig) {
		return c, errors.New("empty or non-base64url part")
	}
	h, err := decodeJSONObject(header)
	if err != nil {
		return c, errors.New("header: " + err.Error())
	}
	if alg := h.Get("alg"); alg.Type != gjson.String || alg.Str == "" || strings.EqualFold(alg.Str, "none") {
		return c, errors.New("header has no signing algorithm")
	}
	p, err := decodeJSONObject(payload)
	if err != nil {
		return c, errors.New("payload: " + err.Error())
	}
	if err := readExp(p.Get("exp"), &c.Exp); err != nil {
		return c, err
	}
	claims := p
	if ti := p.Get("token_introspection"); ti.Exists() {
		if !ti.IsObject() {
			return c, errors.New("token_introspection is not an object")
		}
		c.Introspection, claims = true, ti
		if err := readExp(ti.Get("exp"), &c.Exp); err != nil {
			return c, err
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
	switch sc := claims.Get("scope"); {
	case sc.Type == gjson.String:
		c.Scopes = strings.Fields(sc.Str)
	case sc.Exists():
		return c, errors.New("scope is not a string")
	}
	return c, nil
}

// readExp keeps the earliest of *exp and the NumericDate v.
func readExp(v gjson.Result, exp *time.Time) error {
	if !v.Exists() {
		return nil
	}
	if v.Type != gjson.Number || math.IsNaN(v.Num) || v.Num < 0 || v.Num > 1<<40 {
		return errors.New("exp is not a NumericDate")
	}
	t := time.Unix(0, 0).Add(time.Duration(v.Num * float64(time.Second)))
	if exp.IsZero() || t.Before(*exp) {
		*exp = t
	}
	return nil
}

func decodeJSONObject(part string) (gjson.Result, error) {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(part)
	if err != nil {
		return gjson.Result{}, errors.New("not base64url")
	}
	if !gjson.ValidBytes(raw) {
		return gjson.Result{}, errors.New("not JSON")
	}
	r := gjson.ParseBytes(raw)
	if !r.IsObject() {
		return gjson.Result{}, errors.New("not a JSON object")
	}
	return r, nil
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Verdict is the outcome of the per-request checks.
type Verdict int

const (
	Valid             Verdict = iota
	Expired                   // 401 invalid_token
	InsufficientScope         // 403 insufficient_scope
)

// Check runs the checks every request gets, whether its JWT came from the
// identity server or from the cache: the JWT has not expired and it grants
// every required scope.
func (c Claims) Check(now time.Time, required []string) Verdict {
	if !c.Exp.IsZero() && !now.Before(c.Exp) {
		return Expired
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

func (v Verdict) String() string {
	switch v {
	case Valid:
		return "Valid"
	case Expired:
		return "Expired"
	case InsufficientScope:
		return "InsufficientScope"
	}
	return "Verdict(?)"
}
