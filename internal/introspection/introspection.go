// Package introspection builds the RFC 7662 introspection request and maps the
// identity server's answer to what the client gets.
package introspection

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/phantom-token/envoy-phantom-token/internal/config"
	"github.com/phantom-token/envoy-phantom-token/internal/jsonlimit"
	"github.com/phantom-token/envoy-phantom-token/internal/jwt"
)

// Request returns the callout's headers and body. Only these headers reach the
// identity server: of the client's request, only the trace headers given
// (see TraceContext) are copied, after the call's own.
//
// The token is form-encoded: the NGINX module concatenates it raw, so a "+" or
// "&" in a token changes the request there.
//
// With client_auth tls_client_auth the cluster's client certificate
// authenticates the filter: no Authorization header, and client_id in the
// body (RFC 8705 §2).
func Request(c *config.Config, token string, trace [][2]string) (headers [][2]string, body []byte) {
	headers = append(make([][2]string, 0, 6+len(trace)),
		[2]string{":method", "POST"},
		[2]string{":path", c.Path},
		[2]string{":authority", c.Authority},
		[2]string{"content-type", "application/x-www-form-urlencoded"},
		[2]string{"accept", c.ResponseType},
	)
	body = []byte("token=" + FormEncode(token))
	if c.ClientAuth == config.ClientTLS {
		body = append(append(body, "&client_id="...), FormEncode(c.ClientID)...)
	} else {
		headers = append(headers, [2]string{"authorization", BasicCredentials(c.ClientID, c.ClientSecret)})
	}
	return append(headers, trace...), body
}

// MaxTraceValue bounds the value of a trace header copied to the call.
const MaxTraceValue = 512

// TraceContext picks the trace headers of the request that starts a call
// from its headers as the host gives them (lower-case names, a repeated
// header as several pairs): the first value of each of c.TraceHeaders, in
// that order, when it is 1 to MaxTraceValue bytes of printable ASCII. A
// value that is not is left out, and never replaced by a later one: the
// client's headers are not a channel to the identity server.
func TraceContext(c *config.Config, headers [][2]string) [][2]string {
	var trace [][2]string
	for _, name := range c.TraceHeaders {
		for _, kv := range headers {
			if kv[0] == name {
				if traceValue(kv[1]) {
					trace = append(trace, kv)
				}
				break
			}
		}
	}
	return trace
}

// traceValue reports whether v may be copied: short, printable ASCII
// (spaces included, no control character).
func traceValue(v string) bool {
	if v == "" || len(v) > MaxTraceValue {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// BasicCredentials encodes client credentials as RFC 6749 §2.3.1 says: each
// part form-encoded, then HTTP Basic.
func BasicCredentials(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(FormEncode(id)+":"+FormEncode(secret)))
}

// FormEncode encodes s as application/x-www-form-urlencoded does (HTML's
// URL-encoded serializer, as net/url.QueryEscape): ASCII letters, digits and
// "-", ".", "_", "~" stay, a space becomes "+", and every other byte becomes
// %XX. Written here so that the module does not link net/url.
func FormEncode(s string) string {
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)*3)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~':
			b = append(b, c)
		case c == ' ':
			b = append(b, '+')
		default:
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(b)
}

// Outcome is what the client gets for an introspection answer.
type Outcome int

const (
	Active      Outcome = iota // forward with the JWT
	Inactive                   // 401 invalid_token
	BadGateway                 // 502
	Unavailable                // 503
	ServerError                // 500
)

func (o Outcome) String() string {
	switch o {
	case Active:
		return "Active"
	case Inactive:
		return "Inactive"
	case BadGateway:
		return "BadGateway"
	case Unavailable:
		return "Unavailable"
	case ServerError:
		return "ServerError"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Answer is the classified response of the identity server.
type Answer struct {
	// Status is the identity server's status; 0 when there was no response.
	Status  int
	Outcome Outcome
	JWT     string
	Claims  jwt.Claims
	// CacheTTL is how long the answer may be cached; 0 means not at all.
	CacheTTL time.Duration
	// StaleFor is how long past CacheTTL the answer may still be served
	// when a later call for the token fails (stale_if_error, narrowed by
	// the identity server's stale-if-error and the JWT's exp); 0: never.
	StaleFor time.Duration
	// Transient is true for a failure that is not the identity server's
	// verdict: no answer, a 5xx, a 429, or a call that could not be made.
	// A stale answer may stand in for it.
	Transient bool
	// BindingBeside is true when part of the token's binding came from
	// beside its JWT (a JSON answer's cnf): the JWT alone must never be
	// handed to another worker, in the cache or to its waiters.
	BindingBeside bool
	// Reason explains a non-Active outcome for the log. It never contains the
	// body, a token or a JWT.
	Reason string
}

// statusOutcome maps the status of the introspection response, as the NGINX
// module does (its issue #14). ok is true for 200, whose body decides.
func statusOutcome(status int) (o Outcome, ok bool) {
	switch {
	case status == 200:
		return Active, true
	case status == 204:
		return Inactive, false
	case status == 503:
		return Unavailable, false
	case status == 401, status == 403, status == 404, status == 500, status == 502, status >= 504 && status <= 599:
		return BadGateway, false
	}
	return ServerError, false
}

// BodyLimit is how many bytes of an introspection answer's body the filter
// reads: one more than the largest body it accepts, so that a larger body is
// seen, and refused with 502, never truncated and used.
func BodyLimit(c *config.Config) int { return maxBody(c) + 1 }

// maxBody is the largest answer accepted: max_jwt_size for a bare JWT. A JSON
// answer with jwt_member holds the JWT and other members, which may repeat
// every claim of the JWT (Keycloak's do), escaped: 4 × max_jwt_size + 4 KiB
// leaves room for that, while the JWT itself is still held to max_jwt_size.
func maxBody(c *config.Config) int {
	if c.JWTMember == "" {
		return c.MaxJWTSize
	}
	return 4*c.MaxJWTSize + 4096
}

// Classify maps a complete introspection response: its headers as the host
// gives them (none when the call failed without a response) and its body, of
// which the caller reads at most BodyLimit(c) bytes.
func Classify(c *config.Config, headers [][2]string, body []byte, now time.Time) Answer {
	status, fromUpstream := 0, false
	var cacheControl []string
	for _, kv := range headers {
		switch strings.ToLower(kv[0]) {
		case ":status":
			status, _ = strconv.Atoi(kv[1])
		case "cache-control":
			cacheControl = append(cacheControl, kv[1])
		case "x-envoy-upstream-service-time":
			fromUpstream = true
		}
	}
	a := classify(c, status, fromUpstream, cacheControl, body, now)
	a.Status = status
	a.Transient = a.Outcome != Active && a.Outcome != Inactive && (status == 0 || status == 429 || status >= 500 && status <= 599)
	return a
}

func classify(c *config.Config, status int, fromUpstream bool, cacheControl []string, body []byte, now time.Time) Answer {
	switch {
	case status == 0:
		return Answer{Outcome: BadGateway, Reason: "introspection call failed without a response"}
	case status == 503 && !fromUpstream:
		// Envoy answers a connect failure, a reset or a cluster without a
		// healthy host with a 503 of its own. Its router marks every answer
		// that did come from the upstream with x-envoy-upstream-service-time.
		return Answer{Outcome: BadGateway, Reason: "no answer from the identity server (Envoy's 503: connection failure, reset or no healthy host)"}
	}
	if o, ok := statusOutcome(status); !ok {
		return Answer{Outcome: o, Reason: "introspection status " + strconv.Itoa(status)}
	}
	if len(body) > maxBody(c) {
		if c.JWTMember == "" {
			return Answer{Outcome: BadGateway, Reason: "introspection JWT larger than max_jwt_size"}
		}
		return Answer{Outcome: BadGateway, Reason: "introspection answer larger than 4 × max_jwt_size + 4096 bytes"}
	}
	text := strings.TrimSpace(string(body))
	switch {
	case text == "":
		return Answer{Outcome: BadGateway, Reason: "introspection answered 200 with an empty body"}
	case text[0] == '{':
		return jsonAnswer(c, text, cacheControl, now)
	}
	return jwtAnswer(c, text, cacheControl, now)
}

// jsonAnswer maps a JSON answer. With jwt_member it carries the JWT in that
// member, used only when "active" is the JSON true: Keycloak 26.7.3 can send
// {"active":false,"jwt":…} with every claim inside (CVE-2026-18208). Without
// jwt_member, JSON is only understood as RFC 7662's inactive answer, which
// some servers send even when asked for a JWT; any other JSON is not what
// was asked for.
func jsonAnswer(c *config.Config, text string, cacheControl []string, now time.Time) Answer {
	unique := []string{"active", "exp", "scope", "token_introspection", "cnf", c.JWTMember}
	if c.JWTMember == "" {
		unique = unique[:5]
	}
	obj, err := jsonlimit.Object(text, unique...)
	if err != nil {
		return Answer{Outcome: BadGateway, Reason: "introspection JSON answer: " + err.Error()}
	}
	active := obj.Get("active").Type
	switch {
	case c.JWTMember == "" && active == gjson.False:
		return Answer{Outcome: Inactive, Reason: "token is not active"}
	case c.JWTMember == "":
		return Answer{Outcome: BadGateway, Reason: "introspection answered JSON instead of a JWT"}
	}
	// RFC 7662's exp of the answer: once it has passed the token is
	// inactive, whatever "active" says; before, it bounds the JWT's life
	// (the per-request check and the cache's TTL) as the JWT's own exp does.
	var exp time.Time
	if err := jwt.ReadExp(obj.Get("exp"), &exp); err != nil {
		return Answer{Outcome: BadGateway, Reason: "introspection JSON answer: " + err.Error()}
	}
	switch {
	case !exp.IsZero() && !now.Before(exp):
		return Answer{Outcome: Inactive, Reason: "token has expired (exp of the JSON answer)"}
	case active != gjson.True:
		return Answer{Outcome: Inactive, Reason: "token is not active (JSON answer whose active is not true)"}
	}
	member := obj.Get(gjson.Escape(c.JWTMember))
	if member.Type != gjson.String {
		return Answer{Outcome: BadGateway, Reason: "active JSON answer without a string " + strconv.Quote(c.JWTMember) + " member"}
	}
	a := jwtAnswer(c, member.Str, cacheControl, now)
	if a.Outcome != Active {
		a.Reason = "member " + strconv.Quote(c.JWTMember) + ": " + a.Reason
		return a
	}
	if !exp.IsZero() && (a.Claims.Exp.IsZero() || exp.Before(a.Claims.Exp)) {
		a.Claims.Exp = exp
		a.CacheTTL = cacheTTL(c, cacheControl, exp, now)
		a.StaleFor = staleFor(c, cacheControl, a.CacheTTL, exp, now)
	}
	// A binding beside the JWT (RFC 7662 §2.2 answers carry cnf) binds the
	// token as one in it does. The cache keeps only the JWT: an answer whose
	// binding is not all in its JWT is not cached, so that no worker serves
	// the JWT without it.
	beside, err := jwt.ReadBinding(obj.Get("cnf"))
	if err != nil {
		return Answer{Outcome: BadGateway, Reason: "introspection JSON answer: " + err.Error()}
	}
	merged, err := a.Claims.Binding.Merge(beside)
	if err != nil {
		return Answer{Outcome: BadGateway, Reason: "introspection JSON answer and its JWT: " + err.Error()}
	}
	if merged != a.Claims.Binding {
		a.Claims.Binding, a.CacheTTL, a.StaleFor, a.BindingBeside = merged, 0, 0, true
	}
	return a
}

// jwtAnswer maps the JWT of an answer: the body, or the jwt_member.
func jwtAnswer(c *config.Config, text string, cacheControl []string, now time.Time) Answer {
	if len(text) > c.MaxJWTSize {
		return Answer{Outcome: BadGateway, Reason: "introspection JWT larger than max_jwt_size"}
	}
	claims, err := jwt.Parse(text)
	if err != nil {
		return Answer{Outcome: BadGateway, Reason: "introspection answer is not a JWT: " + err.Error()}
	}
	if c.ResponseType == config.ResponseTypeIntrospectionJWT && (!claims.Introspection || !claims.HasActive) {
		return Answer{Outcome: BadGateway, Reason: "RFC 9701 answer has no token_introspection.active"}
	}
	if claims.HasActive && !claims.Active {
		return Answer{Outcome: Inactive, Reason: "token is not active"}
	}
	if !claims.Exp.IsZero() && !now.Before(claims.Exp) {
		return Answer{Outcome: Inactive, Reason: "JWT has expired"}
	}
	a := Answer{Outcome: Active, JWT: text, Claims: claims, CacheTTL: cacheTTL(c, cacheControl, claims.Exp, now)}
	a.StaleFor = staleFor(c, cacheControl, a.CacheTTL, claims.Exp, now)
	return a
}

// ExpirySkew is taken off the JWT's exp so that a cached JWT is never handed
// to the upstream in its last moments.
const ExpirySkew = 5 * time.Second

// cacheTTL is the smallest of the configured maximum, the identity server's
// max-age and the JWT's remaining lifetime less ExpirySkew.
func cacheTTL(c *config.Config, cacheControl []string, exp, now time.Time) time.Duration {
	if !c.CacheEnabled {
		return 0
	}
	ttl := c.CacheMaxTTL
	if !c.CacheIgnoreCacheControl {
		var cacheable bool
		if ttl, cacheable = parseCacheControl(cacheControl, ttl); !cacheable {
			return 0
		}
	}
	if !exp.IsZero() {
		if left := exp.Sub(now) - ExpirySkew; left < ttl {
			ttl = left
		}
	}
	if ttl < time.Second {
		return 0
	}
	return ttl
}

// staleFor is how long past its cache lifetime (ttl) a cached answer may be
// served when a call fails: stale_if_error, narrowed by the identity server's
// own stale-if-error directive (RFC 5861 §4) unless its cache directives are
// ignored, and ending ExpirySkew before the JWT's exp as the lifetime does.
// Under a second is none.
func staleFor(c *config.Config, cacheControl []string, ttl time.Duration, exp, now time.Time) time.Duration {
	if c.StaleIfError == 0 || ttl == 0 {
		return 0
	}
	stale := c.StaleIfError
	if !c.CacheIgnoreCacheControl {
		if d, ok := directive(cacheControl, "stale-if-error"); ok && d < stale {
			stale = d
		}
	}
	if !exp.IsZero() {
		if left := exp.Sub(now) - ExpirySkew - ttl; left < stale {
			stale = left
		}
	}
	if stale < time.Second {
		return 0
	}
	return stale
}

// directive returns the delta-seconds argument of the named Cache-Control
// directive; an unparsable one counts as 0 (be conservative), and the
// smallest wins when it repeats.
func directive(values []string, name string) (d time.Duration, ok bool) {
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			n, arg, _ := strings.Cut(strings.TrimSpace(part), "=")
			if !strings.EqualFold(strings.TrimSpace(n), name) {
				continue
			}
			x, valid := deltaSeconds(strings.Trim(strings.TrimSpace(arg), `"`))
			if !valid {
				x = 0
			}
			if !ok || x < d {
				d = x
			}
			ok = true
		}
	}
	return d, ok
}

// parseCacheControl reads the directives that matter to a shared cache and
// returns how long, at most limit (> 0), an answer may be cached: no-store
// and no-cache forbid caching; s-maxage wins over max-age; 0 forbids it too.
func parseCacheControl(values []string, limit time.Duration) (ttl time.Duration, cacheable bool) {
	maxAge, sMaxAge := time.Duration(-1), time.Duration(-1)
	for _, v := range values {
		for _, d := range strings.Split(v, ",") {
			name, arg, _ := strings.Cut(strings.TrimSpace(d), "=")
			name = strings.ToLower(strings.TrimSpace(name))
			arg = strings.Trim(strings.TrimSpace(arg), `"`)
			switch name {
			case "no-store", "no-cache":
				return 0, false
			case "max-age", "s-maxage":
				n, ok := deltaSeconds(arg)
				if !ok {
					return 0, false // unparsable: be conservative
				}
				if name == "max-age" {
					maxAge = n
				} else {
					sMaxAge = n
				}
			}
		}
	}
	if sMaxAge >= 0 {
		maxAge = sMaxAge
	}
	switch {
	case maxAge == 0:
		return 0, false
	case maxAge > 0 && maxAge < limit:
		return maxAge, true
	}
	return limit, true
}

// deltaSeconds parses RFC 9111 delta-seconds (digits only); a value too large
// to represent counts as 2^31 seconds (RFC 9111 §1.2.2).
func deltaSeconds(s string) (time.Duration, bool) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > 1<<31 {
		n = 1 << 31
	}
	return time.Duration(n) * time.Second, true
}
