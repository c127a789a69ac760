// Package reply builds the responses the filter answers itself: the status,
// the RFC 6750 challenge and the JSON error body. Nothing from the identity
// server ever appears in them.
package reply

import (
	"strconv"
	"strings"

	"github.com/phantom-token/envoy-phantom-token/internal/bearer"
	"github.com/phantom-token/envoy-phantom-token/internal/config"
	"github.com/phantom-token/envoy-phantom-token/internal/introspection"
	"github.com/phantom-token/envoy-phantom-token/internal/jwt"
)

// Kind is why the filter answers the client itself.
type Kind int

const (
	NoToken           Kind = iota // 401, challenge without an error code
	InvalidToken                  // 401 invalid_token
	InsufficientScope             // 403 insufficient_scope
	InvalidRequest                // 400 invalid_request
	ServerError                   // 500
	BadGateway                    // 502
	Unavailable                   // 503
	Overloaded                    // 503 with Retry-After: too many introspections under way
	InvalidDPoPProof              // 401 invalid_dpop_proof (RFC 9449 §7.1)
	UseDPoPNonce                  // 401 use_dpop_nonce, with a DPoP-Nonce (RFC 9449 §8)
)

func (k Kind) String() string {
	switch k {
	case NoToken:
		return "NoToken"
	case InvalidToken:
		return "InvalidToken"
	case InsufficientScope:
		return "InsufficientScope"
	case InvalidRequest:
		return "InvalidRequest"
	case ServerError:
		return "ServerError"
	case BadGateway:
		return "BadGateway"
	case Unavailable:
		return "Unavailable"
	case Overloaded:
		return "Overloaded"
	case InvalidDPoPProof:
		return "InvalidDPoPProof"
	case UseDPoPNonce:
		return "UseDPoPNonce"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// RetryAfter is the Retry-After of an Overloaded reply, in seconds: about how
// long an introspection takes to free its place.
const RetryAfter = "1"

// ForOutcome is the reply to an introspection outcome other than Active
// (spec section 4).
func ForOutcome(o introspection.Outcome) Kind {
	switch o {
	case introspection.Inactive:
		return InvalidToken
	case introspection.BadGateway:
		return BadGateway
	case introspection.Unavailable:
		return Unavailable
	}
	return ServerError
}

// ForCheck is the reply to a JWT that failed the per-request checks; refused
// is false for a JWT that passed them. A verdict the table does not name (a
// claim the checks cannot read) is 502.
func ForCheck(v jwt.Verdict) (k Kind, refused bool) {
	switch v {
	case jwt.Valid:
		return 0, false
	case jwt.Expired:
		return InvalidToken, true
	case jwt.InsufficientScope:
		return InsufficientScope, true
	}
	return BadGateway, true
}

// Reply is a local response.
type Reply struct {
	Status  uint32
	Headers [][2]string
	Body    []byte // nil for HEAD
}

var (
	bodyUnauthorized = []byte(`{"code":"unauthorized_request","message":"Access denied due to missing, invalid or expired credentials"}`)
	bodyForbidden    = []byte(`{"code":"forbidden","message":"Access denied due to insufficient scope"}`)
	bodyBadRequest   = []byte(`{"code":"invalid_request","message":"The request is malformed"}`)
	bodyServerError  = []byte(`{"code":"server_error","message":"Problem encountered processing the request"}`)
)

// Status is the HTTP status of kind k.
func Status(k Kind) uint32 {
	switch k {
	case NoToken, InvalidToken, InvalidDPoPProof, UseDPoPNonce:
		return 401
	case InsufficientScope:
		return 403
	case InvalidRequest:
		return 400
	case BadGateway:
		return 502
	case Unavailable, Overloaded:
		return 503
	}
	return 500
}

// New builds the reply of kind k to a request whose token, if any, came with
// the Bearer scheme. A HEAD request gets the same status and headers without
// a body.
func New(k Kind, c *config.Config, head bool) Reply { return For(k, c, head, bearer.Bearer, "") }

// For builds the reply of kind k to a request whose token came with scheme.
// nonce is the DPoP-Nonce of a UseDPoPNonce reply.
//
// The challenges (WWW-Authenticate) follow the dpop key: Bearer alone when
// DPoP is off, DPoP alone when it is required, both when it is allowed. The
// error code goes on the challenge of the scheme the token came with; the
// DPoP errors on the DPoP challenge.
func For(k Kind, c *config.Config, head bool, scheme bearer.Scheme, nonce string) Reply {
	r := Reply{Status: Status(k), Body: bodyServerError}
	scopes, errCode, challenged := c.Scopes, "", r.Status < 500
	switch k {
	case NoToken:
		r.Body = bodyUnauthorized
	case InvalidToken:
		r.Body, errCode = bodyUnauthorized, "invalid_token"
	case InsufficientScope:
		r.Body, scopes, errCode = bodyForbidden, c.RequiredScopes, "insufficient_scope"
	case InvalidRequest:
		r.Body, errCode = bodyBadRequest, "invalid_request"
	case InvalidDPoPProof:
		r.Body, errCode, scheme = bodyUnauthorized, "invalid_dpop_proof", bearer.DPoP
	case UseDPoPNonce:
		r.Body, errCode, scheme = bodyUnauthorized, "use_dpop_nonce", bearer.DPoP
	case Overloaded:
		r.Headers = [][2]string{{"retry-after", RetryAfter}}
	}
	if challenged {
		if c.DPoP != config.DPoPRequired {
			r.Headers = append(r.Headers, challenge(c, "Bearer", scopes, errorFor(errCode, scheme == bearer.Bearer)))
		}
		if c.DPoP == config.DPoPAllowed || c.DPoP == config.DPoPRequired {
			r.Headers = append(r.Headers, challenge(c, "DPoP", scopes, errorFor(errCode, scheme == bearer.DPoP)))
		}
	}
	if k == UseDPoPNonce {
		r.Headers = append(r.Headers, [2]string{"dpop-nonce", nonce})
	}
	r.Headers = append(r.Headers, [2]string{"content-type", "application/json"})
	if head {
		r.Body = nil
	}
	return r
}

func errorFor(code string, ok bool) string {
	if ok {
		return code
	}
	return ""
}

// challenge is a WWW-Authenticate header (RFC 6750 §3; RFC 9449 §7.1 for
// DPoP, which adds algs). scope is left out when none is configured; the
// advertised scopes fall back to the required ones. errCode is given only
// when the client presented a token.
//
// The NGINX module never sends error=; clients such as MCP clients need
// invalid_token to know they should refresh, so we send it.
func challenge(c *config.Config, scheme string, scopes []string, errCode string) [2]string {
	if len(scopes) == 0 {
		scopes = c.RequiredScopes
	}
	var b strings.Builder
	b.WriteString(scheme)
	b.WriteString(` realm="`)
	b.WriteString(c.Realm)
	b.WriteByte('"')
	if len(scopes) > 0 {
		b.WriteString(`, scope="`)
		b.WriteString(strings.Join(scopes, " "))
		b.WriteByte('"')
	}
	if scheme == "DPoP" {
		b.WriteString(`, algs="`)
		b.WriteString(strings.Join(c.DPoPAlgs, " "))
		b.WriteByte('"')
	}
	if errCode != "" {
		b.WriteString(`, error="`)
		b.WriteString(errCode)
		b.WriteByte('"')
	}
	return [2]string{"www-authenticate", b.String()}
}
