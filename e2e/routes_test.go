package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
	"github.com/phantom-token/envoy-phantom-token/e2e/harness"
)

// Route rules, route metadata and claim headers (spec sections 7 and 8) in
// one Envoy: Envoy's route matcher picks the route, after normalize_path,
// merge_slashes and the refusal of encoded slashes (harness.Scenario.Routes);
// the filter applies that route's policy.
const (
	scRoutes   = "routes"               // rules, route metadata, two identity servers, claim headers
	scRejectCH = "reject-claim-headers" // reject_claim_headers, virtual host metadata, bad metadata
)

// phantomMeta is route or virtual host metadata under the filter's namespace.
func phantomMeta(keys map[string]any) map[string]any {
	return map[string]any{"phantom_token": keys}
}

func claimHeader(claim, header string) map[string]any {
	return map[string]any{"claim": claim, "header": header}
}

// topClaimHeaders are the claim headers of both route scenarios' top level.
func topClaimHeaders() []any {
	return []any{
		claimHeader("sub", "x-user"),
		claimHeader("scope", "x-scope"),
		claimHeader("tenant", "x-tenant"), // no JWT of the fixtures has it
		claimHeader("exp", "x-token-exp"), // a number
	}
}

// routesScenario: the Go IdS at the top level, which authenticates with realm
// "gateway"; rules for a public route, two routes with their own realm and
// required scopes (one selected by a name prefix), and a route whose identity
// server is node oidc-provider; a route configured by its metadata alone; a
// route where Envoy turns the filter off; a named and an unnamed route no rule
// names. Every route but the partner's gets the top-level claim headers.
func routesScenario() harness.Scenario {
	return harness.Scenario{
		Name: scRoutes,
		Plugin: plugin(map[string]any{
			"realm":                      "gateway",
			"cache_ignore_cache_control": true, // oidc-provider marks every answer no-store
			"route_metadata":             true,
			"claim_headers":              topClaimHeaders(),
			"routes": []any{
				map[string]any{"route": "public", "enabled": false},
				map[string]any{"route": "orders", "realm": "orders", "scopes": "orders:read", "required_scopes": "orders:read"},
				map[string]any{"route_prefix": "admin-", "realm": "admin", "required_scopes": []string{"admin"}},
				map[string]any{
					"route": "partner", "realm": "partner",
					"introspection_url": suite.oidc.URL + fixtures.OIDCIntrospectionPath,
					"cluster":           "oidc",
					"client_id":         "gateway",
					"client_secret":     suite.oidc.GatewaySecret,
					"response_type":     "application/token-introspection+jwt",
					"claim_headers":     []any{claimHeader("client_id", "x-client")},
				},
			},
		}),
		Routes: []harness.Route{
			{Name: "public", Prefix: "/public"}, // case-sensitive, Envoy's default
			{Name: "orders", Prefix: "/orders"},
			{Name: "admin-api", Prefix: "/admin", CaseInsensitive: true},
			{Name: "partner", Prefix: "/partner"},
			{Name: "reports", Prefix: "/reports", Metadata: phantomMeta(map[string]any{
				"realm": "reports", "required_scopes": []string{"reports"},
			})},
			{Name: "static", Prefix: "/static", FilterDisabled: true},
			{Name: "misc", Prefix: "/misc"},
			{Prefix: "/"},
		},
	}
}

// rejectClaimHeadersScenario: reject_claim_headers; the virtual host's
// metadata sets the realm of every route, a route's metadata overrides it and
// a rule's; two routes carry metadata that does not parse.
func rejectClaimHeadersScenario() harness.Scenario {
	return harness.Scenario{
		Name: scRejectCH,
		Plugin: plugin(map[string]any{
			"reject_claim_headers": true,
			"claim_headers":        topClaimHeaders(),
			"route_metadata":       true,
			"routes": []any{
				map[string]any{"route": "open", "enabled": false},
				map[string]any{"route": "layered", "realm": "rule", "required_scopes": "orders:write"},
			},
		}),
		VirtualHostMetadata: phantomMeta(map[string]any{"realm": "vhost"}),
		Routes: []harness.Route{
			{Name: "open", Prefix: "/open"},
			{Name: "layered", Prefix: "/layered", Metadata: phantomMeta(map[string]any{"realm": "route", "scopes": "a b"})},
			{Name: "bad-type", Prefix: "/bad-type", Metadata: phantomMeta(map[string]any{"realm": 42})},
			{Name: "bad-key", Prefix: "/bad-key", Metadata: phantomMeta(map[string]any{"no_such_key": "x"})},
			{Prefix: "/"},
		},
	}
}

// routeClaimHeaders are the claim headers of the route scenarios.
var routeClaimHeaders = []string{"X-User", "X-Scope", "X-Tenant", "X-Token-Exp", "X-Client"}

const forgedValue = "forged"

// forgedClaimHeaders are the client's copies of the claim headers that every
// request of TestRoutes carries; two of X-User, to show every copy goes.
func forgedClaimHeaders() http.Header {
	h := http.Header{}
	for _, name := range routeClaimHeaders {
		h[name] = []string{forgedValue}
	}
	h["X-User"] = []string{forgedValue, forgedValue + "-2"}
	return h
}

// upstreamView is what the upstream must receive.
type upstreamView int

const (
	// nothing: the upstream is not called.
	nothing upstreamView = iota
	// asSent: the client's Authorization (or none) unchanged, and no claim
	// header: the filter stripped the forged copies.
	asSent
	// goJWT: the Go IdS's JWT, and the top-level claim headers from it:
	// x-user, x-scope, x-token-exp; x-tenant absent (no such claim).
	goJWT
	// oidcJWT: oidc-provider's RFC 9701 JWT, and only the partner rule's
	// claim header, x-client.
	oidcJWT
	// unfiltered: the filter did not run; the forged copies arrive.
	unfiltered
)

// routeRow is one request, written raw so that Envoy gets its target exactly
// as given (Go's client would clean the path).
type routeRow struct {
	name   string
	method string // GET when empty
	target string // %[1]s is a part unique to the row
	token  func(t *testing.T) string
	header http.Header // further request headers

	status    int
	challenge string // the exact WWW-Authenticate; "" for none
	body      string // the exact body, checked when not empty
	goCalls   int64  // introspections at the Go IdS
	oidcCalls int    // introspections at oidc-provider
	upstream  string // the path the upstream gets (%[1]s as in target); "" for none
	view      upstreamView
}

// goToken issues a fresh token of the Go IdS with scope.
func goToken(scope string) func(*testing.T) string {
	return func(*testing.T) string { return suite.ids.Issue(fixtures.TokenOptions{Scope: scope}) }
}

// oidcToken gets a fresh token of oidc-provider, scope "read".
func oidcToken(t *testing.T) string {
	tok, err := suite.oidc.ClientCredentials(testCtx(t), "read")
	if err != nil {
		t.Fatal(err)
	}
	remember(tok)
	return tok
}

// unknownToken is well-formed and known to no identity server.
func unknownToken(*testing.T) string { return fixtures.RandomToken() }

// TestRoutes: each route gets its own policy, chosen by the route Envoy's
// matcher gives the request: the realm and scopes of its challenge, the
// identity server asked, and what the upstream receives (the JWT and the claim
// headers; a forged copy of a claim header never). Path tricks reach the
// route of the path Envoy normalised, never the public one.
func TestRoutes(t *testing.T) {
	const (
		orders401  = `Bearer realm="orders", scope="orders:read"`
		orders403  = `Bearer realm="orders", scope="orders:read", error="insufficient_scope"`
		admin401   = `Bearer realm="admin", scope="admin"`
		admin403   = `Bearer realm="admin", scope="admin", error="insufficient_scope"`
		gateway401 = `Bearer realm="gateway"`
	)
	preflight := http.Header{"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"POST"}}
	runRouteRows(t, scRoutes, true, []routeRow{
		// Policies.
		{name: "public route, no token: forwarded, no call, forged claim headers stripped",
			target: "/public/%[1]s", status: 200, upstream: "/public/%[1]s", view: asSent},
		{name: "public route, unknown token: forwarded untouched, no call",
			target: "/public/%[1]s", token: unknownToken, status: 200, upstream: "/public/%[1]s", view: asSent},
		{name: "orders, no token: 401 with the orders realm and scope",
			target: "/orders/%[1]s", status: 401, challenge: orders401, body: body401},
		{name: "orders, unknown token: 401 invalid_token after a call to the Go IdS",
			target: "/orders/%[1]s", token: unknownToken, status: 401, challenge: `Bearer realm="orders", scope="orders:read", error="invalid_token"`, goCalls: 1},
		{name: "orders, token without orders:read: 403",
			target: "/orders/%[1]s", token: goToken("read"), status: 403, challenge: orders403, goCalls: 1},
		{name: "orders, token with orders:read: JWT and claim headers upstream",
			target: "/orders/%[1]s", token: goToken("orders:read"), status: 200, goCalls: 1, upstream: "/orders/%[1]s", view: goJWT},
		{name: "orders, CORS preflight: forwarded, no call, forged claim headers stripped",
			method: http.MethodOptions, target: "/orders/%[1]s", header: preflight, status: 200, upstream: "/orders/%[1]s", view: asSent},
		{name: "admin (rule by route-name prefix), no token: 401 with the admin realm and scope",
			target: "/admin/%[1]s", status: 401, challenge: admin401},
		{name: "admin, token with orders:read: 403 with the admin scope",
			target: "/admin/%[1]s", token: goToken("orders:read"), status: 403, challenge: admin403, goCalls: 1},
		{name: "admin, token with admin: 200",
			target: "/admin/%[1]s", token: goToken("admin"), status: 200, goCalls: 1, upstream: "/admin/%[1]s", view: goJWT},
		{name: "partner, no token: 401 with the partner realm, no call",
			target: "/partner/%[1]s", status: 401, challenge: `Bearer realm="partner"`},
		{name: "partner, oidc-provider token: oidc-provider asked, RFC 9701 JWT and the rule's claim header upstream",
			target: "/partner/%[1]s", token: oidcToken, status: 200, oidcCalls: 1, upstream: "/partner/%[1]s", view: oidcJWT},
		{name: "partner, Go IdS token: oidc-provider asked, not the Go IdS; 401",
			target: "/partner/%[1]s", token: goToken("orders:read"), status: 401, challenge: `Bearer realm="partner", error="invalid_token"`, oidcCalls: 1},
		{name: "orders, oidc-provider token: the Go IdS asked, not oidc-provider; 401",
			target: "/orders/%[1]s", token: oidcToken, status: 401, challenge: `Bearer realm="orders", scope="orders:read", error="invalid_token"`, goCalls: 1},
		{name: "reports (route metadata only), no token: 401 with the metadata's realm and scope",
			target: "/reports/%[1]s", status: 401, challenge: `Bearer realm="reports", scope="reports"`},
		{name: "reports, token without reports: 403",
			target: "/reports/%[1]s", token: goToken("read"), status: 403, challenge: `Bearer realm="reports", scope="reports", error="insufficient_scope"`, goCalls: 1},
		{name: "reports, token with reports: 200",
			target: "/reports/%[1]s", token: goToken("reports read"), status: 200, goCalls: 1, upstream: "/reports/%[1]s", view: goJWT},
		{name: "named route no rule names: the top-level policy authenticates",
			target: "/misc/%[1]s", status: 401, challenge: gateway401},
		{name: "named route no rule names, valid token: 200",
			target: "/misc/%[1]s", token: goToken("read"), status: 200, goCalls: 1, upstream: "/misc/%[1]s", view: goJWT},
		{name: "unnamed route: the top-level policy authenticates",
			target: "/other/%[1]s", status: 401, challenge: gateway401},
		// Envoy's per-route disabled means the filter never sees the request,
		// so it cannot strip claim headers there: a public route of a
		// configuration with claim_headers needs a rule "enabled": false.
		{name: "route where Envoy disables the filter: no call, forged claim headers arrive",
			target: "/static/%[1]s", status: 200, upstream: "/static/%[1]s", view: unfiltered},

		// Path tricks: the policy is the one of the route Envoy serves.
		{name: "/public/../admin is admin", target: "/public/../admin/%[1]s", status: 401, challenge: admin401},
		{name: "/public/./../admin is admin", target: "/public/./../admin/%[1]s", status: 401, challenge: admin401},
		{name: "/public/%2e%2e/admin is admin", target: "/public/%%2e%%2e/admin/%[1]s", status: 401, challenge: admin401},
		{name: `/public\..\admin is admin`, target: `/public\..\admin/%[1]s`, status: 401, challenge: admin401},
		{name: "/public/..;/admin is admin", target: "/public/..;/admin/%[1]s", status: 401, challenge: admin401},
		{name: "//admin is admin", target: "//admin/%[1]s", status: 401, challenge: admin401},
		// Envoy resolves dot segments before it merges slashes: ".." takes
		// back the empty segment, and the upstream gets the path matched.
		{name: "/public//../admin is /public/admin: public, and so is the upstream's path",
			target: "/public//../admin/%[1]s", status: 200, upstream: "/public/admin/%[1]s", view: asSent},
		{name: "absolute form http://host/public/../admin is admin", target: "http://routes/public/../admin/%[1]s", status: 401, challenge: admin401},
		{name: "/ADMIN is admin (case-insensitive match)", target: "/ADMIN/%[1]s", status: 401, challenge: admin401},
		{name: "/PUBLIC is not public (case-sensitive match): the top-level policy", target: "/PUBLIC/%[1]s", status: 401, challenge: gateway401},
		{name: "/%2Fadmin: Envoy refuses it (400), nothing reaches the filter", target: "/%%2Fadmin/%[1]s", status: 400},
		{name: "/public%2F..%2Fadmin: Envoy refuses it (400)", target: "/public%%2F..%%2Fadmin/%[1]s", status: 400},
		{name: "/public%2f..%2fadmin: Envoy refuses it (400)", target: "/public%%2f..%%2fadmin/%[1]s", status: 400},
		{name: "/public%5C..%5Cadmin: Envoy refuses it (400)", target: "/public%%5C..%%5Cadmin/%[1]s", status: 400},
		{name: "/public/../orders with an orders token: the upstream gets /orders",
			target: "/public/../orders/%[1]s", token: goToken("orders:read"), status: 200, goCalls: 1, upstream: "/orders/%[1]s", view: goJWT},
		{name: "/admin/../public is public: the upstream gets /public",
			target: "/admin/../public/%[1]s", status: 200, upstream: "/public/%[1]s", view: asSent},
	})
}

// TestRoutesRejectClaimHeaders: with reject_claim_headers a request carrying a
// claim header gets 400 before anything else, on every route; metadata layers
// on the rules (virtual host, then route); metadata that does not parse
// answers 500.
func TestRoutesRejectClaimHeaders(t *testing.T) {
	forgedUser := http.Header{"X-User": {forgedValue}}
	// The claim headers are judged before the route's policy: the 400 has the
	// top-level realm (the default).
	const challenge400 = `Bearer realm="api", error="invalid_request"`
	runRouteRows(t, scRejectCH, false, []routeRow{
		{name: "no claim header, valid token: 200 with the claim header from the JWT",
			target: "/any/%[1]s", token: goToken("read"), status: 200, goCalls: 1, upstream: "/any/%[1]s", view: goJWT},
		{name: "claim header with a valid token: 400, no call",
			target: "/any/%[1]s", token: goToken("read"), header: forgedUser, status: 400, challenge: challenge400, body: bodyInvalidRequest},
		{name: "claim header in another case, no token: 400 before the 401",
			target: "/any/%[1]s", header: http.Header{"x-TOKEN-exp": {"1"}}, status: 400, challenge: challenge400, body: bodyInvalidRequest},
		{name: "claim header, empty value: 400",
			target: "/any/%[1]s", header: http.Header{"X-Tenant": {""}}, status: 400, challenge: challenge400, body: bodyInvalidRequest},
		{name: "claim header on a public route: 400",
			target: "/open/%[1]s", header: forgedUser, status: 400, challenge: challenge400, body: bodyInvalidRequest},
		{name: "public route without a claim header: forwarded, no call",
			target: "/open/%[1]s", status: 200, upstream: "/open/%[1]s", view: asSent},
		{name: "virtual host metadata sets the realm",
			target: "/any/%[1]s", status: 401, challenge: `Bearer realm="vhost"`},
		{name: "route metadata over the virtual host's and the rule's; the rule's required scope stays",
			target: "/layered/%[1]s", status: 401, challenge: `Bearer realm="route", scope="a b"`},
		{name: "layered route, token without the rule's required scope: 403",
			target: "/layered/%[1]s", token: goToken("read"), status: 403, challenge: `Bearer realm="route", scope="orders:write", error="insufficient_scope"`, goCalls: 1},
		{name: "route metadata of a wrong type: 500, no call",
			target: "/bad-type/%[1]s", token: goToken("read"), status: 500, body: body5xx},
		{name: "route metadata with an unknown key: 500, no call",
			target: "/bad-key/%[1]s", token: goToken("read"), status: 500, body: body5xx},
	})
}

// bodyInvalidRequest is the body of the filter's 400.
const bodyInvalidRequest = `{"code":"invalid_request","message":"The request is malformed"}`

// TestRoutesShareOneServer: routes of one identity server share its cached
// answers and each checks its own required scopes on a cache hit; a route
// with another identity server never gets an answer of the first.
func TestRoutesShareOneServer(t *testing.T) {
	tok := goToken("orders:read")(t)
	oidcTok := oidcToken(t)
	for _, step := range []struct {
		name      string
		target    string
		token     string
		status    int
		goCalls   int64
		oidcCalls int
	}{
		{"orders: introspected", "/orders/%[1]s", tok, 200, 1, 0},
		{"admin: a cache hit, refused for its own scope", "/admin/%[1]s", tok, 403, 0, 0},
		{"misc: a cache hit", "/misc/%[1]s", tok, 200, 0, 0},
		{"partner: oidc-provider asked, inactive there", "/partner/%[1]s", tok, 401, 0, 1},
		{"partner, oidc-provider token: introspected", "/partner/%[1]s", oidcTok, 200, 0, 1},
		{"partner, again: a cache hit", "/partner/%[1]s", oidcTok, 200, 0, 0},
		{"orders, oidc-provider token: the Go IdS asked, inactive there", "/orders/%[1]s", oidcTok, 401, 1, 0},
	} {
		r := sendRouteRow(t, scRoutes, routeRow{target: step.target, token: func(*testing.T) string { return step.token }})
		if r.status != step.status || r.goCalls != step.goCalls || r.oidcCalls != step.oidcCalls {
			t.Errorf("%s: status %d, Go IdS calls %d, oidc-provider calls %d; want %d, %d, %d",
				step.name, r.status, r.goCalls, r.oidcCalls, step.status, step.goCalls, step.oidcCalls)
		}
	}
}

// TestRoutesNoSecretsInLog: after the route tests (Go runs the files in
// order, and TestNoSecretsInLog's ran before), their tokens, JWTs and
// secrets are not in Envoy's log either.
func TestRoutesNoSecretsInLog(t *testing.T) {
	checkNoSecretsInLog(t)
}

func runRouteRows(t *testing.T, scenario string, forgeAll bool, rows []routeRow) {
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			if forgeAll {
				h := http.Header{}
				for k, v := range row.header {
					h[k] = v
				}
				for k, v := range forgedClaimHeaders() {
					h[k] = v
				}
				row.header = h
			}
			r := sendRouteRow(t, scenario, row)
			checkRouteRow(t, row, r)
		})
	}
}

// routeResult is what a routeRow's request got.
type routeResult struct {
	status    int
	header    http.Header
	body      string
	goCalls   int64
	oidcCalls int
	upstream  []fixtures.Request // the upstream requests whose path holds the row's part
	token     string
	part      string
}

// sendRouteRow writes the row's request on a new connection and counts the
// introspections it caused at each identity server (the tests run one at a
// time).
func sendRouteRow(t *testing.T, scenario string, row routeRow) routeResult {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	r := routeResult{part: hex.EncodeToString(b)}
	header := http.Header{}
	for k, v := range row.header {
		header[k] = v
	}
	if row.token != nil {
		r.token = row.token(t)
		header["Authorization"] = []string{"Bearer " + r.token}
	}
	method := row.method
	if method == "" {
		method = http.MethodGet
	}
	oidcBefore := oidcIntrospections(t)
	r.goCalls = introspectionDelta(func() {
		r.status, r.header, r.body = rawExchange(t, scenario, method, fmt.Sprintf(row.target, r.part), header)
	})
	r.oidcCalls = oidcIntrospections(t) - oidcBefore
	for _, req := range suite.echo.Requests("") {
		if strings.Contains(req.Path, r.part) {
			r.upstream = append(r.upstream, req)
		}
	}
	return r
}

func checkRouteRow(t *testing.T, row routeRow, r routeResult) {
	t.Helper()
	if r.status != row.status {
		t.Errorf("status %d, want %d (body %s)", r.status, row.status, shown(r.body))
	}
	if got := r.header.Values("Www-Authenticate"); row.challenge == "" && len(got) != 0 || row.challenge != "" && (len(got) != 1 || got[0] != row.challenge) {
		t.Errorf("WWW-Authenticate %q, want %q", got, row.challenge)
	}
	if row.body != "" && r.body != row.body {
		t.Errorf("body %s, want %q", shown(r.body), row.body)
	}
	if r.goCalls != row.goCalls || r.oidcCalls != row.oidcCalls {
		t.Errorf("introspections: Go IdS %d, oidc-provider %d; want %d, %d", r.goCalls, r.oidcCalls, row.goCalls, row.oidcCalls)
	}
	if (row.upstream == "") != (row.view == nothing) {
		t.Fatalf("bad row: upstream %q with view %d", row.upstream, row.view)
	}
	if row.upstream == "" {
		if len(r.upstream) != 0 {
			t.Errorf("the upstream got %d requests, want none", len(r.upstream))
		}
		return
	}
	if len(r.upstream) != 1 {
		t.Fatalf("the upstream got %d requests, want 1", len(r.upstream))
	}
	up := r.upstream[0]
	if want := fmt.Sprintf(row.upstream, r.part); up.Path != want {
		t.Errorf("the upstream got path %q, want %q", up.Path, want)
	}
	wantAuth, wantClaims := expectedUpstream(t, row.view, r, up)
	if got := up.Header.Values("Authorization"); len(wantAuth) != len(got) || len(got) == 1 && got[0] != wantAuth[0] {
		t.Errorf("the upstream got %d Authorization values (%s), want %d (%s)", len(got), prefixes(got), len(wantAuth), prefixes(wantAuth))
	}
	for _, name := range routeClaimHeaders {
		if got, want := up.Header.Values(name), wantClaims[name]; !slices.Equal(got, want) {
			t.Errorf("the upstream got %s %q, want %q", name, got, want)
		}
	}
}

// expectedUpstream is the Authorization (at most one value) and the claim
// headers (absent names must be absent) the upstream must get.
func expectedUpstream(t *testing.T, view upstreamView, r routeResult, up fixtures.Request) (auth []string, claims http.Header) {
	t.Helper()
	claims = http.Header{}
	switch view {
	case asSent, unfiltered:
		if r.token != "" {
			auth = []string{"Bearer " + r.token}
		}
		if view == unfiltered {
			claims = forgedClaimHeaders()
		}
	case goJWT:
		jwt := suite.ids.JWTOf(r.token)
		auth = []string{"Bearer " + jwt}
		payload, err := fixtures.JWTPayload(jwt)
		if err != nil {
			t.Fatalf("the Go IdS's JWT: %v", err)
		}
		exp, _ := payload["exp"].(float64)
		claims.Set("X-User", payload["sub"].(string))
		claims.Set("X-Scope", payload["scope"].(string))
		claims.Set("X-Token-Exp", strconv.FormatFloat(exp, 'f', -1, 64))
	case oidcJWT:
		got := up.Header.Get("Authorization")
		jwt, ok := strings.CutPrefix(got, "Bearer ")
		remember(jwt)
		payload, err := fixtures.JWTPayload(jwt)
		if !ok || err != nil {
			t.Fatalf("the upstream got Authorization %.20q…, not an oidc-provider JWT (%v)", got, err)
		}
		if ti, _ := payload["token_introspection"].(map[string]any); ti["active"] != true || ti["client_id"] != "app" {
			t.Errorf("token_introspection %v, want active for client app", payload["token_introspection"])
		}
		auth = []string{got}
		claims.Set("X-Client", "app")
	}
	return auth, claims
}

// shown is a body for a failure message: the echo upstream's answer holds
// the request's JWT, which a test log must not show either.
func shown(body string) string {
	if strings.Contains(body, "Bearer ") || len(body) > 200 {
		return fmt.Sprintf("of %d bytes, not shown", len(body))
	}
	return strconv.Quote(body)
}

// prefixes are the first characters of credentials, enough to tell them
// apart in a failure message.
func prefixes(values []string) string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = fmt.Sprintf("%.16q…", v)
	}
	return strings.Join(out, ", ")
}

// oidcIntrospections is the number of requests Envoy sent to oidc-provider.
func oidcIntrospections(t *testing.T) int {
	t.Helper()
	n, err := suite.envoy.Counter(testCtx(t), "cluster.oidc.upstream_rq_total")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// rawExchange writes one HTTP/1.1 request, its target verbatim, on a new
// connection to a scenario's listener, and reads the answer.
func rawExchange(t *testing.T, scenario, method, target string, header http.Header) (int, http.Header, string) {
	t.Helper()
	conn := dialScenario(t, scenario, 15*time.Second)
	defer conn.Close()
	var req strings.Builder
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, scenario)
	for name, values := range header {
		for _, v := range values {
			fmt.Fprintf(&req, "%s: %s\r\n", name, v)
		}
	}
	req.WriteString("Connection: close\r\n\r\n")
	if _, err := io.WriteString(conn, req.String()); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, string(body)
}
