package main

import (
	"bytes"
	"encoding/base64"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/phantom-token/envoy-phantom-token/internal/cache"
	"github.com/phantom-token/envoy-phantom-token/internal/config"
	"github.com/phantom-token/envoy-phantom-token/internal/testjwt"
)

const (
	clientSecret = "client-s3cret!"
	baseConfig   = `{"introspection_url":"https://login.example.com/oauth/v2/oauth-introspect","cluster":"idsvr","client_id":"api-gateway","client_secret":"` + clientSecret + `","timeout":"3s"`

	unauthorizedBody = `{"code":"unauthorized_request","message":"Access denied due to missing, invalid or expired credentials"}`
	serverErrorBody  = `{"code":"server_error","message":"Problem encountered processing the request"}`
	forbiddenBody    = `{"code":"forbidden","message":"Access denied due to insufficient scope"}`
	badRequestBody   = `{"code":"invalid_request","message":"The request is malformed"}`
)

// Every token in these tests contains "opaque" and every JWT starts with the
// encoded header "eyJ", so the log check below can look for them.
const token = "opaque-2YotnFZFEjr1zCsicMWpAA"

func withConfig(extra string) string { return baseConfig + extra + "}" }

// started is a host whose logs are checked for secrets when the test ends.
func started(t *testing.T, m mode, cfg string) *host {
	h := newHost(t, m, cfg)
	t.Cleanup(func() { h.assertNoSecrets("opaque", "eyJ", clientSecret) })
	return h
}

// jwtExp is the exp of phantomJWT's JWTs: one value for the whole run, so
// that a JWT made for a request and one made later to compare with it are the
// same even when a second passed in between.
var jwtExp = strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)

func phantomJWT(claims string) string {
	exp := jwtExp
	if claims != "" {
		claims = "," + claims
	}
	return testjwt.Make(`{"sub":"alice","exp":` + exp + claims + `}`)
}

func authBearer(t string) [2]string { return [2]string{"authorization", "Bearer " + t} }

var get = [][2]string{{":method", "GET"}, {":path", "/api/orders"}, {":authority", "api.example.com"}}

func req(extra ...[2]string) [][2]string { return append(append([][2]string{}, get...), extra...) }

func idsOK(cacheControl string) [][2]string {
	h := [][2]string{{":status", "200"}, {"content-type", "application/jwt"}, {"x-envoy-upstream-service-time", "2"}}
	if cacheControl != "" {
		h = append(h, [2]string{"cache-control", cacheControl})
	}
	return h
}

// status is an answer from the identity server: Envoy's router marks those
// with x-envoy-upstream-service-time.
func status(s int) [][2]string {
	return [][2]string{{":status", strconv.Itoa(s)}, {"x-envoy-upstream-service-time", "2"}}
}

func header(headers [][2]string, name string) []string {
	var out []string
	for _, kv := range headers {
		if strings.EqualFold(kv[0], name) {
			out = append(out, kv[1])
		}
	}
	return out
}

// wantReply checks a local reply completely: status, every header, body.
func wantReply(t *testing.T, e *exchange, code uint32, challenge, body string) {
	t.Helper()
	r := e.local()
	if r == nil {
		t.Fatalf("no local reply; want %d", code)
	}
	want := [][2]string{{"content-type", "application/json"}}
	if challenge != "" {
		want = append([][2]string{{"www-authenticate", challenge}}, want...)
	}
	if r.StatusCode != code || string(r.Data) != body || !reflect.DeepEqual(r.Headers, want) {
		t.Errorf("reply %d %q %q\n want %d %q %q", r.StatusCode, r.Headers, r.Data, code, want, body)
	}
	if e.finalAction() != types.ActionPause {
		t.Errorf("stream action %v after a local reply", e.finalAction())
	}
}

// wantForwarded checks that the request went on with exactly one upstream
// header holding the JWT, and nothing else changed.
func wantForwarded(t *testing.T, e *exchange, sent [][2]string, name, value string) {
	t.Helper()
	if e.local() != nil {
		t.Fatalf("unexpected local reply %d %s", e.local().StatusCode, e.local().Data)
	}
	if e.finalAction() != types.ActionContinue {
		t.Fatalf("request not resumed: %v", e.finalAction())
	}
	got := e.upstreamHeaders()
	if v := header(got, name); !reflect.DeepEqual(v, []string{value}) {
		t.Errorf("upstream %s = %q, want exactly [%q]", name, v, value)
	}
	var others, wantOthers [][2]string
	for _, kv := range got {
		if kv[0] != name {
			others = append(others, kv)
		}
	}
	for _, kv := range sent {
		if kv[0] != name {
			wantOthers = append(wantOthers, kv)
		}
	}
	if !reflect.DeepEqual(others, wantOthers) {
		t.Errorf("other upstream headers changed:\n got %q\nwant %q", others, wantOthers)
	}
}

func TestIntrospectionCall(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		h := started(t, m, withConfig(""))
		sent := req(authBearer("opaque-a+b/c="), [2]string{"cookie", "session=1"}, [2]string{"accept", "text/html"},
			[2]string{"content-type", "text/plain"}, [2]string{"x-custom", "1"})
		e := h.request(sent...)
		if e.action != types.ActionPause {
			t.Fatalf("action %v, want pause until the identity server answers", e.action)
		}
		c := e.callouts()
		if len(c) != 1 {
			t.Fatalf("%d callouts", len(c))
		}
		basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("api-gateway:client-s3cret%21"))
		wantHeaders := [][2]string{
			{":method", "POST"},
			{":path", "/oauth/v2/oauth-introspect"},
			{":authority", "login.example.com"},
			{"content-type", "application/x-www-form-urlencoded"},
			{"accept", "application/jwt"},
			{"authorization", basic},
		}
		if c[0].Upstream != "idsvr" || !reflect.DeepEqual(c[0].Headers, wantHeaders) || string(c[0].Body) != "token=opaque-a%2Bb%2Fc%3D" {
			t.Errorf("callout to %q\n headers %q\n body %q", c[0].Upstream, c[0].Headers, c[0].Body)
		}
		if len(c[0].Trailers) != 0 {
			t.Errorf("trailers %q", c[0].Trailers)
		}
		if got := h.calloutTimeouts(); !reflect.DeepEqual(got, []int{3000}) {
			t.Errorf("callout timeouts %v ms, want [3000]", got)
		}
		// The call does not touch the client's request.
		if got := e.upstreamHeaders(); !reflect.DeepEqual(got, sent) {
			t.Errorf("request headers changed by the call: %q", got)
		}
	})
}

func TestDefaultTimeoutAndRFC9701Accept(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		cfg := strings.Replace(withConfig(`,"response_type":"application/token-introspection+jwt"`), `,"timeout":"3s"`, "", 1)
		h := started(t, m, cfg)
		e := h.request(req(authBearer(token))...)
		if got := header(e.callouts()[0].Headers, "accept"); !reflect.DeepEqual(got, []string{"application/token-introspection+jwt"}) {
			t.Errorf("accept %q", got)
		}
		if got := h.calloutTimeouts(); !reflect.DeepEqual(got, []int{5000}) {
			t.Errorf("default timeout %v ms, want [5000]", got)
		}
	})
}

func TestTokenReading(t *testing.T) {
	const noError, invalidToken = `Bearer realm="api"`, `Bearer realm="api", error="invalid_token"`
	tests := []struct {
		name      string
		headers   [][2]string
		code      uint32
		challenge string
		body      string
	}{
		{"no Authorization header", req(), 401, noError, unauthorizedBody},
		{"empty Authorization header", req([2]string{"authorization", ""}), 401, noError, unauthorizedBody},
		{"Basic scheme", req([2]string{"authorization", "Basic dXNlcjpwYXNz"}), 401, noError, unauthorizedBody},
		{"Bearer without a token", req([2]string{"authorization", "Bearer"}), 401, noError, unauthorizedBody},
		{"Bearer not at the start", req([2]string{"authorization", "Foo Bearer " + token}), 401, noError, unauthorizedBody},
		{"token with forbidden characters", req(authBearer("opaque&x=1")), 401, invalidToken, unauthorizedBody},
		{"token longer than max_token_length", req(authBearer("opaque" + strings.Repeat("A", 4096))), 401, invalidToken, unauthorizedBody},
		// Envoy folds repeated Authorization headers into one value joined by
		// commas (HTTP/1.1 and HTTP/2 alike); the e2e suite sends real ones.
		{"two Authorization headers, as Envoy folds them", req([2]string{"authorization", "Bearer " + token + ",Bearer " + token}), 400, `Bearer realm="api", error="invalid_request"`, badRequestBody},
		{"HEAD without a token gets no body", [][2]string{{":method", "HEAD"}, {":path", "/"}}, 401, noError, ""},
		{"plain OPTIONS without a token", [][2]string{{":method", "OPTIONS"}, {":path", "/"}, {"origin", "https://app"}}, 401, noError, unauthorizedBody},
	}
	forEachMode(t, func(t *testing.T, m mode) {
		h := started(t, m, withConfig(""))
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e := h.request(tt.headers...)
				wantReply(t, e, tt.code, tt.challenge, tt.body)
				if n := len(e.callouts()); n != 0 {
					t.Errorf("%d introspection calls, want none", n)
				}
			})
		}
	})
}

func TestTokenFormsAccepted(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		h := started(t, m, withConfig(`,"cache":false`))
		for _, v := range []string{"bearer " + token, "BEARER   " + token, "Bearer\t" + token + " \t"} {
			e := h.request(req([2]string{"authorization", v})...)
			c := e.callouts()
			if len(c) != 1 || string(c[0].Body) != "token="+token {
				t.Errorf("%q: callouts %v", v, c)
			}
		}
	})
}

func TestIdentityServerAnswers(t *testing.T) {
	valid := phantomJWT(`"scope":"read"`)
	// proxytest's wasm runner gives the module a fake clock that starts in
	// the past, so "expired" must be expired for both clocks.
	expired := testjwt.Make(`{"sub":"alice","exp":1000000}`)
	invalidToken := `Bearer realm="api", error="invalid_token"`
	tests := []struct {
		name      string
		headers   [][2]string // nil: the call failed without a response
		body      string
		code      uint32 // 0: forwarded with body as the JWT
		challenge string
		replyBody string
	}{
		{"200 with a JWT is forwarded", idsOK("max-age=60"), valid, 0, "", ""},
		{"200 with a JWT and a trailing newline", idsOK(""), valid + "\n", 0, "", ""},
		{"204 means inactive", status(204), "", 401, invalidToken, unauthorizedBody},
		{"200 active false", idsOK(""), `{"active":false}`, 401, invalidToken, unauthorizedBody},
		{"200 with an expired JWT", idsOK(""), expired, 401, invalidToken, unauthorizedBody},
		{"200 with an empty body", idsOK(""), "", 502, "", serverErrorBody},
		{"200 with HTML", idsOK(""), "<html>login</html>", 502, "", serverErrorBody},
		{"200 with JSON active true", idsOK(""), `{"active":true}`, 502, "", serverErrorBody},
		{"200 with a JWT over max_jwt_size", idsOK(""), phantomJWT(`"pad":"` + strings.Repeat("x", 20000) + `"`), 502, "", serverErrorBody},
		{"503", status(503), "", 503, "", serverErrorBody},
		{"401 (bad client credentials)", status(401), `{"error":"invalid_client"}`, 502, "", serverErrorBody},
		{"403", status(403), "", 502, "", serverErrorBody},
		{"404", status(404), "", 502, "", serverErrorBody},
		{"500", status(500), "boom", 502, "", serverErrorBody},
		{"502", status(502), "", 502, "", serverErrorBody},
		{"504 (Envoy's timeout reply)", status(504), "upstream request timeout", 502, "", serverErrorBody},
		{"599", status(599), "", 502, "", serverErrorBody},
		{"no response", nil, "", 502, "", serverErrorBody},
		{"Envoy's own 503 (connection refused, reset, no healthy host)", [][2]string{{":status", "503"}, {"content-type", "text/plain"}},
			"upstream connect error or disconnect/reset before headers. reset reason: remote connection failure", 502, "", serverErrorBody},
		{"100", status(100), "", 500, "", serverErrorBody},
		{"201", status(201), valid, 500, "", serverErrorBody},
		{"302", status(302), "", 500, "", serverErrorBody},
		{"400", status(400), "", 500, "", serverErrorBody},
		{"402", status(402), "", 500, "", serverErrorBody},
		{"405", status(405), "", 500, "", serverErrorBody},
		{"429", status(429), "", 500, "", serverErrorBody},
		{"499", status(499), "", 500, "", serverErrorBody},
	}
	forEachMode(t, func(t *testing.T, m mode) {
		h := started(t, m, withConfig(`,"cache":false`))
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				sent := req(authBearer(token), [2]string{"accept", "application/json"})
				e := h.request(sent...)
				e.answer(tt.headers, tt.body)
				if tt.code == 0 {
					wantForwarded(t, e, sent, "authorization", "Bearer "+strings.TrimSpace(tt.body))
					return
				}
				wantReply(t, e, tt.code, tt.challenge, tt.replyBody)
				if got := e.upstreamHeaders(); !reflect.DeepEqual(got, sent) {
					t.Errorf("request headers changed: %q", got)
				}
			})
		}
	})
}

func TestHEADErrorHasNoBody(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		h := started(t, m, withConfig(""))
		e := h.request([2]string{":method", "HEAD"}, [2]string{":path", "/"}, authBearer(token))
		e.answer(status(500), "")
		wantReply(t, e, 502, "", "")
		e = h.request([2]string{":method", "HEAD"}, [2]string{":path", "/"}, authBearer(token))
		e.answer(status(204), "")
		wantReply(t, e, 401, `Bearer realm="api", error="invalid_token"`, "")
	})
}

func TestRFC9701(t *testing.T) {
	active := testjwt.Make(`{"iss":"https://ids","token_introspection":{"active":true,"sub":"alice","scope":"read"}}`)
	inactive := testjwt.Make(`{"iss":"https://ids","token_introspection":{"active":false}}`)
	forEachMode(t, func(t *testing.T, m mode) {
		h := started(t, m, withConfig(`,"response_type":"application/token-introspection+jwt","cache":false`))
		sent := req(authBearer(token))
		e := h.request(sent...)
		e.answer([][2]string{{":status", "200"}, {"content-type", "application/token-introspection+jwt"}}, active)
		wantForwarded(t, e, sent, "authorization", "Bearer "+active)

		e = h.request(sent...)
		e.answer([][2]string{{":status", "200"}}, inactive)
		wantReply(t, e, 401, `Bearer realm="api", error="invalid_token"`, unauthorizedBody)

		e = h.request(sent...)
		e.answer([][2]string{{":status", "200"}}, phantomJWT(""))
		wantReply(t, e, 502, "", serverErrorBody)
	})
}

func TestUpstreamHeaderReplacesEveryClientCopy(t *testing.T) {
	jwt := phantomJWT("")
	forEachMode(t, func(t *testing.T, m mode) {
		t.Run("authorization", func(t *testing.T) {
			h := started(t, m, withConfig(""))
			sent := req(authBearer(token))
			e := h.request(sent...)
			e.answer(idsOK(""), jwt)
			wantForwarded(t, e, sent, "authorization", "Bearer "+jwt)
		})
		t.Run("custom header", func(t *testing.T) {
			h := started(t, m, withConfig(`,"upstream_header":"X-JWT"`))
			sent := req(authBearer(token), [2]string{"x-jwt", "eyJforged.one.x"}, [2]string{"x-other", "1"}, [2]string{"x-jwt", "eyJforged.two.x"})
			e := h.request(sent...)
			e.answer(idsOK(""), jwt)
			wantForwarded(t, e, sent, "x-jwt", jwt)
		})
	})
}

func TestRequiredScopes(t *testing.T) {
	insufficient := `Bearer realm="api", scope="orders:read", error="insufficient_scope"`
	forEachMode(t, func(t *testing.T, m mode) {
		h := started(t, m, withConfig(`,"required_scopes":"orders:read"`))
		// The token without the scope is refused on the first request and
		// again on the cached one (peers only checked the first).
		for i := 0; i < 2; i++ {
			e := h.request(req(authBearer(token + "-few"))...)
			if i == 0 {
				e.answer(idsOK("max-age=60"), phantomJWT(`"scope":"openid orders:write"`))
			} else if n := len(e.callouts()); n != 0 {
				t.Fatalf("request %d: %d callouts, want a cache hit", i, n)
			}
			wantReply(t, e, 403, insufficient, forbiddenBody)
		}
		jwt := phantomJWT(`"scope":"openid orders:read"`)
		for i := 0; i < 2; i++ {
			sent := req(authBearer(token + "-enough"))
			e := h.request(sent...)
			if i == 0 {
				e.answer(idsOK("max-age=60"), jwt)
			}
			wantForwarded(t, e, sent, "authorization", "Bearer "+jwt)
		}
		// A missing token advertises the required scope.
		wantReply(t, h.request(req()...), 401, `Bearer realm="api", scope="orders:read"`, unauthorizedBody)
	})
}

func TestCORSPreflight(t *testing.T) {
	preflight := [][2]string{{":method", "OPTIONS"}, {":path", "/api"}, {"origin", "https://app.example"}, {"access-control-request-method", "POST"}}
	with := func(extra ...[2]string) [][2]string { return append(append([][2]string{}, preflight...), extra...) }
	forEachMode(t, func(t *testing.T, m mode) {
		t.Run("forwarded without a token or a call", func(t *testing.T) {
			h := started(t, m, withConfig(""))
			for _, sent := range [][][2]string{preflight, with([2]string{"content-length", "0"})} {
				e := h.request(sent...)
				if e.action != types.ActionContinue || e.local() != nil || len(e.callouts()) != 0 {
					t.Errorf("preflight: action %v, reply %v, %d callouts", e.action, e.local(), len(e.callouts()))
				}
				if !reflect.DeepEqual(e.upstreamHeaders(), sent) {
					t.Errorf("preflight headers changed: %q", e.upstreamHeaders())
				}
			}
		})
		t.Run("forwarded without any copy of the upstream header", func(t *testing.T) {
			h := started(t, m, withConfig(`,"upstream_header":"x-jwt"`))
			e := h.request(with([2]string{"x-jwt", "eyJforged.one.x"}, [2]string{"x-jwt", "eyJforged.two.x"})...)
			if e.finalAction() != types.ActionContinue || !reflect.DeepEqual(e.upstreamHeaders(), preflight) {
				t.Errorf("preflight: action %v, upstream headers %q", e.finalAction(), e.upstreamHeaders())
			}
		})
		t.Run("authenticated when forwarding is off", func(t *testing.T) {
			h := started(t, m, withConfig(`,"forward_cors_preflight":false`))
			wantReply(t, h.request(preflight...), 401, `Bearer realm="api"`, unauthorizedBody)
		})
		t.Run("an OPTIONS with a body is authenticated", func(t *testing.T) {
			h := started(t, m, withConfig(""))
			for name, e := range map[string]*exchange{
				"content-length 5":                   h.request(with([2]string{"content-length", "5"})...),
				"transfer-encoding chunked":          h.request(with([2]string{"transfer-encoding", "chunked"})...),
				"headers that do not end the stream": h.send(false, preflight...),
			} {
				t.Run(name, func(t *testing.T) { wantReply(t, e, 401, `Bearer realm="api"`, unauthorizedBody) })
			}
		})
		t.Run("an OPTIONS with Authorization is authenticated", func(t *testing.T) {
			h := started(t, m, withConfig(""))
			e := h.request(with(authBearer(token))...)
			if len(e.callouts()) != 1 || e.action != types.ActionPause {
				t.Fatalf("not introspected: %d calls, %v", len(e.callouts()), e.action)
			}
			e.answer(status(204), "")
			wantReply(t, e, 401, `Bearer realm="api", error="invalid_token"`, unauthorizedBody)
		})
	})
}

// A header read that fails for any reason other than "not found" answers
// 500: it never counts as an absent header (faults are injected into the Go
// code).
func TestHeaderReadErrorsFailClosed(t *testing.T) {
	m := modes[0]
	preflight := [][2]string{{":method", "OPTIONS"}, {":path", "/api"}, {"origin", "https://app.example"}, {"access-control-request-method", "POST"}}
	tests := []struct {
		name, failing, upstream string
		sent                    [][2]string
		problem                 string
	}{
		{"Authorization of a request shaped like a preflight", "authorization", "", append(append([][2]string{}, preflight...), [2]string{"authorization", "Bearer eyJforged.x.y"}),
			"cannot read the Authorization header: injected host failure"},
		{"Authorization of a GET", "authorization", "", req(authBearer(token)), "cannot read the Authorization header: injected host failure"},
		{":method of a preflight", ":method", "", preflight, "cannot read the headers of a possible CORS preflight: injected host failure"},
		{"Origin of a preflight", "origin", "", preflight, "cannot read the headers of a possible CORS preflight: injected host failure"},
		{"Access-Control-Request-Method of a preflight", "access-control-request-method", "", preflight, "cannot read the headers of a possible CORS preflight: injected host failure"},
		{"content-length of a preflight", "content-length", "", preflight, "cannot read the headers of a possible CORS preflight: injected host failure"},
		{"transfer-encoding of a preflight", "transfer-encoding", "", preflight, "cannot read the headers of a possible CORS preflight: injected host failure"},
		{"the upstream header after its removal, on a preflight", "x-jwt", `,"upstream_header":"x-jwt"`, append(append([][2]string{}, preflight...), [2]string{"x-jwt", "eyJforged.x.y"}),
			"cannot remove the x-jwt header: injected host failure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := started(t, m, withConfig(tt.upstream))
			old := getHeader
			getHeader = func(n string) (string, error) {
				if n == tt.failing {
					return "", errHost
				}
				return old(n)
			}
			defer func() { getHeader = old }()
			e := h.request(tt.sent...)
			wantReply(t, e, 500, "", serverErrorBody)
			if len(e.callouts()) != 0 {
				t.Errorf("%d introspection calls", len(e.callouts()))
			}
			if want := "phantom-token: " + tt.problem + ": answering 500"; !slices.Contains(h.GetWarnLogs(), want) {
				t.Errorf("warn logs %q, want %q", h.GetWarnLogs(), want)
			}
		})
	}
}

// The upstream header is removed before it is read: a host that removes one
// value a call gets a call for each; one that never removes them all is an
// error, not a pass (faults are injected into the Go code).
func TestUpstreamHeaderRemovedWithoutReadingFirst(t *testing.T) {
	m := modes[0]
	jwt := phantomJWT("")
	sent := req(authBearer(token), [2]string{"x-jwt", "eyJforged.one.x"}, [2]string{"x-jwt", "eyJforged.two.x"})
	t.Run("removals until none is left", func(t *testing.T) {
		h := started(t, m, withConfig(`,"upstream_header":"x-jwt"`))
		var calls []string
		oldGet, oldRemove := getHeader, removeHeader
		getHeader = func(n string) (string, error) { calls = append(calls, "get "+n); return oldGet(n) }
		removeHeader = func(n string) error { calls = append(calls, "remove "+n); return oldRemove(n) }
		defer func() { getHeader, removeHeader = oldGet, oldRemove }()
		e := h.request(sent...)
		calls = nil
		e.answer(idsOK(""), jwt)
		wantForwarded(t, e, sent, "x-jwt", jwt)
		want := []string{"remove x-jwt", "get x-jwt", "remove x-jwt", "get x-jwt"}
		if !reflect.DeepEqual(calls, want) {
			t.Errorf("host calls %q, want %q", calls, want)
		}
	})
	t.Run("a host that never removes the last value", func(t *testing.T) {
		h := started(t, m, withConfig(`,"upstream_header":"x-jwt"`))
		old := removeHeader
		removeHeader = func(string) error { return nil }
		defer func() { removeHeader = old }()
		e := h.request(sent...)
		e.answer(idsOK(""), jwt)
		wantReply(t, e, 500, "", serverErrorBody)
	})
}

func TestCache(t *testing.T) {
	jwt := phantomJWT("")
	forEachMode(t, func(t *testing.T, m mode) {
		t.Run("second request is served from the cache", func(t *testing.T) {
			h := started(t, m, withConfig(""))
			sent := req(authBearer(token))
			e := h.request(sent...)
			e.answer(idsOK("max-age=120"), jwt)
			wantForwarded(t, e, sent, "authorization", "Bearer "+jwt)
			for i := 0; i < 3; i++ {
				e = h.request(sent...)
				if n := len(e.callouts()); n != 0 {
					t.Fatalf("cache hit made %d callouts", n)
				}
				wantForwarded(t, e, sent, "authorization", "Bearer "+jwt)
			}
			// Another token is not served the first one's JWT.
			e = h.request(req(authBearer(token + "-other"))...)
			if n := len(e.callouts()); n != 1 {
				t.Fatalf("another token: %d callouts, want 1", n)
			}
		})
		for _, tt := range []struct {
			name, extra, cacheControl, body string
			cached                          bool
		}{
			{"no-store is not cached", "", "no-store", jwt, false},
			{"no-cache is not cached", "", "no-cache", jwt, false},
			{"max-age=0 is not cached", "", "max-age=0", jwt, false},
			{"no-store ignored when configured", `,"cache_ignore_cache_control":true`, "no-store", jwt, true},
			{"cache off", `,"cache":false`, "max-age=60", jwt, false},
			{"inactive answers are not cached", "", "max-age=60", `{"active":false}`, false},
		} {
			t.Run(tt.name, func(t *testing.T) {
				h := started(t, m, withConfig(tt.extra))
				e := h.request(req(authBearer(token))...)
				e.answer(idsOK(tt.cacheControl), tt.body)
				e = h.request(req(authBearer(token))...)
				if got := len(e.callouts()) == 0; got != tt.cached {
					t.Errorf("served from cache: %v, want %v", got, tt.cached)
				}
			})
		}
		t.Run("errors are not cached", func(t *testing.T) {
			h := started(t, m, withConfig(""))
			e := h.request(req(authBearer(token))...)
			e.answer(status(503), "")
			if e = h.request(req(authBearer(token))...); len(e.callouts()) != 1 {
				t.Error("an error answer was cached")
			}
		})
	})
}

func TestCacheExpiry(t *testing.T) {
	m := modes[0] // the clock can only be moved in Go mode
	clock := time.Now()
	setClock(t, func() time.Time { return clock })
	exp := clock.Add(40 * time.Second).Unix()
	jwt := testjwt.Make(`{"sub":"alice","exp":` + strconv.FormatInt(exp, 10) + `}`)
	h := started(t, m, withConfig(""))
	call := func() *exchange { return h.request(req(authBearer(token))...) }

	e := call()
	e.answer(idsOK("max-age=20"), jwt)
	clock = clock.Add(19 * time.Second)
	if len(call().callouts()) != 0 {
		t.Fatal("entry not served before max-age")
	}
	clock = clock.Add(time.Second) // max-age reached
	e = call()
	if len(e.callouts()) != 1 {
		t.Fatal("entry served after max-age")
	}
	// The fresh answer is cached until exp minus the skew (40s-5s from the
	// start), not for the configured maximum.
	e.answer(idsOK(""), jwt)
	clock = clock.Add(14 * time.Second)
	if len(call().callouts()) != 0 {
		t.Fatal("entry not served before exp minus skew")
	}
	clock = clock.Add(time.Second)
	if e = call(); len(e.callouts()) != 1 {
		t.Fatal("entry served within the skew of exp")
	}
	// Past exp the identity server's answer is refused even if it returns
	// the stale JWT.
	clock = time.Unix(exp, 0)
	e.answer(idsOK(""), jwt)
	wantReply(t, e, 401, `Bearer realm="api", error="invalid_token"`, unauthorizedBody)
}

func TestSharedDataHoldsNoRawToken(t *testing.T) {
	m := modes[0] // the test reads shared data through the emulator directly
	h := started(t, m, withConfig(""))
	jwt := phantomJWT("")
	h.request(req(authBearer(token))...).answer(idsOK(""), jwt)

	c, err := config.Parse([]byte(withConfig("")), nil)
	if err != nil {
		t.Fatal(err)
	}
	hash := cache.Hash(c.CacheNamespace, token)
	key := cache.Keys(firstTable, hash, c.CacheMaxEntries)[0] // an empty table: the first set
	rec, _, err := proxywasm.GetSharedData(key)
	if err != nil {
		t.Fatalf("no cache entry under %q: %v", key, err)
	}
	if strings.Contains(key, token) || bytes.Contains(rec, []byte(token)) {
		t.Errorf("the raw token is stored in shared data")
	}
	if e := cache.Find(cache.Decode(rec), hash, time.Now()); e.Kind != cache.Active || e.JWT != jwt {
		t.Errorf("cache entry holds %+v", e)
	}
}

func TestPluginStart(t *testing.T) {
	tests := []struct{ name, cfg, key string }{
		{"no configuration", ``, ""},
		{"unknown key", withConfig(`,"introspection_endpoint":"x"`), "introspection_endpoint"},
		{"missing cluster", `{"introspection_url":"http://i/x","client_id":"a","client_secret":"` + clientSecret + `"}`, "cluster"},
		{"missing URL", `{"cluster":"c","client_id":"a","client_secret":"` + clientSecret + `"}`, "introspection_url"},
		{"missing credentials", `{"introspection_url":"http://i/x","cluster":"c","client_id":"a"}`, "client_secret"},
		{"bad URL", `{"introspection_url":"not a url","cluster":"c","client_id":"a","client_secret":"` + clientSecret + `"}`, "introspection_url"},
		{"wrong type", withConfig(`,"timeout":true`), "timeout"},
	}
	forEachMode(t, func(t *testing.T, m mode) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h, st := startHost(t, m, tt.cfg)
				if st != types.OnPluginStartStatusFailed {
					t.Fatal("plugin started with a bad configuration")
				}
				logs := h.GetCriticalLogs()
				if len(logs) != 1 || !strings.Contains(logs[0], `"`+tt.key+`"`) && tt.key != "" {
					t.Errorf("want one log line naming %q, got %q", tt.key, logs)
				}
				h.assertNoSecrets(clientSecret)
				// Should a request reach it anyway, it is refused.
				wantReply(t, h.request(req(authBearer(token))...), 500, "", serverErrorBody)
			})
		}
	})
}

func TestDisabled(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		h := started(t, m, withConfig(`,"enabled":false`))
		e := h.request(req()...)
		if e.action != types.ActionContinue || e.local() != nil || len(e.callouts()) != 0 {
			t.Errorf("disabled filter acted: %v %v", e.action, e.local())
		}
	})
}

func TestSecretFromVMEnvironment(t *testing.T) {
	m := modes[0] // proxytest's wasm runner gives the module no environment
	t.Setenv("PHANTOM_TOKEN_CLIENT_SECRET", "env-"+clientSecret)
	cfg := strings.Replace(withConfig(""), `"client_secret":"`, `"client_secret_env":"PHANTOM_TOKEN_CLIENT_SECRET","x":"`, 1)
	cfg = strings.Replace(cfg, `,"x":"`+clientSecret+`"`, "", 1)
	h := started(t, m, cfg)
	e := h.request(req(authBearer(token))...)
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("api-gateway:env-client-s3cret%21"))
	if got := header(e.callouts()[0].Headers, "authorization"); !reflect.DeepEqual(got, []string{want}) {
		t.Errorf("authorization %q", got)
	}
}

func TestPanicsFailClosed(t *testing.T) {
	m := modes[0] // a panic can only be provoked from inside in Go mode
	h := started(t, m, withConfig(""))
	t.Run("in the request callback", func(t *testing.T) {
		h.request(req(authBearer(token))...).answer(idsOK(""), phantomJWT(""))
		setClock(t, func() time.Time { panic("clock broke") }) // read on the cache hit
		wantReply(t, h.request(req(authBearer(token))...), 500, "", serverErrorBody)
	})
	t.Run("in the introspection callback", func(t *testing.T) {
		e := h.request(req(authBearer(token + "-2"))...)
		setClock(t, func() time.Time { panic("clock broke") })
		e.answer(idsOK(""), phantomJWT(""))
		wantReply(t, e, 500, "", serverErrorBody)
	})
	if len(h.GetCriticalLogs()) != 2 {
		t.Errorf("critical logs %q", h.GetCriticalLogs())
	}
}
