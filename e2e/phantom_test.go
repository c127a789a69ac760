package e2e

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
)

// TestValidToken: the upstream gets the request with the JWT instead of the
// opaque token, exactly once, and every other header and the body untouched;
// the IdS gets a clean RFC 7662 request.
func TestValidToken(t *testing.T) {
	tok := suite.ids.Issue(fixtures.TokenOptions{Scope: "read"})
	sent := http.Header{
		"Authorization": {"Bearer " + tok},
		"X-Custom":      {"one", "two"},
		"Accept":        {"text/html"},
		"Content-Type":  {"text/plain"},
		"Cookie":        {"session=abc"},
	}
	r := call(t, client, scDefault, http.MethodPost, sent, "payload & more")
	if r.status != http.StatusOK || len(r.upstream) != 1 {
		t.Fatalf("status %d, upstream calls %d, body %q; want 200 and 1", r.status, len(r.upstream), r.body)
	}
	up := r.upstream[0]
	jwt := suite.ids.JWTOf(tok)
	if got := up.Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer "+jwt {
		t.Errorf("upstream Authorization = %q, want exactly [Bearer <the IdS's JWT>]", got)
	}
	if _, err := suite.ids.Signer.Verify(jwt); err != nil {
		t.Errorf("the JWT is not the IdS's: %v", err)
	}
	for _, h := range []string{"X-Custom", "Accept", "Content-Type", "Cookie"} {
		if got := up.Header.Values(h); !slices.Equal(got, sent.Values(h)) {
			t.Errorf("upstream %s = %q, want %q", h, got, sent.Values(h))
		}
	}
	if up.Method != http.MethodPost || up.Body != "payload & more" {
		t.Errorf("upstream got %s with body %q", up.Method, up.Body)
	}

	calls := suite.ids.IntrospectionsOf(tok)
	if len(calls) != 1 {
		t.Fatalf("IdS called %d times, want 1", len(calls))
	}
	in := calls[0]
	wantAuth := "Basic " + basic(gatewayID, suite.gatewaySecret)
	if in.Header.Get("Authorization") != wantAuth || len(in.Header.Values("Authorization")) != 1 {
		t.Errorf("IdS Authorization = %q, want %q", in.Header.Values("Authorization"), wantAuth)
	}
	if got := in.Header.Values("Accept"); !slices.Equal(got, []string{"application/jwt"}) {
		t.Errorf("IdS Accept = %q, want [application/jwt]", got)
	}
	if got := in.Header.Get("Content-Type"); got != "application/x-www-form-urlencoded" {
		t.Errorf("IdS Content-Type = %q", got)
	}
	for _, h := range []string{"Cookie", "X-Custom"} {
		if v := in.Header.Values(h); len(v) > 0 {
			t.Errorf("client header %s = %q reached the IdS", h, v)
		}
	}
	if len(in.Form) != 1 || in.Form.Get("token") != tok {
		t.Errorf("IdS form = %v, want only token", in.Form)
	}
}

func basic(id, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
}

// TestAcceptedForms: the scheme is case-insensitive, spaces or tabs separate it,
// trailing whitespace is trimmed, and b64token characters ('+', '/', '=', '~')
// reach the IdS form-encoded, intact.
func TestAcceptedForms(t *testing.T) {
	for _, tc := range []struct{ name, value, header string }{
		{"lower-case scheme", "", "bearer %s"},
		{"upper-case scheme", "", "BEARER %s"},
		{"tab and spaces", "", "Bearer \t  %s"},
		{"trailing space", "", "Bearer %s "},
		{"b64token characters", "a+b/c~d.e_f-g==", "Bearer %s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := suite.ids.Issue(fixtures.TokenOptions{Value: tc.value})
			r := call(t, client, scDefault, http.MethodGet, http.Header{"Authorization": {fmt.Sprintf(tc.header, tok)}}, "")
			if r.status != http.StatusOK || len(r.upstream) != 1 {
				t.Fatalf("status %d, upstream calls %d, body %q", r.status, len(r.upstream), r.body)
			}
			if got := r.upstream[0].Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer "+suite.ids.JWTOf(tok) {
				t.Errorf("upstream Authorization = %q", got)
			}
		})
	}
}

// TestUnauthorized: every way of not presenting a usable token gets 401 with
// the challenge (error="invalid_token" only when a token was presented) and
// the module's body; the upstream is never called, the IdS only for
// well-formed tokens.
func TestUnauthorized(t *testing.T) {
	const noError, invalidToken = `Bearer realm="api"`, `Bearer realm="api", error="invalid_token"`
	for _, tc := range []struct {
		name      string
		method    string
		header    http.Header
		challenge string
		idsCalls  int64
	}{
		{"no header", "GET", nil, noError, 0},
		{"empty header", "GET", http.Header{"Authorization": {""}}, noError, 0},
		{"scheme only", "GET", http.Header{"Authorization": {"Bearer"}}, noError, 0},
		{"scheme and space", "GET", http.Header{"Authorization": {"Bearer "}}, noError, 0},
		{"other scheme", "GET", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, noError, 0},
		{"bearer not first", "GET", http.Header{"Authorization": {"Foo Bearer " + fixtures.RandomToken()}}, noError, 0},
		{"HEAD without token", "HEAD", nil, noError, 0},
		{"malformed token", "GET", bearer("a&b"), invalidToken, 0},
		{"token with a space", "GET", bearer("a b"), invalidToken, 0},
		{"token over max_token_length", "GET", bearer(strings.Repeat("A", 201)), invalidToken, 0},
		{"unknown token", "GET", bearer(fixtures.RandomToken()), invalidToken, 1},
		{"revoked token", "GET", bearer(revoked()), invalidToken, 1},
		{"expired token", "GET", bearer(suite.ids.Issue(fixtures.TokenOptions{Lifetime: time.Nanosecond})), invalidToken, 1},
		{"expired JWT", "GET", bearer(suite.ids.Issue(fixtures.TokenOptions{Fault: fixtures.FaultExpiredJWT})), invalidToken, 1},
		{"200 active false", "GET", bearer(suite.ids.Issue(fixtures.TokenOptions{Fault: fixtures.FaultInactiveJSON})), invalidToken, 1},
		{"plain OPTIONS", "OPTIONS", nil, noError, 0},
		{"OPTIONS with Origin only", "OPTIONS", http.Header{"Origin": {"https://app.example"}}, noError, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r result
			calls := introspectionDelta(func() { r = call(t, client, scDefault, tc.method, tc.header, "") })
			want := body401
			if tc.method == http.MethodHead {
				want = ""
			}
			expectLocal(t, r, http.StatusUnauthorized, want)
			if got := r.header.Values("WWW-Authenticate"); len(got) != 1 || got[0] != tc.challenge {
				t.Errorf("WWW-Authenticate = %q, want [%s]", got, tc.challenge)
			}
			if calls != tc.idsCalls {
				t.Errorf("IdS called %d times, want %d", calls, tc.idsCalls)
			}
		})
	}
}

func revoked() string {
	tok := suite.ids.Issue(fixtures.TokenOptions{})
	suite.ids.Revoke(tok)
	return tok
}

// TestIdSFailures maps every kind of failed introspection to the module's
// statuses (spec §4) without calling the upstream or leaking the IdS's answer.
func TestIdSFailures(t *testing.T) {
	for _, tc := range []struct {
		name     string
		scenario string
		opts     fixtures.TokenOptions
		status   int
	}{
		{"IdS 500", scDefault, fixtures.TokenOptions{Status: 500}, 502},
		{"IdS 503", scDefault, fixtures.TokenOptions{Status: 503}, 503},
		{"IdS 401", scDefault, fixtures.TokenOptions{Status: 401}, 502},
		{"IdS 403", scDefault, fixtures.TokenOptions{Status: 403}, 502},
		{"IdS 404", scDefault, fixtures.TokenOptions{Status: 404}, 502},
		{"IdS 502", scDefault, fixtures.TokenOptions{Status: 502}, 502},
		{"IdS 504", scDefault, fixtures.TokenOptions{Status: 504}, 502},
		{"IdS 400", scDefault, fixtures.TokenOptions{Status: 400}, 500},
		{"IdS 429", scDefault, fixtures.TokenOptions{Status: 429}, 500},
		{"IdS 405", scDefault, fixtures.TokenOptions{Status: 405}, 500},
		{"IdS 201", scDefault, fixtures.TokenOptions{Status: 201}, 500},
		{"IdS 302", scDefault, fixtures.TokenOptions{Status: 302}, 500},
		{"slow IdS (timeout)", scDefault, fixtures.TokenOptions{Fault: fixtures.FaultSlow}, 502},
		{"connection reset", scDefault, fixtures.TokenOptions{Fault: fixtures.FaultReset}, 502},
		{"connection refused", scRefused, fixtures.TokenOptions{}, 502},
		{"empty 200", scDefault, fixtures.TokenOptions{Fault: fixtures.FaultEmpty}, 502},
		{"non-JWT 200", scDefault, fixtures.TokenOptions{Fault: fixtures.FaultNotJWT}, 502},
		{"oversize JWT 200", scDefault, fixtures.TokenOptions{Fault: fixtures.FaultOversize}, 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := suite.ids.Issue(tc.opts)
			start := time.Now()
			r := call(t, client, tc.scenario, http.MethodGet, bearer(tok), "")
			elapsed := time.Since(start)
			expectLocal(t, r, tc.status, body5xx)
			for _, h := range []string{"WWW-Authenticate", "Retry-After", "Location"} {
				if v := r.header.Values(h); len(v) > 0 {
					t.Errorf("%s = %q leaked into the response", h, v)
				}
			}
			if tc.opts.Fault == fixtures.FaultSlow && elapsed >= suite.ids.SlowDelay {
				t.Errorf("answered after %v: the 1s callout timeout did not apply", elapsed)
			}
		})
	}
}

// TestErrorsNotCached: an IdS error is not remembered.
func TestErrorsNotCached(t *testing.T) {
	tok := suite.ids.Issue(fixtures.TokenOptions{Status: 500})
	for range 2 {
		expectLocal(t, call(t, client, scDefault, http.MethodGet, bearer(tok), ""), 502, body5xx)
	}
	if n := len(suite.ids.IntrospectionsOf(tok)); n != 2 {
		t.Errorf("IdS called %d times for two requests, want 2", n)
	}
}

// TestDuplicateAuthorization: two Authorization headers get 400 before any
// introspection.
func TestDuplicateAuthorization(t *testing.T) {
	a, b := suite.ids.Issue(fixtures.TokenOptions{}), suite.ids.Issue(fixtures.TokenOptions{})
	t.Run("net/http", func(t *testing.T) {
		var r result
		calls := introspectionDelta(func() {
			r = call(t, client, scDefault, http.MethodGet, http.Header{"Authorization": {"Bearer " + a, "Bearer " + b}}, "")
		})
		if r.status != http.StatusBadRequest || len(r.upstream) != 0 || calls != 0 {
			t.Errorf("status %d, upstream calls %d, IdS calls %d; want 400, 0, 0 (body %q)", r.status, len(r.upstream), calls, r.body)
		}
	})
	t.Run("raw, differing case", func(t *testing.T) {
		var status int
		calls := introspectionDelta(func() {
			status = rawRequest(t, scDefault, "GET /dup HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer "+a+
				"\r\nauthorization: Bearer "+b+"\r\nConnection: close\r\n\r\n")
		})
		if status != http.StatusBadRequest || calls != 0 || len(suite.echo.Requests("/dup")) != 0 {
			t.Errorf("status %d, IdS calls %d, upstream calls %d; want 400, 0, 0", status, calls, len(suite.echo.Requests("/dup")))
		}
	})
}

// TestCORSPreflight: a preflight has no token and passes unauthenticated
// without an IdS call, unless forward_cors_preflight is false.
func TestCORSPreflight(t *testing.T) {
	preflight := http.Header{"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"POST"}}
	var r result
	calls := introspectionDelta(func() { r = call(t, client, scDefault, http.MethodOptions, preflight, "") })
	if r.status != http.StatusOK || len(r.upstream) != 1 || calls != 0 {
		t.Errorf("preflight: status %d, upstream calls %d, IdS calls %d; want 200, 1, 0", r.status, len(r.upstream), calls)
	}
	t.Run("forward_cors_preflight false", func(t *testing.T) {
		r := call(t, client, scNoCORS, http.MethodOptions, preflight, "")
		expectLocal(t, r, http.StatusUnauthorized, body401)
	})
}

// TestRequiredScopes: a token without a required scope gets 403
// insufficient_scope on every request, cached or not; the challenge
// advertises the configured scopes.
func TestRequiredScopes(t *testing.T) {
	t.Run("no token", func(t *testing.T) {
		r := call(t, client, scScopes, http.MethodGet, nil, "")
		expectLocal(t, r, http.StatusUnauthorized, body401)
		if got, want := r.header.Get("WWW-Authenticate"), `Bearer realm="orders", scope="read write"`; got != want {
			t.Errorf("WWW-Authenticate = %q, want %q", got, want)
		}
	})
	t.Run("missing scope", func(t *testing.T) {
		tok := suite.ids.Issue(fixtures.TokenOptions{Scope: "read"})
		for i := range 2 {
			r := call(t, client, scScopes, http.MethodGet, bearer(tok), "")
			if r.status != http.StatusForbidden || len(r.upstream) != 0 {
				t.Errorf("request %d: status %d, upstream calls %d; want 403, 0", i+1, r.status, len(r.upstream))
			}
			p := challengeParams(r.header.Get("WWW-Authenticate"))
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer ") || p["realm"] != "orders" ||
				p["error"] != "insufficient_scope" || !slices.Contains(strings.Fields(p["scope"]), "write") {
				t.Errorf("request %d: WWW-Authenticate = %q, want realm orders, error insufficient_scope, scope with write",
					i+1, r.header.Get("WWW-Authenticate"))
			}
		}
		if n := len(suite.ids.IntrospectionsOf(tok)); n != 1 {
			t.Errorf("IdS called %d times, want 1 (the second request is a cache hit)", n)
		}
	})
	t.Run("all scopes", func(t *testing.T) {
		tok := suite.ids.Issue(fixtures.TokenOptions{Scope: "read write"})
		if r := call(t, client, scScopes, http.MethodGet, bearer(tok), ""); r.status != http.StatusOK || len(r.upstream) != 1 {
			t.Errorf("status %d, upstream calls %d; want 200, 1", r.status, len(r.upstream))
		}
	})
}

// TestCacheAcrossWorkers: 100 requests on new connections, spread over both
// workers, cost one introspection: the cache is shared between worker VMs.
func TestCacheAcrossWorkers(t *testing.T) {
	noKeepAlive := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	stat := func(worker int) int {
		n, err := suite.envoy.Counter(testCtx(t), fmt.Sprintf("listener.%s.worker_%d.downstream_cx_total", scDefault, worker))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := []int{stat(0), stat(1)}

	tok := suite.ids.Issue(fixtures.TokenOptions{})
	for i := range 100 {
		r := call(t, noKeepAlive, scDefault, http.MethodGet, bearer(tok), "")
		if r.status != http.StatusOK || len(r.upstream) != 1 {
			t.Fatalf("request %d: status %d, upstream calls %d", i+1, r.status, len(r.upstream))
		}
	}
	if n := len(suite.ids.IntrospectionsOf(tok)); n != 1 {
		t.Errorf("IdS called %d times for 100 requests, want 1", n)
	}
	w0, w1 := stat(0)-before[0], stat(1)-before[1]
	if w0 == 0 || w1 == 0 {
		t.Errorf("connections per worker %d and %d: both workers must serve some", w0, w1)
	}
	t.Logf("connections per worker: %d, %d", w0, w1)
}

// TestCacheFollowsIdS: the IdS's Cache-Control decides, and cache: false
// turns caching off.
func TestCacheFollowsIdS(t *testing.T) {
	requests := func(scenario, tok string, n int) {
		t.Helper()
		for range n {
			if r := call(t, client, scenario, http.MethodGet, bearer(tok), ""); r.status != http.StatusOK {
				t.Fatalf("status %d, body %q", r.status, r.body)
			}
		}
	}
	for _, cc := range []string{"no-store", "no-cache", "max-age=0"} {
		t.Run(cc, func(t *testing.T) {
			tok := suite.ids.Issue(fixtures.TokenOptions{CacheControl: cc})
			requests(scDefault, tok, 3)
			if n := len(suite.ids.IntrospectionsOf(tok)); n != 3 {
				t.Errorf("IdS called %d times for 3 requests, want 3", n)
			}
		})
	}
	t.Run("max-age=1", func(t *testing.T) {
		tok := suite.ids.Issue(fixtures.TokenOptions{MaxAge: time.Second})
		requests(scDefault, tok, 3)
		if n := len(suite.ids.IntrospectionsOf(tok)); n != 1 {
			t.Errorf("IdS called %d times within max-age, want 1", n)
		}
		time.Sleep(1500 * time.Millisecond)
		requests(scDefault, tok, 1)
		if n := len(suite.ids.IntrospectionsOf(tok)); n != 2 {
			t.Errorf("IdS called %d times after max-age, want 2", n)
		}
	})
	t.Run("JWT exp bounds max-age", func(t *testing.T) {
		// The IdS allows an hour of caching, but the JWT expires in 2s.
		tok := suite.ids.Issue(fixtures.TokenOptions{Lifetime: 2 * time.Second, MaxAge: time.Hour})
		requests(scDefault, tok, 1)
		time.Sleep(2500 * time.Millisecond)
		r := call(t, client, scDefault, http.MethodGet, bearer(tok), "")
		expectLocal(t, r, http.StatusUnauthorized, body401)
	})
	t.Run("cache false", func(t *testing.T) {
		tok := suite.ids.Issue(fixtures.TokenOptions{})
		requests(scEnv, tok, 2)
		if n := len(suite.ids.IntrospectionsOf(tok)); n != 2 {
			t.Errorf("IdS called %d times for 2 requests, want 2", n)
		}
	})
}

// TestCacheScopedToClient: configurations with another client never share
// cached answers.
func TestCacheScopedToClient(t *testing.T) {
	tok := suite.ids.Issue(fixtures.TokenOptions{})
	for _, sc := range []string{scDefault, scDefault, scSpecial, scSpecial} {
		if r := call(t, client, sc, http.MethodGet, bearer(tok), ""); r.status != http.StatusOK {
			t.Fatalf("%s: status %d, body %q", sc, r.status, r.body)
		}
	}
	if n := len(suite.ids.IntrospectionsOf(tok)); n != 2 {
		t.Errorf("IdS called %d times, want 2: one per client", n)
	}
}

// TestUpstreamHeader: with upstream_header x-jwt (and the secret from a VM
// environment variable) the JWT replaces every client copy of x-jwt.
func TestUpstreamHeader(t *testing.T) {
	tok := suite.ids.Issue(fixtures.TokenOptions{})
	h := bearer(tok)
	h["X-Jwt"] = []string{"forged.jwt.one", "forged.jwt.two"}
	r := call(t, client, scEnv, http.MethodGet, h, "")
	if r.status != http.StatusOK || len(r.upstream) != 1 {
		t.Fatalf("status %d, upstream calls %d, body %q", r.status, len(r.upstream), r.body)
	}
	if got := r.upstream[0].Header.Values("X-Jwt"); len(got) != 1 || got[0] != suite.ids.JWTOf(tok) {
		t.Errorf("upstream X-Jwt = %q, want exactly the IdS's JWT", got)
	}
}

// TestClientCredentialsEncoding: an id and secret with ' ', '+', '%', '/', ':'
// are form-encoded in the Basic header.
func TestClientCredentialsEncoding(t *testing.T) {
	tok := suite.ids.Issue(fixtures.TokenOptions{})
	if r := call(t, client, scSpecial, http.MethodGet, bearer(tok), ""); r.status != http.StatusOK || len(r.upstream) != 1 {
		t.Errorf("status %d, upstream calls %d, body %q; want 200, 1", r.status, len(r.upstream), r.body)
	}
}

// TestDisabled: "enabled": false lets requests through untouched.
func TestDisabled(t *testing.T) {
	var r result
	calls := introspectionDelta(func() { r = call(t, client, scDisabled, http.MethodGet, nil, "") })
	if r.status != http.StatusOK || len(r.upstream) != 1 || calls != 0 {
		t.Errorf("status %d, upstream calls %d, IdS calls %d; want 200, 1, 0", r.status, len(r.upstream), calls)
	}
}

// TestRFC9701OIDCProvider runs against node oidc-provider: RFC 9701 answers,
// which oidc-provider marks no-store, so the cache relies on cache_max_ttl. A
// revoked token is refused once the cached answer expires.
func TestRFC9701OIDCProvider(t *testing.T) {
	tok, err := suite.oidc.ClientCredentials(testCtx(t), "read")
	if err != nil {
		t.Fatal(err)
	}
	remember(tok)
	introspections := func() int {
		n, err := suite.envoy.Counter(testCtx(t), "cluster.oidc.upstream_rq_total")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := introspections()
	var r result
	for i := range 2 {
		r = call(t, client, scRFC9701, http.MethodGet, bearer(tok), "")
		if r.status != http.StatusOK || len(r.upstream) != 1 {
			t.Fatalf("request %d: status %d, upstream calls %d, body %q; want 200, 1", i+1, r.status, len(r.upstream), r.body)
		}
	}
	if n := introspections() - before; n != 1 {
		t.Errorf("%d introspections for 2 requests, want 1: the no-store answer is cached with cache_ignore_cache_control", n)
	}
	auth := r.upstream[0].Header.Values("Authorization")
	if len(auth) != 1 || !strings.HasPrefix(auth[0], "Bearer ") {
		t.Fatalf("upstream Authorization = %q", auth)
	}
	jwt := strings.TrimPrefix(auth[0], "Bearer ")
	remember(jwt)
	claims, err := fixtures.JWTPayload(jwt)
	if err != nil {
		t.Fatalf("upstream got %q, not a JWT: %v", jwt, err)
	}
	if ti, _ := claims["token_introspection"].(map[string]any); ti["active"] != true || ti["client_id"] != "app" {
		t.Errorf("JWT token_introspection = %v, want active for client app", claims["token_introspection"])
	}

	if err := suite.oidc.Revoke(testCtx(t), tok); err != nil {
		t.Fatal(err)
	}
	revokedAt := time.Now()
	deadline := revokedAt.Add(rfc9701MaxTTL + 2*time.Second)
	for first := true; ; first = false {
		r = call(t, client, scRFC9701, http.MethodGet, bearer(tok), "")
		if r.status == http.StatusUnauthorized {
			if first && time.Since(revokedAt) < rfc9701MaxTTL/2 {
				t.Errorf("refused at once after revocation: the cached answer was not used")
			}
			break
		}
		if r.status != http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("%v after revocation: status %d, want 401 within cache_max_ttl (%v) + 2s", time.Since(revokedAt), r.status, rfc9701MaxTTL)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("refused %v after revocation", time.Since(revokedAt).Round(10*time.Millisecond))
	expectLocal(t, r, http.StatusUnauthorized, body401)
	if got, want := r.header.Get("WWW-Authenticate"), `Bearer realm="api", error="invalid_token"`; got != want {
		t.Errorf("WWW-Authenticate = %q, want %q", got, want)
	}
	if r = call(t, client, scRFC9701, http.MethodGet, bearer(tok), ""); r.status != http.StatusUnauthorized {
		t.Errorf("next request: status %d, want 401", r.status)
	}
}

// TestNoSecretsInLog reads Envoy's log at wasm:debug, after the tests above
// (Go runs a file's tests in order) and after a request of its own: no token,
// JWT or client secret may appear in it.
func TestNoSecretsInLog(t *testing.T) {
	tok := suite.ids.Issue(fixtures.TokenOptions{})
	if r := call(t, client, scDefault, http.MethodGet, bearer(tok), ""); r.status != http.StatusOK {
		t.Fatalf("status %d", r.status)
	}
	checkNoSecretsInLog(t)
}

// checkNoSecretsInLog fails when Envoy's log holds a token, JWT or secret
// that the fixtures handed out or the tests remembered.
func checkNoSecretsInLog(t *testing.T) {
	t.Helper()
	log, err := suite.envoy.Log()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log, "wasm log") {
		t.Fatalf("the log has no wasm log lines; is wasm:debug on?")
	}
	suite.mu.Lock()
	secrets := append(suite.ids.Secrets(), suite.secrets...)
	suite.mu.Unlock()
	lines := strings.Split(log, "\n")
	for _, s := range secrets {
		for i, line := range lines {
			if strings.Contains(line, s) {
				t.Errorf("log line %d contains a secret (%.12s…): %.300s", i+1, s, line)
				break
			}
		}
	}
	t.Logf("checked %d secrets against %d log lines", len(secrets), len(lines))
}
