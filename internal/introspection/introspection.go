// Package introspection builds the RFC 7662 introspection request and maps the
// identity server's answer to what the client gets.
package introspection

import (
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/phantom-token/envoy-phantom-token/internal/config"
	"github.com/phantom-token/envoy-phantom-token/internal/jwt"
)

// Request returns the callout's headers and body. Only these headers reach the
// identity server: nothing of the client's request is copied.
//
// The token is form-encoded: the NGINX module concatenates it raw, so a "+" or
// "&" in a token changes the request there.
func Request(c *config.Config, token string) (headers [][2]string, body []byte) {
	return [][2]string{
		{":method", "POST"},
		{":path", c.Path},
		{":authority", c.Authority},
		{"content-type", "application/x-www-form-urlencoded"},
		{"accept", c.ResponseType},
		{"authorization", BasicCredentials(c.ClientID, c.ClientSecret)},
	}, []byte("token=" + url.QueryEscape(token))
}

// BasicCredentials encodes client credentials as RFC 6749 §2.3.1 says: each
// part form-encoded, then HTTP Basic.
func BasicCredentials(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
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

// Answer is the classified response of the identity server.
type Answer struct {
	// Status is the identity server's status; 0 when there was no response.
	Status  int
	Outcome Outcome
	JWT     string
	Claims  jwt.Claims
	// CacheTTL is how long the answer may be cached; 0 means not at all.
	CacheTTL time.Duration
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

// Classify maps a complete introspection response: its headers as the host
// gives them (none when the call failed without a response) and its body, of
// which the caller reads at most c.MaxJWTSize+1 bytes.
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
	text := strings.TrimSpace(string(body))
	switch {
	case text == "":
		return Answer{Outcome: BadGateway, Reason: "introspection answered 200 with an empty body"}
	case len(body) > c.MaxJWTSize:
		return Answer{Outcome: BadGateway, Reason: "introspection JWT larger than max_jwt_size"}
	case text[0] == '{':
		// Some servers answer an inactive token with RFC 7662 JSON even when
		// asked for a JWT. Anything else in JSON is not what was asked for.
		if isInactiveJSON(text) {
			return Answer{Outcome: Inactive, Reason: "token is not active"}
		}
		return Answer{Outcome: BadGateway, Reason: "introspection answered JSON instead of a JWT"}
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
	return Answer{Outcome: Active, JWT: text, Claims: claims, CacheTTL: cacheTTL(c, cacheControl, claims.Exp, now)}
}

func isInactiveJSON(text string) bool {
	return gjson.Valid(text) && gjson.Get(text, "active").Type == gjson.False
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
		maxAge, cacheable := parseCacheControl(cacheControl)
		if !cacheable {
			return 0
		}
		if maxAge >= 0 && maxAge < ttl {
			ttl = maxAge
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

// parseCacheControl reads the directives that matter to a shared cache:
// no-store and no-cache forbid caching; s-maxage wins over max-age. maxAge is
// -1 when none is given.
func parseCacheControl(values []string) (maxAge time.Duration, cacheable bool) {
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
				n, err := strconv.ParseUint(arg, 10, 32)
				if err != nil {
					return 0, false // unparsable: be conservative
				}
				if name == "max-age" {
					maxAge = time.Duration(n) * time.Second
				} else {
					sMaxAge = time.Duration(n) * time.Second
				}
			}
		}
	}
	if sMaxAge >= 0 {
		maxAge = sMaxAge
	}
	return maxAge, maxAge != 0
}
