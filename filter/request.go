package main

import (
	"strconv"
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
	cfg  *config.Config
	head bool
	hash cache.TokenHash
	// upstreamCopies counts the client's values of the upstream header.
	upstreamCopies int
	// done is set once the request was answered or resumed, so a panic
	// afterwards does not answer twice.
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
		proxywasm.LogDebug("phantom-token: CORS preflight forwarded without authentication")
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

	if cfg.CacheEnabled {
		if rec, _, err := proxywasm.GetSharedData(h.key()); err == nil {
			if jwtText, ok := cache.Decode(rec, h.hash, now()); ok {
				if claims, err := jwt.Parse(jwtText); err == nil {
					h.logf("cache hit")
					return h.admit(jwtText, claims)
				}
			}
		}
	}

	calloutHeaders, body := introspection.Request(cfg, token)
	if _, err := proxywasm.DispatchHttpCall(cfg.Cluster, calloutHeaders, body, nil,
		uint32(cfg.Timeout.Milliseconds()), h.onIntrospection); err != nil {
		return h.respond(reply.BadGateway, "cannot dispatch the introspection call to cluster "+strconv.Quote(cfg.Cluster)+": "+err.Error())
	}
	return types.ActionPause
}

// onIntrospection receives the identity server's answer.
func (h *httpContext) onIntrospection(numHeaders, bodySize, _ int) {
	var action types.Action
	defer h.recoverPanic(&action)
	var headers [][2]string
	if numHeaders > 0 {
		var err error
		if headers, err = proxywasm.GetHttpCallResponseHeaders(); err != nil {
			h.respond(reply.BadGateway, "cannot read introspection response headers: "+err.Error())
			return
		}
	}
	var body []byte
	if bodySize > 0 {
		// Read at most one byte past the limit: enough to know it is too big.
		var err error
		if body, err = proxywasm.GetHttpCallResponseBody(0, min(bodySize, h.cfg.MaxJWTSize+1)); err != nil {
			h.respond(reply.BadGateway, "cannot read introspection response body: "+err.Error())
			return
		}
	}
	answer := introspection.Classify(h.cfg, headers, body, now())
	switch answer.Outcome {
	case introspection.Active:
		if answer.CacheTTL > 0 {
			h.store(answer)
		}
		h.logf("introspection: active")
		if h.admit(answer.JWT, answer.Claims) == types.ActionContinue {
			h.done = true
			if err := proxywasm.ResumeHttpRequest(); err != nil {
				proxywasm.LogErrorf("phantom-token: cannot resume the request: %v", err)
			}
		}
	case introspection.Inactive:
		h.respond(reply.InvalidToken, answer.Reason)
	case introspection.Unavailable:
		h.respond(reply.Unavailable, answer.Reason)
	case introspection.BadGateway:
		h.respond(reply.BadGateway, answer.Reason)
	default:
		h.respond(reply.ServerError, answer.Reason)
	}
}

// admit runs the per-request checks on a JWT, fresh or cached, and puts it in
// the upstream header. It returns ActionContinue when the request may go on.
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
	return types.ActionContinue
}

// store caches an active answer in its slot. A CAS mismatch means another
// worker wrote the slot a moment ago; its answer is as good as ours.
func (h *httpContext) store(a introspection.Answer) {
	key := h.key()
	_, cas, err := proxywasm.GetSharedData(key)
	if err != nil && err != types.ErrorStatusNotFound {
		cas = 0
	}
	rec := cache.Encode(h.hash, now().Add(a.CacheTTL), a.JWT)
	if err := proxywasm.SetSharedData(key, rec, cas); err != nil && err != types.ErrorStatusCasMismatch {
		proxywasm.LogWarnf("phantom-token: cannot cache the answer: %v", err)
	}
}

func (h *httpContext) key() string {
	return cache.Key(h.cfg.CacheNamespace, h.hash, h.cfg.CacheMaxEntries)
}

// respond answers the client locally. It returns ActionPause, which the
// header callback must return after a local reply.
func (h *httpContext) respond(k reply.Kind, why string) types.Action {
	r := reply.New(k, h.cfg, h.head)
	h.done = true
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

func (h *httpContext) logf(what string) {
	proxywasm.LogDebugf("phantom-token: %s%s", h.fingerprint(), what)
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
		if !h.done {
			*action = h.respond(reply.ServerError, "internal error")
		} else {
			*action = types.ActionPause
		}
	}
}
