package config

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// withRoutes is the minimal configuration with extra top-level keys.
func withRoutes(extra string) string { return `{` + minimal + extra + `}` }

func mustParse(t *testing.T, js string) *Config {
	t.Helper()
	c, err := Parse([]byte(js), env)
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return c
}

func TestRuleSelection(t *testing.T) {
	c := mustParse(t, withRoutes(`,"routes":[`+
		`{"route":"health","enabled":false},`+
		`{"route_prefix":"admin-","realm":"admin"},`+
		`{"route":"admin-special","realm":"special"},`+
		`{"route_prefix":"a","realm":"a-prefix"}]`))
	tests := []struct {
		route     string
		realm     string
		enabled   bool
		isTopHalf bool
	}{
		{"health", "api", false, false},
		{"admin-users", "admin", true, false},
		{"admin-special", "admin", true, false}, // the first rule that matches applies
		{"api", "a-prefix", true, false},
		{"orders", "api", true, true},  // no rule: the top level, which authenticates
		{"", "api", true, true},        // an unnamed route: the top level
		{"Health", "api", true, true},  // names are compared exactly
		{"health2", "api", true, true}, // an exact rule is not a prefix
	}
	for _, tt := range tests {
		got := c.ForRoute(tt.route)
		if got.Realm != tt.realm || got.Enabled != tt.enabled || (got == c) != tt.isTopHalf {
			t.Errorf("route %q: realm %q enabled %v top %v", tt.route, got.Realm, got.Enabled, got == c)
		}
	}
}

func TestRuleOverrides(t *testing.T) {
	top := mustParse(t, withRoutes(`,"scopes":"read","claim_headers":[{"claim":"sub","header":"x-user"}]`))
	tests := []struct {
		name  string
		rule  string
		check func(r, top *Config) bool
	}{
		{"nothing: the top level's values", `{"route":"r"}`, func(r, top *Config) bool {
			r2 := *r
			r2.Routes, r2.ClaimPaths, r2.StripHeaders = top.Routes, top.ClaimPaths, top.StripHeaders
			return reflect.DeepEqual(&r2, top)
		}},
		{"enabled", `{"route":"r","enabled":false}`, func(r, _ *Config) bool { return !r.Enabled }},
		{"realm", `{"route":"r","realm":"orders"}`, func(r, _ *Config) bool { return r.Realm == "orders" }},
		{"scopes", `{"route":"r","scopes":["a","b"]}`, func(r, _ *Config) bool { return reflect.DeepEqual(r.Scopes, []string{"a", "b"}) }},
		{"required scopes", `{"route":"r","required_scopes":"orders:read"}`, func(r, _ *Config) bool {
			return reflect.DeepEqual(r.RequiredScopes, []string{"orders:read"}) && reflect.DeepEqual(r.Scopes, []string{"read"})
		}},
		{"upstream header", `{"route":"r","upstream_header":"X-JWT"}`, func(r, _ *Config) bool { return r.UpstreamHeader == "x-jwt" && !r.ToAuthorization }},
		{"certificate-bound tokens", `{"route":"r","require_certificate_bound":true,"client_certificate_source":"x-forwarded-client-cert"}`, func(r, _ *Config) bool {
			return r.RequireCertificateBound && r.ClientCertificateSource == CertificateFromXFCC
		}},
		{"claim headers replace the top level's", `{"route":"r","claim_headers":[{"claim":"tenant","header":"x-tenant"}]}`, func(r, _ *Config) bool {
			return len(r.ClaimHeaders) == 1 && r.ClaimHeaders[0].Header == "x-tenant" && reflect.DeepEqual(r.ClaimPaths[r.ClaimHeaders[0].Claim], []string{"tenant"})
		}},
		{"no claim headers", `{"route":"r","claim_headers":[]}`, func(r, _ *Config) bool { return len(r.ClaimHeaders) == 0 }},
		{"timeout", `{"route":"r","timeout":"250ms"}`, func(r, top *Config) bool {
			return r.Timeout == 250*time.Millisecond && r.CacheNamespace == top.CacheNamespace
		}},
		{"jwt member: another namespace", `{"route":"r","jwt_member":"jwt"}`, func(r, top *Config) bool {
			return r.JWTMember == "jwt" && r.CacheNamespace != top.CacheNamespace
		}},
		{"response type", `{"route":"r","response_type":"application/token-introspection+jwt"}`, func(r, top *Config) bool {
			return r.ResponseType == ResponseTypeIntrospectionJWT && r.CacheNamespace != top.CacheNamespace
		}},
		{"cluster, same server and client", `{"route":"r","cluster":"other"}`, func(r, top *Config) bool {
			return r.Cluster == "other" && r.ClientSecret == top.ClientSecret && r.CacheNamespace != top.CacheNamespace
		}},
		{"another client of the same server", `{"route":"r","client_id":"c2","client_secret_env":"PHANTOM_SECRET"}`, func(r, top *Config) bool {
			return r.ClientID == "c2" && r.ClientSecret == "from-env" && r.CacheNamespace != top.CacheNamespace
		}},
		{"another identity server, whole", `{"route":"r","introspection_url":"http://partner:3000/token/introspection","cluster":"partner","client_id":"g","client_secret":"p"}`,
			func(r, top *Config) bool {
				return r.Authority == "partner:3000" && r.Path == "/token/introspection" && r.ClientSecret == "p" &&
					r.Timeout == DefaultTimeout && r.ResponseType == ResponseTypeJWT && r.CacheNamespace != top.CacheNamespace &&
					r.Realm == top.Realm && r.MaxInFlight == top.MaxInFlight
			}},
	}
	for _, tt := range tests {
		c := mustParse(t, withRoutes(`,"scopes":"read","claim_headers":[{"claim":"sub","header":"x-user"}],"routes":[`+tt.rule+`]`))
		if r := c.ForRoute("r"); r == c || !tt.check(r, top) {
			t.Errorf("%s: got %+v", tt.name, r)
		}
	}
}

func TestAnotherServerTakesNothingOfTheTopLevels(t *testing.T) {
	c := mustParse(t, withRoutes(`,"timeout":"1s","jwt_member":"jwt","routes":[`+
		`{"route":"a","introspection_url":"http://o/i","cluster":"o","client_id":"g","client_secret":"p"},`+
		`{"route":"b","introspection_url":"http://o/i","cluster":"o","client_id":"g","client_secret":"p","required_scopes":"x"}]`))
	a, b := c.ForRoute("a"), c.ForRoute("b")
	if a.JWTMember != "" || a.Timeout != DefaultTimeout {
		t.Errorf("another server inherited the top level's: member %q timeout %v", a.JWTMember, a.Timeout)
	}
	if a.CacheNamespace != b.CacheNamespace {
		t.Error("two rules naming the same server have different namespaces")
	}
}

func TestRuleErrorsNameTheRule(t *testing.T) {
	tests := []struct {
		name, routes, key, says string
	}{
		{"not an array", `{"route":"a"}`, "routes", "array"},
		{"a rule that is not an object", `["a"]`, "routes[0]", "object"},
		{"no selector", `[{"realm":"x"}]`, "routes[0]", "exactly one"},
		{"both selectors", `[{"route":"a","route_prefix":"a"}]`, "routes[0]", "exactly one"},
		{"empty route", `[{"route":""}]`, "routes[0].route", "non-empty"},
		{"empty prefix", `[{"route_prefix":""}]`, "routes[0].route_prefix", "non-empty"},
		{"route not a string", `[{"route":1}]`, "routes[0].route", "non-empty string"},
		{"a route named twice", `[{"route":"a"},{"route":"b"},{"route":"a"}]`, "routes[2].route", "routes[0]"},
		{"unknown key", `[{"route":"a","realms":"x"}]`, "routes[0].realms", "not a known key"},
		{"a plugin key in a rule", `[{"route":"a","cache_max_ttl":"1s"}]`, "routes[0].cache_max_ttl", "top level"},
		{"rules do not nest", `[{"route":"a","routes":[]}]`, "routes[0].routes", "top level"},
		{"key twice", `[{"route":"a","realm":"x","realm":"y"}]`, "routes[0].realm", "more than once"},
		{"bad scope", `[{"route":"a","required_scopes":"a  b"}]`, "routes[0].required_scopes", "empty scope"},
		{"bad realm", `[{"route":"a","realm":"a\"b"}]`, "routes[0].realm", "quotes"},
		{"bad DPoP mode", `[{"route":"a","dpop":"on"}]`, "routes[0].dpop", "required"},
		{"DPoP alg none", `[{"route":"a","dpop_algs":"ES256 none"}]`, "routes[0].dpop_algs", "algorithms are"},
		{"DPoP alg HS256", `[{"route":"a","dpop_algs":["HS256"]}]`, "routes[0].dpop_algs", "algorithms are"},
		{"DPoP alg RS1, not a JWS alg", `[{"route":"a","dpop_algs":["RS1"]}]`, "routes[0].dpop_algs", "algorithms are"},
		{"DPoP alg Ed25519, a curve, not an alg", `[{"route":"a","dpop_algs":["Ed25519"]}]`, "routes[0].dpop_algs", "algorithms are"},
		{"DPoP window too long", `[{"route":"a","dpop_iat_window":"11m"}]`, "routes[0].dpop_iat_window", "at most"},
		{"DPoP nonce key in a rule", `[{"route":"a","dpop_nonce_secret_env":"DPOP_SECRET"}]`, "routes[0].dpop_nonce_secret_env", "top level"},
		{"bad certificate source", `[{"route":"a","client_certificate_source":"header"}]`, "routes[0].client_certificate_source", "x-forwarded-client-cert"},
		{"certificate requirement not a bool", `[{"route":"a","require_certificate_bound":"yes"}]`, "routes[0].require_certificate_bound", "true or false"},
		{"bad timeout", `[{"route":"a","timeout":"0s"}]`, "routes[0].timeout", "positive duration"},
		{"bad upstream header", `[{"route":"a","upstream_header":"host"}]`, "routes[0].upstream_header", "routes"},
		{"jwt member with RFC 9701", `[{"route":"a","response_type":"application/token-introspection+jwt","jwt_member":"jwt"}]`, "routes[0].jwt_member", "needs"},
		{"another server without a cluster", `[{"route":"a","introspection_url":"http://o/i","client_id":"g","client_secret":"p"}]`, "routes[0].cluster", "required"},
		{"another server without a client", `[{"route":"a","introspection_url":"http://o/i","cluster":"o","client_secret":"p"}]`, "routes[0].client_id", "required"},
		{"another server without a secret", `[{"route":"a","introspection_url":"http://o/i","cluster":"o","client_id":"g"}]`, "routes[0].client_secret", "required"},
		{"another server with a bad URL", `[{"route":"a","introspection_url":"o/i","cluster":"o","client_id":"g","client_secret":"p"}]`, "routes[0].introspection_url", ""},
		{"a client without its secret", `[{"route":"a","client_id":"g"}]`, "routes[0].client_secret", "own secret"},
		{"a secret without its client", `[{"route":"a","client_secret":"p"}]`, "routes[0].client_id", "required"},
		{"a secret from an unset variable", `[{"route":"a","client_id":"g","client_secret_env":"NOPE"}]`, "routes[0].client_secret_env", "not set"},
		{"the 2nd rule", `[{"route":"a"},{"route":"b","enabled":"no"}]`, "routes[1].enabled", "true or false"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(withRoutes(`,"routes":`+tt.routes)), env)
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != tt.key || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%s: error %v, want key %q saying %q", tt.name, err, tt.key, tt.says)
		}
	}
	var rules []string
	for i := range MaxRoutes + 1 {
		rules = append(rules, `{"route":"r`+strconv.Itoa(i)+`"}`)
	}
	if _, err := Parse([]byte(withRoutes(`,"routes":[`+strings.Join(rules, ",")+`]`)), env); err == nil || !strings.Contains(err.Error(), "more than 1000") {
		t.Errorf("1001 rules: %v", err)
	}
	if _, err := Parse([]byte(withRoutes(`,"routes":[`+strings.Join(rules[:MaxRoutes], ",")+`]`)), env); err != nil {
		t.Errorf("1000 rules: %v", err)
	}
}

// A secret pasted where a rule's key goes never reaches the log.
func TestRuleSecretNotShown(t *testing.T) {
	_, err := Parse([]byte(withRoutes(`,"routes":[{"route":"a","client_id":"g","client_secret":"rule-secret","rule-secret":1}]`)), env)
	if err == nil || strings.Contains(err.Error(), "rule-secret") {
		t.Errorf("error %v", err)
	}
}

func TestClaimHeaders(t *testing.T) {
	c := mustParse(t, withRoutes(`,"claim_headers":[{"claim":"sub","header":"X-User"},{"claim":"address.country","header":"x-country"}],`+
		`"routes":[{"route":"a","claim_headers":[{"claim":["https://example.com/claims","tenant"],"header":"x-tenant"},{"claim":"sub","header":"x-sub"}]}]`))
	wantPaths := [][]string{{"sub"}, {"address", "country"}, {"https://example.com/claims", "tenant"}}
	if !reflect.DeepEqual(c.ClaimPaths, wantPaths) {
		t.Errorf("paths %q", c.ClaimPaths)
	}
	if want := []string{"x-user", "x-country", "x-tenant", "x-sub"}; !reflect.DeepEqual(c.StripHeaders, want) {
		t.Errorf("strip %q, want every header of every list", c.StripHeaders)
	}
	if want := []ClaimHeader{{"x-user", 0}, {"x-country", 1}}; !reflect.DeepEqual(c.ClaimHeaders, want) {
		t.Errorf("top %+v", c.ClaimHeaders)
	}
	a := c.ForRoute("a")
	if want := []ClaimHeader{{"x-tenant", 2}, {"x-sub", 0}}; !reflect.DeepEqual(a.ClaimHeaders, want) {
		t.Errorf("rule %+v", a.ClaimHeaders)
	}
	if !reflect.DeepEqual(a.ClaimPaths, c.ClaimPaths) || !reflect.DeepEqual(a.StripHeaders, c.StripHeaders) {
		t.Error("a rule's config does not share the plugin's claim paths and strip list")
	}

	bad := []struct {
		name, list, key, says string
	}{
		{"not an array", `{"claim":"sub","header":"x"}`, "claim_headers", "array"},
		{"entry not an object", `["sub"]`, "claim_headers[0]", "object"},
		{"unknown member", `[{"claim":"sub","header":"x","as":"json"}]`, "claim_headers[0].as", "not a known key"},
		{"no header", `[{"claim":"sub"}]`, "claim_headers[0].header", "string"},
		{"bad header name", `[{"claim":"sub","header":"x user"}]`, "claim_headers[0].header", "header name"},
		{"pseudo-header", `[{"claim":"sub","header":":path"}]`, "claim_headers[0].header", "pseudo"},
		{"hop-by-hop", `[{"claim":"sub","header":"Connection"}]`, "claim_headers[0].header", "hop-by-hop"},
		{"authorization", `[{"claim":"sub","header":"Authorization"}]`, "claim_headers[0].header", "credentials"},
		{"the upstream header", `[{"claim":"sub","header":"x-jwt"}],"upstream_header":"x-jwt"`, "claim_headers", "upstream_header"},
		{"a header twice", `[{"claim":"sub","header":"x"},{"claim":"iss","header":"X"}]`, "claim_headers[1].header", "second time"},
		{"no claim", `[{"header":"x"}]`, "claim_headers[0].claim", "claim name"},
		{"empty claim", `[{"claim":"","header":"x"}]`, "claim_headers[0].claim", "empty name"},
		{"double dot", `[{"claim":"a..b","header":"x"}]`, "claim_headers[0].claim", "empty name"},
		{"empty path", `[{"claim":[],"header":"x"}]`, "claim_headers[0].claim", "1 to 8"},
		{"too deep", `[{"claim":"a.b.c.d.e.f.g.h.i","header":"x"}]`, "claim_headers[0].claim", "1 to 8"},
		{"number in a path", `[{"claim":["a",1],"header":"x"}]`, "claim_headers[0].claim", "claim name"},
	}
	for _, tt := range bad {
		_, err := Parse([]byte(withRoutes(`,"claim_headers":`+tt.list)), env)
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != tt.key || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%s: error %v, want key %q saying %q", tt.name, err, tt.key, tt.says)
		}
	}
	// A rule that moves the JWT into a header the top level's claims use.
	_, err := Parse([]byte(withRoutes(`,"claim_headers":[{"claim":"sub","header":"x-user"}],"routes":[{"route":"a","upstream_header":"x-user"}]`)), env)
	if err == nil || !strings.Contains(err.Error(), `"routes[0].claim_headers"`) {
		t.Errorf("rule with upstream_header = a claim header: %v", err)
	}
}

func TestMetadata(t *testing.T) {
	top := mustParse(t, withRoutes(`,"route_metadata":true,"claim_headers":[{"claim":"sub","header":"x-user"}],"routes":[{"route":"a","realm":"rule","required_scopes":"r"}]`))
	rule := top.ForRoute("a")
	tests := []struct {
		name         string
		vhost, route string
		check        func(*Config) bool
		err          string
	}{
		{"none", ``, ``, func(c *Config) bool { return c == rule }, ""},
		{"virtual host over the rule", `{"realm":"vh"}`, ``, func(c *Config) bool {
			return c.Realm == "vh" && reflect.DeepEqual(c.RequiredScopes, []string{"r"})
		}, ""},
		{"route over the virtual host", `{"realm":"vh","enabled":false}`, `{"realm":"rt"}`, func(c *Config) bool { return c.Realm == "rt" && !c.Enabled }, ""},
		{"every policy key", ``, `{"enabled":true,"realm":"x","scopes":["a"],"required_scopes":"b c","upstream_header":"x-jwt"}`, func(c *Config) bool {
			return c.Realm == "x" && reflect.DeepEqual(c.RequiredScopes, []string{"b", "c"}) && c.UpstreamHeader == "x-jwt" &&
				c.CacheNamespace == rule.CacheNamespace && len(c.ClaimHeaders) == 1
		}, ""},
		{"an identity server is refused", ``, `{"cluster":"other"}`, nil, `invalid route metadata: "cluster" is not a known key in route metadata`},
		{"credentials are refused", ``, `{"client_secret":"x"}`, nil, `"client_secret" is not a known key`},
		{"claim headers are refused", `{"claim_headers":[]}`, ``, nil, `invalid virtual host metadata: "claim_headers" is not a known key`},
		{"plugin keys are refused", ``, `{"cache":false}`, nil, `"cache" is not a known key`},
		{"bad value", ``, `{"required_scopes":1}`, nil, `invalid route metadata: "required_scopes" must be a string or an array`},
		{"not an object", ``, `[1]`, nil, `invalid route metadata: must be a JSON object`},
		{"upstream header equal to a claim header", ``, `{"upstream_header":"x-user"}`, nil, `"claim_headers" names "x-user"`},
	}
	for _, tt := range tests {
		var vh, rt []byte
		if tt.vhost != "" {
			vh = []byte(tt.vhost)
		}
		if tt.route != "" {
			rt = []byte(tt.route)
		}
		c, err := WithMetadata(rule, vh, rt)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want %q", tt.name, err, tt.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case !tt.check(c):
			t.Errorf("%s: got %+v", tt.name, c)
		}
	}
	if rule.Realm != "rule" {
		t.Error("metadata changed the rule's configuration")
	}
}

// asJSON is a decode for the resolver that takes the metadata as JSON
// already; "!" is metadata that cannot be read.
func asJSON(raw []byte) ([]byte, bool, error) {
	if string(raw) == "!" {
		return nil, false, errors.New("truncated")
	}
	return raw, true, nil
}

func TestResolver(t *testing.T) {
	if NewResolver(mustParse(t, withRoutes(``)), asJSON) != nil {
		t.Error("a resolver for a configuration without routes: it would read route properties on every request")
	}
	c := mustParse(t, withRoutes(`,"routes":[{"route":"a","realm":"A"}]`))
	r := NewResolver(c, asJSON)
	for i, want := range []bool{true, false, false} {
		res, fresh := r.Resolve([]byte("a"), []byte(`{"realm":"ignored"}`), nil)
		if res.Err != nil || res.Config.Realm != "A" || fresh != want {
			t.Errorf("call %d: %+v fresh %v", i, res, fresh)
		}
	}
	if res, _ := r.Resolve(nil, nil, nil); res.Config != c {
		t.Error("an unnamed route does not get the top level")
	}

	m := NewResolver(mustParse(t, withRoutes(`,"route_metadata":true`)), asJSON)
	rows := []struct {
		name, vhost, route, realm, err string
		fresh                          bool
	}{
		{"x", `{"realm":"v"}`, `{"realm":"r"}`, "r", "", true},
		{"x", `{"realm":"v"}`, `{"realm":"r"}`, "r", "", false},
		{"x", `{"realm":"v"}`, `{"realm":"r2"}`, "r2", "", true}, // the same name, other metadata (an RDS update)
		{"x", `{"realm":"v"}`, ``, "v", "", true},
		{"y", `!`, ``, "", "invalid virtual host metadata: cannot be read: truncated", true},
		{"y", `!`, ``, "", "cannot be read", false}, // logged once: not fresh
		{"z", ``, `{"realm":1}`, "", `invalid route metadata: "realm" must be a string`, true},
	}
	for i, row := range rows {
		var vh, rt []byte
		if row.vhost != "" {
			vh = []byte(row.vhost)
		}
		if row.route != "" {
			rt = []byte(row.route)
		}
		res, fresh := m.Resolve([]byte(row.name), vh, rt)
		switch {
		case fresh != row.fresh:
			t.Errorf("row %d: fresh %v", i, fresh)
		case row.err != "":
			if res.Err == nil || !strings.Contains(res.Err.Error(), row.err) {
				t.Errorf("row %d: error %v, want %q", i, res.Err, row.err)
			}
		case res.Err != nil || res.Config.Realm != row.realm:
			t.Errorf("row %d: %+v", i, res)
		}
	}

	// Bounded: past MaxResolved routes it starts over.
	for i := range MaxResolved + 10 {
		r.Resolve([]byte("route-"+strconv.Itoa(i)), nil, nil)
		if len(r.memo) > MaxResolved {
			t.Fatalf("%d routes remembered", len(r.memo))
		}
	}
}
