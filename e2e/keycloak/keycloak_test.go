package keycloak

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
)

// Body and challenge of the filter's 401 (spec §4).
const (
	body401      = `{"code":"unauthorized_request","message":"Access denied due to missing, invalid or expired credentials"}`
	challenge401 = `Bearer realm="api", error="invalid_token"`
)

var client = &http.Client{
	Timeout:       20 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// result is Envoy's response and what the upstream saw of that request.
type result struct {
	status   int
	header   http.Header
	body     string
	upstream []fixtures.Request
}

// get sends GET with the token as a Bearer credential to a scenario's
// listener, on a path of its own so the upstream requests it caused can be
// told apart.
func get(t *testing.T, scenario, token string) result {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	path := "/" + hex.EncodeToString(b) + "/" + url.PathEscape(strings.ReplaceAll(t.Name(), "/", "."))
	req, err := http.NewRequest(http.MethodGet, suite.envoy.URL(scenario)+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{status: res.StatusCode, header: res.Header, body: string(body), upstream: suite.echo.Requests(path)}
}

// String describes a result for a failure message. A body that came from the
// upstream (the echo, which repeats the request's headers) would show the
// JWT, so only the filter's own answers are shown.
func (r result) String() string {
	if len(r.upstream) > 0 {
		return fmt.Sprintf("status %d, upstream requests %d, body from the upstream (%d bytes, not shown)", r.status, len(r.upstream), len(r.body))
	}
	return fmt.Sprintf("status %d, no upstream request, body %q", r.status, r.body)
}

// upstreamJWT checks that the request reached the upstream once with one
// Authorization: Bearer <jwt> and returns the JWT.
func upstreamJWT(t *testing.T, r result) string {
	t.Helper()
	if r.status != http.StatusOK || len(r.upstream) != 1 {
		t.Fatalf("%v; want status 200 and 1 upstream request", r)
	}
	auth := r.upstream[0].Header.Values("Authorization")
	if len(auth) != 1 || !strings.HasPrefix(auth[0], "Bearer ") {
		t.Fatalf("the upstream got %d Authorization headers, or not a Bearer one", len(auth))
	}
	jwt := strings.TrimPrefix(auth[0], "Bearer ")
	remember(jwt)
	return jwt
}

// expect401 checks the filter's 401 with its challenge and that the upstream
// saw nothing.
func expect401(t *testing.T, r result) {
	t.Helper()
	if r.status != http.StatusUnauthorized || r.body != body401 || len(r.upstream) != 0 {
		t.Errorf("%v; want status 401, no upstream request, body %q", r, body401)
	}
	if got := r.header.Get("WWW-Authenticate"); got != challenge401 {
		t.Errorf("WWW-Authenticate %q, want %q", got, challenge401)
	}
}

// introspections is the number of requests Envoy sent to Keycloak through a
// scenario's cluster: the introspections that scenario made.
func introspections(t *testing.T, scenario string) int {
	t.Helper()
	n, err := suite.envoy.Counter(ctx(t), "cluster."+scenario+".upstream_rq_total")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// token gets a fresh access token for a client of the realm.
func token(t *testing.T, clientID string) string {
	t.Helper()
	tok, err := suite.keycloak.ClientCredentials(ctx(t), clientID)
	if err != nil {
		t.Fatal(err)
	}
	remember(tok)
	return tok
}

// claims decodes a JWT's payload without checking it.
func claims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	c, err := fixtures.JWTPayload(jwt)
	if err != nil {
		t.Fatalf("not a JWT: %v", err)
	}
	return c
}

// expOf is the exp claim of a JWT.
func expOf(t *testing.T, jwt string) time.Time {
	t.Helper()
	exp, ok := claims(t, jwt)["exp"].(float64)
	if !ok {
		t.Fatal("the JWT has no numeric exp")
	}
	return time.Unix(int64(exp), 0)
}

// audience is the aud claim as a list.
func audience(c map[string]any) []string {
	switch aud := c["aud"].(type) {
	case string:
		return []string{aud}
	case []any:
		var out []string
		for _, a := range aud {
			if s, ok := a.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// introspectDirect asks Keycloak itself, as the gateway does, and decodes
// the JSON answer; it returns the Cache-Control header too.
func introspectDirect(t *testing.T, tok string) (answer map[string]any, cacheControl string) {
	t.Helper()
	body, header, err := suite.keycloak.Introspect(ctx(t), gatewayClient, tok, "application/jwt")
	if err != nil {
		t.Fatal(err)
	}
	if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		t.Fatalf("introspection answer is not JSON: %v", err)
	}
	if jwt, ok := answer["jwt"].(string); ok {
		remember(jwt)
	}
	return answer, header.Get("Cache-Control")
}

// TestKeycloakAnswers pins the Keycloak behaviour the filter's configuration
// relies on, asked directly: Accept: application/jwt gets JSON with the full
// token in "jwt" and Cache-Control: no-cache; an out-of-audience token gets
// "active": false, and on 26.7.3 (CVE-2026-18208) still the full token.
func TestKeycloakAnswers(t *testing.T) {
	answer, cc := introspectDirect(t, token(t, appClient))
	if answer["active"] != true {
		t.Errorf("app token: active = %v, want true", answer["active"])
	}
	if jwt, _ := answer["jwt"].(string); strings.Count(jwt, ".") != 2 {
		t.Errorf("app token: the answer has no JWT in \"jwt\"")
	}
	if !strings.Contains(strings.ToLower(cc), "no-cache") {
		t.Errorf("Cache-Control %q, want no-cache (what cache_ignore_cache_control is for)", cc)
	}

	answer, _ = introspectDirect(t, token(t, otherAppClient))
	if answer["active"] != false {
		t.Errorf("other-app token: active = %v, want false (the gateway is not in its audience)", answer["active"])
	}
	if jwt, _ := answer["jwt"].(string); strings.Count(jwt, ".") != 2 {
		t.Errorf("other-app token: no \"jwt\" next to \"active\": false; the CVE-2026-18208 case of TestKeycloakOutOfAudience is not exercised (fixed Keycloak?)")
	} else if c := claims(t, jwt); c["azp"] != otherAppClient {
		t.Errorf("other-app token: the JWT in the inactive answer has azp %v", c["azp"])
	}
}

// TestKeycloakFullJWT: a lightweight token from Keycloak's token endpoint
// reaches the upstream as the full access token, signed by the realm's key.
func TestKeycloakFullJWT(t *testing.T) {
	tok := token(t, appClient)
	light := claims(t, tok)
	// What makes the token lightweight: no audience, no mapped claims.
	for _, claim := range []string{"aud", "department", "preferred_username", "realm_access"} {
		if _, ok := light[claim]; ok {
			t.Errorf("the lightweight token has %q; is client.use.lightweight.access.token.enabled on?", claim)
		}
	}

	r := get(t, scNoCache, tok)
	jwt := upstreamJWT(t, r)
	if jwt == tok {
		t.Fatal("the upstream got the client's token, not the full one")
	}
	full, err := suite.keycloak.VerifyJWT(ctx(t), jwt)
	if err != nil {
		t.Fatalf("the upstream's JWT: %v", err)
	}
	if full["jti"] != light["jti"] || full["iss"] != suite.keycloak.RealmURL() || full["azp"] != appClient {
		t.Errorf("the upstream's JWT is another token: jti %v iss %v azp %v, want jti %v iss %s azp %s",
			full["jti"], full["iss"], full["azp"], light["jti"], suite.keycloak.RealmURL(), appClient)
	}
	if !slices.Contains(audience(full), gatewayClient) {
		t.Errorf("the upstream's JWT has aud %v, want it to include %q", full["aud"], gatewayClient)
	}
	if full["department"] != "orders" || full["preferred_username"] != "service-account-app" {
		t.Errorf("the upstream's JWT lacks the full token's claims: department %v, preferred_username %v",
			full["department"], full["preferred_username"])
	}
	for _, member := range []string{"active", "jwt", "client_id"} {
		if _, ok := full[member]; ok {
			t.Errorf("the upstream's JWT has %q: it is the introspection answer, not the access token", member)
		}
	}
	for name, values := range r.upstream[0].Header {
		for _, v := range values {
			if strings.Contains(v, tok) {
				t.Errorf("the client's lightweight token reached the upstream in %s", name)
			}
		}
	}
}

// TestKeycloakOutOfAudience is CVE-2026-18208: Keycloak answers
// {"active":false,"jwt":"<full token>"} for a token whose audience lacks the
// introspecting client. The filter answers 401 and never uses that JWT.
func TestKeycloakOutOfAudience(t *testing.T) {
	tok := token(t, otherAppClient)
	before := introspections(t, scNoCache)
	for i := range 2 {
		expect401(t, get(t, scNoCache, tok))
		if n := introspections(t, scNoCache) - before; n != i+1 {
			t.Errorf("after request %d: %d introspections, want %d (an inactive answer is never cached)", i+1, n, i+1)
		}
	}
}

// TestKeycloakNoCacheHonoured: with the defaults the filter honours
// Keycloak's Cache-Control: no-cache, so every request introspects.
func TestKeycloakNoCacheHonoured(t *testing.T) {
	tok := token(t, appClient)
	before := introspections(t, scNoCache)
	const requests = 3
	for range requests {
		upstreamJWT(t, get(t, scNoCache, tok))
	}
	if n := introspections(t, scNoCache) - before; n != requests {
		t.Errorf("%d introspections for %d requests, want one each: no-cache must be honoured by default", n, requests)
	}
}

// TestKeycloakExpBoundsCache: with cache_ignore_cache_control the answer is
// cached, and its entry ends expSkew before the JWT's exp (the realm's access
// tokens live 15 s); a request after that introspects again, and a request
// after exp is refused by Keycloak.
func TestKeycloakExpBoundsCache(t *testing.T) {
	tok := token(t, appClient)
	exp := expOf(t, tok)
	if life := time.Until(exp); life > 20*time.Second || life < 8*time.Second {
		t.Fatalf("the token lives %v; realm.json sets accessTokenLifespan 15 s", life.Round(time.Second))
	}
	end := exp.Add(-expSkew)
	before := introspections(t, scExp)
	for range 3 {
		upstreamJWT(t, get(t, scExp, tok))
	}
	if n := introspections(t, scExp) - before; n != 1 {
		t.Fatalf("%d introspections for 3 requests, want 1: the no-cache answer is cached with cache_ignore_cache_control", n)
	}

	time.Sleep(time.Until(end.Add(-1500 * time.Millisecond)))
	upstreamJWT(t, get(t, scExp, tok))
	if n := introspections(t, scExp) - before; n != 1 {
		t.Errorf("1.5 s before exp-%v: %d introspections in all, want still 1", expSkew, n)
	}

	time.Sleep(time.Until(end.Add(500 * time.Millisecond)))
	jwt := upstreamJWT(t, get(t, scExp, tok))
	if n := introspections(t, scExp) - before; n != 2 {
		t.Errorf("0.5 s after exp-%v: %d introspections in all, want 2: the entry must end at exp-%v", expSkew, n, expSkew)
	}
	if !expOf(t, jwt).Equal(exp) {
		t.Errorf("the upstream's JWT expires at %v, the token at %v", expOf(t, jwt), exp)
	}

	time.Sleep(time.Until(exp.Add(1500 * time.Millisecond)))
	expect401(t, get(t, scExp, tok))
	if n := introspections(t, scExp) - before; n != 3 {
		t.Errorf("after exp: %d introspections in all, want 3", n)
	}
}

// TestKeycloakRevoked: a token revoked at Keycloak is served from the cache
// until its entry ends (cache_max_ttl 2s), then refused.
func TestKeycloakRevoked(t *testing.T) {
	tok := token(t, appClient)
	exp := expOf(t, tok)
	before := introspections(t, scRevoke)
	for range 2 {
		upstreamJWT(t, get(t, scRevoke, tok))
	}
	if n := introspections(t, scRevoke) - before; n != 1 {
		t.Errorf("%d introspections for 2 requests, want 1", n)
	}

	if err := suite.keycloak.Revoke(ctx(t), appClient, tok); err != nil {
		t.Fatal(err)
	}
	revokedAt := time.Now()
	if answer, _ := introspectDirect(t, tok); answer["active"] != false {
		t.Fatalf("Keycloak says active = %v after revocation, want false", answer["active"])
	}
	deadline := revokedAt.Add(revokeMaxTTL + 2*time.Second)
	var r result
	for first := true; ; first = false {
		r = get(t, scRevoke, tok)
		if r.status == http.StatusUnauthorized {
			if first && time.Since(revokedAt) < revokeMaxTTL/2 {
				t.Errorf("refused at once after revocation: the cached answer was not used")
			}
			break
		}
		if r.status != http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("%v after revocation: %v; want 401 within cache_max_ttl (%v) + 2s", time.Since(revokedAt), r, revokeMaxTTL)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if time.Now().After(exp) {
		t.Fatalf("refused only after the token's exp: revocation was not what refused it")
	}
	t.Logf("refused %v after revocation", time.Since(revokedAt).Round(10*time.Millisecond))
	expect401(t, r)
}

// TestKeycloakNoSecretsInLog reads Envoy's log at wasm:debug after the tests
// above (Go runs a file's tests in order): no token, JWT or client secret of
// this package may appear in it.
func TestKeycloakNoSecretsInLog(t *testing.T) {
	log, err := suite.envoy.Log()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log, "wasm log") {
		t.Fatal("the log has no wasm log lines; is wasm:debug on?")
	}
	suite.mu.Lock()
	secrets := slices.Clone(suite.secrets)
	suite.mu.Unlock()
	if len(secrets) < 5 {
		t.Fatalf("only %d values to look for; did the tests above run?", len(secrets))
	}
	lines := strings.Split(log, "\n")
	for _, s := range secrets {
		for i, line := range lines {
			if strings.Contains(line, s) {
				t.Errorf("Envoy log line %d contains a token, JWT or secret (%.8s…)", i+1, s)
				break
			}
		}
	}
	t.Logf("checked %d values against %d log lines", len(secrets), len(lines))
}
