package main

import (
	"crypto/subtle"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/phantom-token/envoy-phantom-token/filter/abi"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/phantom-token/envoy-phantom-token/internal/bearer"
	"github.com/phantom-token/envoy-phantom-token/internal/cache"
	"github.com/phantom-token/envoy-phantom-token/internal/certbound"
	"github.com/phantom-token/envoy-phantom-token/internal/claims"
	"github.com/phantom-token/envoy-phantom-token/internal/config"
	"github.com/phantom-token/envoy-phantom-token/internal/cors"
	"github.com/phantom-token/envoy-phantom-token/internal/introspection"
	"github.com/phantom-token/envoy-phantom-token/internal/jwt"
	"github.com/phantom-token/envoy-phantom-token/internal/reply"
)

// httpContext handles one request. The fields a cache hit touches come
// first, so that a hit reads and writes one cache line of it: a hit's cost in
// Envoy follows the memory it touches more than the instructions it runs
// (docs/performance.md).
type httpContext struct {
	types.DefaultHttpContext
	plugin *pluginContext
	cfg    *config.Config
	// flight is the introspection the request waits for; refresh the one
	// it took the lease of, until it is started (see admitThenRefresh).
	flight *flight
	id     uint32
	// done is set once the request was let through or answered, so that a
	// panic or a late answer never acts on it twice; resumed once it was let
	// through after a pause.
	done, resumed bool
	// plain is set by a plain hit (plainHit), which writes nothing else:
	// the context is reused without clearing the rest.
	plain bool
	// authorization is the request's Authorization value while its header
	// callback runs (it shares memory with other values: see keepToken):
	// the key of the token in the worker's copy of the cache.
	authorization string
	token         string
	refresh       *flight
	// method is the request's :method once read ("" until then): the filter
	// reads it only for a request without Authorization, or to answer HEAD
	// without a body.
	method string
	// hash is the token's SHA-256, computed when first needed.
	hash cache.TokenHash
	// scheme is the token's scheme; with DPoP, jkt is the thumbprint of
	// the key its proof was signed with, and nonce the DPoP-Nonce of a
	// use_dpop_nonce answer.
	scheme bearer.Scheme
	jkt    string
	nonce  string
	// headers are the request's headers when a check read them all (a
	// DPoP proof's), kept for the trace context of a call it starts.
	headers [][2]string
}

// OnHttpRequestHeaders implements types.HttpContext: it lets the request
// through with a JWT, answers it, or pauses it until an introspection answers.
func (h *httpContext) OnHttpRequestHeaders(_ int, endOfStream bool) (action types.Action) {
	defer func() {
		if r := recover(); r != nil {
			action = h.recoverPanic(r)
		}
	}()
	cfg := h.cfg
	if cfg == nil { // the plugin did not start: never let a request through
		return h.respond(reply.ServerError, "plugin has no valid configuration")
	}
	if cfg.PlainHits { // nothing to do before the Authorization value is read
		authorization, err := getHeader("authorization")
		if err == nil {
			if action, served := h.plugin.plainHit(h, authorization); served {
				return action
			}
		}
		return h.authorize(authorization, err, endOfStream)
	}
	// Claim headers go first, whatever happens next: a header the upstream
	// trusts comes only from the JWT the filter forwards.
	if len(cfg.StripHeaders) > 0 {
		if action, answered := h.stripClaimHeaders(); answered {
			return action
		}
	}
	if h.plugin.resolver != nil {
		if action, answered := h.resolveRoute(); answered {
			return action
		}
		cfg = h.cfg
	}
	if !cfg.Enabled {
		h.done = true
		return types.ActionContinue
	}
	// Only the headers the filter needs are read: fetching the whole map
	// costs more than the rest of a cache hit.
	authorization, err := getHeader("authorization")
	return h.authorize(authorization, err, endOfStream)
}

// authorize decides on a request by its Authorization value, as read (err:
// how the read failed). Envoy folds repeated Authorization headers into one
// value joined by commas; bearer.FromHeader reads that as a duplicate. Only
// "not found" means absent: any other failed read answers 500, never "no
// Authorization" (a request shaped like a preflight would go upstream with
// the Authorization it carries).
func (h *httpContext) authorize(authorization string, err error, endOfStream bool) types.Action {
	cfg := h.cfg
	present := err == nil
	if !present {
		if err = notFoundIsAbsent(err); err != nil {
			return h.respond(reply.ServerError, "cannot read the Authorization header: "+err.Error())
		}
	}
	if !present && cfg.ForwardCORSPreflight {
		switch preflight, err := h.preflight(endOfStream); {
		case err != nil:
			return h.respond(reply.ServerError, "cannot read the headers of a possible CORS preflight: "+err.Error())
		case preflight:
			return h.forwardPreflight()
		}
	}
	// A Bearer value the worker's copy of the cache holds is served before
	// it is parsed: the copy is keyed by the value, and holds only values
	// that parsed as one Bearer token (see serveHit). Under plain hits,
	// plainHit has looked already.
	h.authorization = authorization
	if present && !cfg.PlainHits && cfg.CacheEnabled && cfg.DPoP == config.DPoPOff && bearer.HasBearerScheme(authorization) {
		if action, served := h.plugin.serveHit(h); served {
			return action
		}
	}
	var token string
	var found bearer.Result
	if cfg.DPoP == config.DPoPOff {
		token, found = bearer.FromHeader(authorization, present, cfg.MaxTokenLength)
	} else {
		token, h.scheme, found = bearer.WithScheme(authorization, present, cfg.MaxTokenLength, true)
	}
	switch found {
	case bearer.Missing:
		return h.respond(reply.NoToken, "no bearer token")
	case bearer.Malformed:
		return h.respond(reply.InvalidToken, "malformed bearer token")
	case bearer.Duplicate:
		return h.respond(reply.InvalidRequest, "more than one Authorization header")
	}
	h.token = token
	switch {
	case h.scheme == bearer.DPoP:
		// The proof first: a request that cannot prove its key costs no
		// introspection.
		if action, answered := h.checkProof(); answered {
			return action
		}
	case cfg.DPoP == config.DPoPRequired:
		return h.respond(reply.NoToken, "a Bearer token where DPoP is required")
	}
	return h.plugin.authenticate(h)
}

// OnHttpStreamDone implements types.HttpContext: it lets go of a request that
// ended while it waited. It is the last callback of a request's context (the
// host only deletes the context after it), so the context of a request that
// was done without a flight (a cache hit, a local reply) is kept for reuse.
// One that was in a flight is not: the host may end a stream while the
// filter answers it, inside the loop that serves the flight's requests.
func (h *httpContext) OnHttpStreamDone() {
	p := h.plugin
	if p == nil || h.cfg == nil {
		return
	}
	if h.flight != nil {
		p.leaveRecovering(h)
	}
	// Nothing below can panic.
	if h.done && h.flight == nil && len(p.spare) < maxSpare {
		if h.plain { // nothing else was written (plainHit)
			h.done, h.plain = false, false
		} else {
			*h = httpContext{}
		}
		p.spare = append(p.spare, h)
	}
}

// stripClaimHeaders removes every client copy of every header the filter
// sets besides the JWT's (the claim headers and stale_header), or, with
// reject_claim_headers, answers 400 to a request that carries one. answered is true when the request was answered.
func (h *httpContext) stripClaimHeaders() (action types.Action, answered bool) {
	for _, name := range h.cfg.StripHeaders {
		if h.cfg.RejectClaimHeaders {
			switch _, present, err := readHeader(name); {
			case err != nil:
				return h.respond(reply.ServerError, "cannot read the "+name+" header: "+err.Error()), true
			case present:
				return h.respond(reply.InvalidRequest, "the request carries "+name+", a header only the filter sets"), true
			}
			continue
		}
		if err := removeAll(name); err != nil {
			return h.respond(reply.ServerError, "cannot remove the "+name+" header: "+err.Error()), true
		}
	}
	return types.ActionContinue, false
}

// resolveRoute sets h.cfg to the configuration of the request's route.
// answered is true when the request was answered: the route's metadata does
// not parse (logged once per route and worker), or a read failed.
func (h *httpContext) resolveRoute() (action types.Action, answered bool) {
	r := h.plugin.resolver
	name, err := getProperty(propRouteName)
	if err != nil {
		return h.respond(reply.ServerError, "cannot read the route name: "+err.Error()), true
	}
	var vhost, route []byte
	if r.Metadata() {
		if vhost, err = getProperty(propVHostMetadata); err == nil {
			route, err = getProperty(propRouteMetadata)
		}
		if err != nil {
			return h.respond(reply.ServerError, "cannot read the route metadata: "+err.Error()), true
		}
	}
	res, fresh := r.Resolve(name, vhost, route)
	if res.Err != nil {
		if fresh {
			abi.LogError("phantom-token: route " + routeName(name) + ": " + res.Err.Error() + ": answering 500 on this route")
		}
		return h.answer(reply.ServerError), true
	}
	h.cfg = res.Config
	return types.ActionContinue, false
}

// routeName is a route's name for a log line: quoted, and cut short.
func routeName(name []byte) string {
	const max = 128
	if len(name) > max {
		return strconv.Quote(string(name[:max])) + "..."
	}
	return strconv.Quote(string(name))
}

// preflight reads what cors.Preflight judges (only asked of a request
// without Authorization). A read that fails for a reason other than "not
// found" is an error, never an absent header.
func (h *httpContext) preflight(endOfStream bool) (bool, error) {
	method, _, err := readHeader(":method")
	if err != nil {
		return false, err
	}
	h.method = method
	if method != "OPTIONS" {
		return false, nil
	}
	r := cors.Request{Method: method, EndOfStream: endOfStream}
	if r.Origin, _, err = readHeader("origin"); err != nil {
		return false, err
	}
	if r.RequestMethod, _, err = readHeader("access-control-request-method"); err != nil {
		return false, err
	}
	if r.ContentLength, _, err = readHeader("content-length"); err != nil {
		return false, err
	}
	if _, r.TransferEncoding, err = readHeader("transfer-encoding"); err != nil {
		return false, err
	}
	return cors.Preflight(r), nil
}

// readHeader reads one request header: present is false when the host has
// none ("not found"); any other failure is an error.
func readHeader(name string) (value string, present bool, err error) {
	if value, err = getHeader(name); err == nil {
		return value, true, nil
	}
	return "", false, notFoundIsAbsent(err)
}

// notFoundIsAbsent is nil for a "not found" status, err for any other.
func notFoundIsAbsent(err error) error {
	if errors.Is(err, types.ErrorStatusNotFound) {
		return nil
	}
	return err
}

// forwardPreflight lets a preflight through unauthenticated, carrying no copy
// of the upstream header that a client could have put there.
func (h *httpContext) forwardPreflight() types.Action {
	if h.cfg.UpstreamHeader != "authorization" { // Authorization is absent
		if err := removeAll(h.cfg.UpstreamHeader); err != nil {
			return h.respond(reply.ServerError, "cannot remove the "+h.cfg.UpstreamHeader+" header: "+err.Error())
		}
	}
	h.plugin.metrics.preflight.inc()
	h.done = true
	return types.ActionContinue
}

// finish acts on the answer for this request, which must be the effective
// context. e is what an active answer gives it (see entry). It returns
// ActionContinue when the request may go on upstream.
func (h *httpContext) finish(a introspection.Answer, e *cache.LocalEntry, t time.Time) types.Action {
	if a.Outcome != introspection.Active {
		return h.respond(reply.ForOutcome(a.Outcome), a.Reason)
	}
	return h.admit(e, t)
}

// admit runs the per-request checks on a JWT, fresh or cached, puts it in the
// upstream header and adds the claim headers of the request's policy. The
// caller lets the request go on when it returns ActionContinue, and then
// marks it done.
func (h *httpContext) admit(e *cache.LocalEntry, t time.Time) types.Action {
	if e.Claims.Binding.Bound() || h.cfg.RequireCertificateBound || h.scheme == bearer.DPoP {
		if k, why := h.checkBinding(e.Claims.Binding); why != "" {
			return h.respond(k, why)
		}
	}
	verdict := e.Claims.Check(t, h.cfg.RequiredScopes)
	if k, refused := reply.ForCheck(verdict); refused {
		return h.respond(k, "JWT fails the per-request checks: "+verdict.String())
	}
	var err error
	if h.cfg.ToAuthorization { // one value by now: Envoy folds repeated ones, and a folded pair was refused
		err = replaceHeader("authorization", e.Upstream)
	} else {
		err = h.setUpstreamHeader(e.Upstream[len(bearerPrefix):])
	}
	if err != nil {
		return h.respond(reply.ServerError, "cannot set the "+h.cfg.UpstreamHeader+" header: "+err.Error())
	}
	if h.cfg.DPoP != config.DPoPOff && !h.cfg.DPoPKeepHeader {
		if err := removeHeader("dpop"); err != nil {
			return h.respond(reply.ServerError, "cannot remove the DPoP header: "+err.Error())
		}
	}
	for _, ch := range h.cfg.ClaimHeaders {
		// Every copy the client sent was removed first (stripClaimHeaders).
		switch v := e.Headers[ch.Claim]; v.State {
		case claims.Present:
			if err := addHeader(ch.Header, v.Text); err != nil {
				return h.respond(reply.ServerError, "cannot add the "+ch.Header+" header: "+err.Error())
			}
		case claims.Unusable:
			h.plugin.metrics.claimOmitted.inc()
		}
	}
	if e.Stale {
		h.plugin.metrics.staleServed.inc()
		if h.cfg.StaleHeader != "" {
			if err := addHeader(h.cfg.StaleHeader, "1"); err != nil {
				return h.respond(reply.ServerError, "cannot add the "+h.cfg.StaleHeader+" header: "+err.Error())
			}
		}
	}
	h.plugin.metrics.allowed.inc()
	return types.ActionContinue
}

// checkBinding checks a sender-constrained token against the request: a
// DPoP-bound one against the key of the request's proof, and never as a
// Bearer token; a token that came with the DPoP scheme must be DPoP-bound; a
// certificate-bound one (or any, with require_certificate_bound) against the
// client certificate. It returns why the request is refused, "" when it is
// not.
func (h *httpContext) checkBinding(b jwt.Binding) (reply.Kind, string) {
	switch {
	case h.scheme == bearer.DPoP && b.JKT == "":
		return reply.InvalidToken, "token is not DPoP-bound, and came with the DPoP scheme"
	case h.scheme == bearer.DPoP && subtle.ConstantTimeCompare([]byte(b.JKT), []byte(h.jkt)) != 1:
		return reply.InvalidToken, "token is bound to another DPoP key than its proof's"
	case h.scheme == bearer.Bearer && b.JKT != "":
		return reply.InvalidToken, "token is bound to a DPoP key, and came as a Bearer token"
	case !b.CertBound && !h.cfg.RequireCertificateBound:
		return reply.InvalidToken, ""
	}
	cert, present, err := h.clientCertificate()
	if err != nil {
		return reply.ServerError, "cannot read the client certificate: " + err.Error()
	}
	return reply.InvalidToken, certbound.Problem(b, h.cfg.RequireCertificateBound, cert, present)
}

// clientCertificate is the SHA-256 of the request's client certificate, from
// client_certificate_source; present is false when it has none (or, from
// x-forwarded-client-cert, none that can be read).
func (h *httpContext) clientCertificate() (digest [32]byte, present bool, err error) {
	if h.cfg.ClientCertificateSource == config.CertificateFromXFCC {
		v, found, err := readHeader("x-forwarded-client-cert")
		if err != nil || !found {
			return digest, false, err
		}
		digest, present = certbound.FromXFCC(v)
		return digest, present, nil
	}
	raw, err := getProperty(propCertDigest)
	if err != nil || raw == nil {
		return digest, false, err
	}
	if digest, present = certbound.ParseDigest(string(raw)); !present {
		return digest, false, errors.New("the connection's certificate digest is not 64 hex digits")
	}
	return digest, true, nil
}

// setUpstreamHeader sets an upstream header other than Authorization to the
// bare JWT, leaving no value the client sent in it: such a header may come
// many times, so every value is removed first, and no JWT of the client's own
// travels with ours.
func (h *httpContext) setUpstreamHeader(jwt string) error {
	name := h.cfg.UpstreamHeader
	if err := removeAll(name); err != nil {
		return err
	}
	return addHeader(name, jwt)
}

// removeAll removes every value of a request header. It removes before it
// reads: a read that failed must never leave the client's copies in place.
// Envoy removes every value in one call (and answers OK when there is none),
// so the read after it finds none; a host that removes one value a call
// (proxytest) gets a call for each, up to maxRemovals. A read that fails
// after a removal, or values left after maxRemovals, is an error.
func removeAll(name string) error {
	for range maxRemovals {
		if err := removeHeader(name); err != nil {
			return err
		}
		if _, present, err := readHeader(name); err != nil || !present {
			return err
		}
	}
	return errors.New("values left after " + strconv.Itoa(maxRemovals) + " removals")
}

const maxRemovals = 64

// keepToken makes the request's token its own copy, for a request that may
// wait past its header callback: the header's value it was read from shares
// memory with other values (abi.GetHttpRequestHeader), which it would keep.
func (h *httpContext) keepToken() { h.token, h.authorization = strings.Clone(h.token), "" }

// tokenHash is the token's SHA-256 in the configuration's namespace.
func (h *httpContext) tokenHash() cache.TokenHash {
	if h.hash == (cache.TokenHash{}) && h.token != "" {
		h.hash = cache.Hash(h.cfg.CacheNamespace, h.token)
	}
	return h.hash
}

// respond answers the client locally, logs why, and marks the request done.
// It returns ActionPause, which the header callback must return after a
// local reply.
func (h *httpContext) respond(k reply.Kind, why string) types.Action {
	status := h.send(k)
	if status >= 500 {
		abi.LogWarn("phantom-token: " + h.fingerprint() + why + ": answering " + strconv.Itoa(int(status)))
	} else {
		abi.LogDebug("phantom-token: " + h.fingerprint() + why + ": answering " + strconv.Itoa(int(status)))
	}
	return types.ActionPause
}

// answer is respond for a reason logged elsewhere.
func (h *httpContext) answer(k reply.Kind) types.Action {
	h.send(k)
	return types.ActionPause
}

// send sends the local reply of kind k, counts it, marks the request done,
// and returns its status.
func (h *httpContext) send(k reply.Kind) uint32 {
	cfg := h.cfg
	if cfg == nil {
		cfg, k = &config.Config{}, reply.ServerError
	}
	if h.method == "" {
		h.method, _ = getHeader(":method")
	}
	r := reply.For(k, cfg, h.method == "HEAD", h.scheme, h.nonce)
	err := sendReply(r.Status, r.Headers, r.Body, -1)
	h.done = true // answered, or nothing more can be done for it
	if err != nil {
		abi.LogError("phantom-token: cannot send the local response: " + err.Error())
	}
	if h.plugin != nil && h.plugin.metrics != nil {
		h.plugin.metrics.denied[r.Status].inc()
	}
	return r.Status
}

// fingerprint names the token in logs without revealing it.
func (h *httpContext) fingerprint() string {
	if h.token == "" && h.authorization != "" && h.cfg != nil { // served by serveHit, unparsed
		h.token, _ = bearer.FromHeader(h.authorization, true, h.cfg.MaxTokenLength)
	}
	if h.token == "" || h.cfg == nil {
		return ""
	}
	return "token " + h.tokenHash().Fingerprint() + ": "
}

// recoverPanic turns a panic into a 500: the request is never let through and
// the VM survives. The flight the request belongs to, if any, is abandoned
// with it: its other requests get a 500 too, rather than a wait nobody ends.
// It returns the action the header callback returns: ActionPause (a request
// let through returned before anything could panic).
func (h *httpContext) recoverPanic(r any) types.Action {
	abi.LogCritical("phantom-token: panic: " + panicText(r))
	defer func() {
		if r := recover(); r != nil {
			abi.LogCritical("phantom-token: panic while answering after a panic: " + panicText(r))
		}
		if h.plugin != nil {
			h.plugin.abandon(h.flight)
			h.plugin.abandon(h.refresh)
		}
	}()
	if !h.done {
		h.respond(reply.ServerError, "internal error")
	}
	return types.ActionPause
}

// panicText is what a log line says of a recovered panic value. The filter
// does not link fmt, so values other than errors and strings are named by
// kind only.
func panicText(r any) string {
	switch v := r.(type) {
	case error:
		return v.Error()
	case string:
		return v
	case interface{ String() string }:
		return v.String()
	default:
		return "a panic value that is neither an error nor a string"
	}
}
