package main

import (
	"strings"

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
	hash   cache.TokenHash
	// upstreamCopies counts the client's values of the upstream header.
	upstreamCopies int
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
	headers, err := proxywasm.GetHttpRequestHeaders()
	if err != nil {
		return h.respond(reply.ServerError, "cannot read request headers: "+err.Error())
	}
	var method string
	var authorization []string
	var origin, preflightMethod bool
	for _, kv := range headers {
		name := strings.ToLower(kv[0])
		if name == cfg.UpstreamHeader {
			h.upstreamCopies++
		}
		switch name {
		case ":method":
			method = kv[1]
		case "authorization":
			authorization = append(authorization, kv[1])
		case "origin":
			origin = true
		case "access-control-request-method":
			preflightMethod = true
		}
	}
	// A CORS preflight carries no token by design; the CORS filter or the
	// upstream answers it. Any other OPTIONS is authenticated.
	if cfg.ForwardCORSPreflight && method == "OPTIONS" && origin && preflightMethod {
		h.plugin.metrics.preflight.Increment(1)
		return types.ActionContinue
	}
	h.head = method == "HEAD"

	token, found := bearer.FromHeader(authorization, cfg.MaxTokenLength)
	switch found {
	case bearer.Missing:
		return h.respond(reply.NoToken, "no bearer token")
	case bearer.Malformed:
		return h.respond(reply.InvalidToken, "malformed bearer token")
	case bearer.Duplicate:
		return h.respond(reply.InvalidRequest, "more than one Authorization header")
	}
	h.hash = cache.Hash(cfg.CacheNamespace, token)

	var slot cache.Entry
	if cfg.CacheEnabled {
		rec, _, _ := proxywasm.GetSharedData(h.key())
		slot = cache.Decode(rec, h.hash, now())
		if slot.Kind == cache.Active {
			if a, ok := fromCache(slot.JWT); ok {
				h.plugin.metrics.cacheHits.Increment(1)
				return h.finish(a)
			}
		}
		h.plugin.metrics.cacheMisses.Increment(1)
	}
	return h.plugin.introspect(h, token, slot.Kind == cache.Pending)
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
func (h *httpContext) finish(a introspection.Answer) types.Action {
	switch a.Outcome {
	case introspection.Active:
		return h.admit(a.JWT, a.Claims)
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
// the upstream header.
func (h *httpContext) admit(jwtText string, claims jwt.Claims) types.Action {
	switch claims.Check(now(), h.cfg.RequiredScopes) {
	case jwt.Expired:
		return h.respond(reply.InvalidToken, "JWT has expired")
	case jwt.InsufficientScope:
		return h.respond(reply.InsufficientScope, "JWT lacks a required scope")
	}
	// Remove every client-supplied value first, so no second copy of the
	// header (a JWT of the client's own) travels with ours. Envoy removes all
	// values in one call; a host that removes one at a time gets one call each.
	name, value := h.cfg.UpstreamHeader, jwtText
	if name == "authorization" {
		value = "Bearer " + jwtText
	}
	for i := 0; i < max(h.upstreamCopies, 1); i++ {
		if err := proxywasm.RemoveHttpRequestHeader(name); err != nil {
			return h.respond(reply.ServerError, "cannot remove the "+name+" header: "+err.Error())
		}
	}
	if err := proxywasm.AddHttpRequestHeader(name, value); err != nil {
		return h.respond(reply.ServerError, "cannot set the "+name+" header: "+err.Error())
	}
	h.done = true
	h.plugin.metrics.allowed.Increment(1)
	return types.ActionContinue
}

func (h *httpContext) key() string {
	return cache.Key(h.cfg.CacheNamespace, h.hash, h.cfg.CacheMaxEntries)
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
	if h.hash == (cache.TokenHash{}) {
		return ""
	}
	return "token " + h.hash.Fingerprint() + ": "
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
