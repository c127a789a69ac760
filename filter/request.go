package main

import (
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/phantom-token/envoy-phantom-token/internal/bearer"
	"github.com/phantom-token/envoy-phantom-token/internal/cache"
	"github.com/phantom-token/envoy-phantom-token/internal/config"
	"github.com/phantom-token/envoy-phantom-token/internal/introspection"
	"github.com/phantom-token/envoy-phantom-token/internal/jwt"
	"github.com/phantom-token/envoy-phantom-token/internal/reply"
)

// httpContext handles one request.
type httpContext struct {
	types.DefaultHttpContext
	plugin *pluginContext
	cfg    *config.Config
	id     uint32
	head   bool
	token  string
	// hash is the token's SHA-256, computed when first needed.
	hash cache.TokenHash
	// flight is the introspection the request waits for.
	flight *flight
	// done is set once the request was answered or let through, so a panic
	// or a late answer does not act on it twice.
	done bool
}

func (h *httpContext) OnHttpRequestHeaders(int, bool) (action types.Action) {
	defer h.recoverPanic(&action)
	cfg := h.cfg
	if cfg == nil { // the plugin did not start: never let a request through
		return h.respond(reply.ServerError, "plugin has no valid configuration")
	}
	if !cfg.Enabled {
		return types.ActionContinue
	}
	// Only the headers the filter needs are read: fetching the whole map
	// costs more than the rest of a cache hit.
	method, _ := proxywasm.GetHttpRequestHeader(":method")
	// A CORS preflight carries no token by design; the CORS filter or the
	// upstream answers it. Any other OPTIONS is authenticated.
	if method == "OPTIONS" && cfg.ForwardCORSPreflight && h.isPreflight() {
		h.plugin.metrics.preflight.Increment(1)
		return types.ActionContinue
	}
	h.head = method == "HEAD"

	// Envoy folds repeated Authorization headers into one value joined by
	// commas; bearer.FromHeader reads that as a duplicate.
	var authorization []string
	if v, err := proxywasm.GetHttpRequestHeader("authorization"); err == nil {
		authorization = []string{v}
	}
	token, found := bearer.FromHeader(authorization, cfg.MaxTokenLength)
	switch found {
	case bearer.Missing:
		return h.respond(reply.NoToken, "no bearer token")
	case bearer.Malformed:
		return h.respond(reply.InvalidToken, "malformed bearer token")
	case bearer.Duplicate:
		return h.respond(reply.InvalidRequest, "more than one Authorization header")
	}
	h.token = token

	var slot cache.Entry
	if cfg.CacheEnabled {
		p := h.plugin
		t := now()
		lk := p.local.key(token)
		if e, ok := p.local.get(lk, t); ok {
			p.metrics.cacheHits.Increment(1)
			return h.admit(e.answer.Claims, e.upstream, t)
		}
		rec, _, _ := proxywasm.GetSharedData(h.key())
		slot = cache.Decode(rec, h.tokenHash(), t)
		if slot.Kind == cache.Active {
			if a, ok := fromCache(slot.JWT); ok {
				e := p.remember(lk, a, slot.Expires)
				p.metrics.cacheHits.Increment(1)
				return h.admit(a.Claims, e.upstream, t)
			}
		}
		p.metrics.cacheMisses.Increment(1)
	}
	return h.plugin.introspect(h, slot.Kind == cache.Pending)
}

// OnHttpStreamDone lets go of a request that ended while it waited.
func (h *httpContext) OnHttpStreamDone() {
	defer func() {
		if r := recover(); r != nil {
			proxywasm.LogCriticalf("phantom-token: panic at stream end: %v", r)
		}
	}()
	if h.plugin != nil && h.cfg != nil {
		h.plugin.leave(h)
	}
}

// finish acts on the answer for this request, which must be the effective
// context. It returns ActionContinue when the request may go on upstream.
func (h *httpContext) finish(a introspection.Answer, t time.Time) types.Action {
	switch a.Outcome {
	case introspection.Active:
		return h.admit(a.Claims, h.plugin.upstreamValue(a.JWT), t)
	case introspection.Inactive:
		return h.respond(reply.InvalidToken, a.Reason)
	case introspection.Unavailable:
		return h.respond(reply.Unavailable, a.Reason)
	case introspection.BadGateway:
		return h.respond(reply.BadGateway, a.Reason)
	}
	return h.respond(reply.ServerError, a.Reason)
}

// admit runs the per-request checks on a JWT, fresh or cached, and puts it in
// the upstream header (value is the header's value, see upstreamValue).
func (h *httpContext) admit(claims jwt.Claims, value string, t time.Time) types.Action {
	switch claims.Check(t, h.cfg.RequiredScopes) {
	case jwt.Expired:
		return h.respond(reply.InvalidToken, "JWT has expired")
	case jwt.InsufficientScope:
		return h.respond(reply.InsufficientScope, "JWT lacks a required scope")
	}
	if err := h.setUpstreamHeader(value); err != nil {
		return h.respond(reply.ServerError, "cannot set the "+h.cfg.UpstreamHeader+" header: "+err.Error())
	}
	h.done = true
	h.plugin.metrics.allowed.Increment(1)
	return types.ActionContinue
}

// setUpstreamHeader sets the upstream header, leaving no value the client
// sent in it. Authorization has one value by now (Envoy folds repeated ones,
// and a folded pair was refused), so one replace does it. Any other header may
// come many times: every value is removed first, so no JWT of the client's own
// travels with ours.
func (h *httpContext) setUpstreamHeader(value string) error {
	name := h.cfg.UpstreamHeader
	if name == "authorization" {
		return proxywasm.ReplaceHttpRequestHeader(name, value)
	}
	// Envoy removes every value in one call; a host that removes one at a
	// time gets a call for each.
	for i := 0; i < maxRemovals; i++ {
		if _, err := proxywasm.GetHttpRequestHeader(name); err != nil {
			break
		}
		if err := proxywasm.RemoveHttpRequestHeader(name); err != nil {
			return err
		}
	}
	return proxywasm.AddHttpRequestHeader(name, value)
}

// maxRemovals bounds the remove calls for hosts that remove one value at a
// time; Envoy removes them all in the first.
const maxRemovals = 64

// isPreflight: a CORS preflight has Origin and Access-Control-Request-Method.
func (h *httpContext) isPreflight() bool {
	_, errOrigin := proxywasm.GetHttpRequestHeader("origin")
	_, errMethod := proxywasm.GetHttpRequestHeader("access-control-request-method")
	return errOrigin == nil && errMethod == nil
}

// tokenHash is the token's SHA-256 in the configuration's namespace.
func (h *httpContext) tokenHash() cache.TokenHash {
	if h.hash == (cache.TokenHash{}) && h.token != "" {
		h.hash = cache.Hash(h.cfg.CacheNamespace, h.token)
	}
	return h.hash
}

func (h *httpContext) key() string {
	return cache.Key(h.cfg.CacheNamespace, h.tokenHash(), h.cfg.CacheMaxEntries)
}

// respond answers the client locally. It returns ActionPause, which the
// header callback must return after a local reply.
func (h *httpContext) respond(k reply.Kind, why string) types.Action {
	h.done = true
	var r reply.Reply
	if h.cfg == nil {
		r = reply.New(reply.ServerError, &config.Config{}, h.head)
	} else {
		r = reply.New(k, h.cfg, h.head)
	}
	if h.plugin != nil && h.plugin.metrics != nil {
		h.plugin.metrics.denied[r.Status].Increment(1)
	}
	if r.Status >= 500 {
		proxywasm.LogWarnf("phantom-token: %s%s: answering %d", h.fingerprint(), why, r.Status)
	} else {
		proxywasm.LogDebugf("phantom-token: %s%s: answering %d", h.fingerprint(), why, r.Status)
	}
	if err := proxywasm.SendHttpResponse(r.Status, r.Headers, r.Body, -1); err != nil {
		proxywasm.LogErrorf("phantom-token: cannot send the local response: %v", err)
	}
	return types.ActionPause
}

// fingerprint names the token in logs without revealing it.
func (h *httpContext) fingerprint() string {
	if h.token == "" {
		return ""
	}
	return "token " + h.tokenHash().Fingerprint() + ": "
}

// recoverPanic turns a panic into a 500: the request is never let through and
// the VM survives.
func (h *httpContext) recoverPanic(action *types.Action) {
	if r := recover(); r != nil {
		proxywasm.LogCriticalf("phantom-token: panic: %v", r)
		*action = types.ActionPause
		if !h.done {
			h.respond(reply.ServerError, "internal error")
		}
	}
}
