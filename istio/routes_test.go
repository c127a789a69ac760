package istio_test

import (
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/phantom-token/envoy-phantom-token/internal/config"
)

// envoyRouteNames returns the names of the Envoy routes Istio builds from a
// VirtualService or an HTTPRoute (given as a generic object), the names the
// filter's route rules select.
func envoyRouteNames(obj map[string]any) []string {
	var names []string
	spec, _ := obj["spec"].(map[string]any)
	switch obj["kind"] {
	case "VirtualService":
		// pilot/pkg/networking/core/route/route.go, TranslateRoute: one
		// route per match, named http[].name, then "." and the match's name
		// when it has one.
		for _, h := range list(spec["http"]) {
			http, _ := h.(map[string]any)
			name, _ := http["name"].(string)
			matches := list(http["match"])
			if len(matches) == 0 {
				names = append(names, name)
			}
			for _, m := range matches {
				match, _ := m.(map[string]any)
				if matchName, _ := match["name"].(string); matchName != "" {
					names = append(names, name+"."+matchName)
				} else {
					names = append(names, name)
				}
			}
		}
	case "HTTPRoute":
		// pilot/pkg/config/kube/gateway/conversion.go, convertHTTPRoute: the
		// rule's name, else "<namespace>.<name>.<index of the rule>"; every
		// match of a rule gives a route of that one name
		// (route_collections.go splits the rule by match).
		meta, _ := obj["metadata"].(map[string]any)
		namespace, _ := meta["namespace"].(string)
		routeName, _ := meta["name"].(string)
		for i, r := range list(spec["rules"]) {
			rule, _ := r.(map[string]any)
			name, _ := rule["name"].(string)
			if name == "" {
				name = namespace + "." + routeName + "." + strconv.Itoa(i)
			}
			names = append(names, name)
		}
	}
	return names
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// unmatchedRules returns, for route rules (the pluginConfig's routes), the
// rules that select none of the route names, and the route names no rule
// selects, as in the filter: an exact route, or a route_prefix.
func unmatchedRules(rules []any, names []string) (rulesWithoutRoute, routesWithoutRule []string) {
	selected := map[string]bool{}
	for _, r := range rules {
		rule, _ := r.(map[string]any)
		exact, isExact := rule["route"].(string)
		prefix, _ := rule["route_prefix"].(string)
		found := false
		for _, name := range names {
			if (isExact && name == exact) || (!isExact && strings.HasPrefix(name, prefix)) {
				selected[name], found = true, true
			}
		}
		if !found {
			rulesWithoutRoute = append(rulesWithoutRoute, exact+prefix)
		}
	}
	for _, name := range names {
		if !selected[name] {
			routesWithoutRule = append(routesWithoutRule, name)
		}
	}
	return rulesWithoutRoute, routesWithoutRule
}

// TestEnvoyRouteNames pins the naming rules above on small objects, so that
// the examples below are checked against rules that say what Istio does.
func TestEnvoyRouteNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		obj  map[string]any
		want []string
	}{
		{name: "a VirtualService route without a match",
			obj:  vs(map[string]any{"name": "all"}),
			want: []string{"all"}},
		{name: "a VirtualService route whose matches have no name",
			obj:  vs(map[string]any{"name": "orders", "match": []any{map[string]any{}, map[string]any{}}}),
			want: []string{"orders", "orders"}},
		{name: "a named match adds its name after a dot",
			obj: vs(map[string]any{"name": "orders", "match": []any{
				map[string]any{"name": "read"}, map[string]any{}}}),
			want: []string{"orders.read", "orders"}},
		{name: "an unnamed VirtualService route is unnamed in Envoy",
			obj:  vs(map[string]any{"match": []any{map[string]any{}}}),
			want: []string{""}},
		{name: "an unnamed VirtualService route with a named match",
			obj:  vs(map[string]any{"match": []any{map[string]any{"name": "read"}}}),
			want: []string{".read"}},
		{name: "HTTPRoute rules by name, else by namespace, route and index from 0",
			obj: map[string]any{"kind": "HTTPRoute",
				"metadata": map[string]any{"namespace": "orders", "name": "orders-api"},
				"spec": map[string]any{"rules": []any{
					map[string]any{"name": "health"}, map[string]any{}, map[string]any{"name": "admin"}}}},
			want: []string{"health", "orders.orders-api.1", "admin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := envoyRouteNames(tc.obj); !slices.Equal(got, tc.want) {
				t.Errorf("route names %q, want %q", got, tc.want)
			}
		})
	}
}

// TestUnmatchedRules pins how the check below reads rules, as the filter
// selects routes: by the exact name, or by a prefix of it.
func TestUnmatchedRules(t *testing.T) {
	names := []string{"health", "orders.read", "orders.write"}
	for _, tc := range []struct {
		name                                string
		rules                               []any
		wantRulesWithout, wantRoutesWithout []string
	}{
		{name: "one exact rule per route",
			rules: []any{r("route", "health"), r("route", "orders.read"), r("route", "orders.write")}},
		{name: "a prefix selects every route it starts",
			rules: []any{r("route", "health"), r("route_prefix", "orders.")}},
		{name: "the VirtualService route's name where the match is named",
			rules:            []any{r("route", "health"), r("route", "orders")},
			wantRulesWithout: []string{"orders"}, wantRoutesWithout: []string{"orders.read", "orders.write"}},
		{name: "an exact rule is not a prefix",
			rules:            []any{r("route", "health"), r("route", "orders.read"), r("route", "orders.writ")},
			wantRulesWithout: []string{"orders.writ"}, wantRoutesWithout: []string{"orders.write"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rulesWithout, routesWithout := unmatchedRules(tc.rules, names)
			if !slices.Equal(rulesWithout, tc.wantRulesWithout) || !slices.Equal(routesWithout, tc.wantRoutesWithout) {
				t.Errorf("rules without a route %q, routes without a rule %q; want %q, %q",
					rulesWithout, routesWithout, tc.wantRulesWithout, tc.wantRoutesWithout)
			}
		})
	}
}

func r(key, name string) map[string]any { return map[string]any{key: name} }

func vs(http ...any) map[string]any {
	return map[string]any{"kind": "VirtualService", "spec": map[string]any{"http": http}}
}

// TestRouteRulesNameTheExampleRoutes checks the examples the route manifests
// are written for against their CRDs (Istio's VirtualService, the Gateway
// API's HTTPRoute), and that every rule of the manifest selects a route of
// its example and every route of the example has a rule: a rule that names
// the VirtualService route "orders" instead of the Envoy routes
// "orders.read" and "orders.write" would select nothing, and those routes
// would get the top-level policy.
func TestRouteRulesNameTheExampleRoutes(t *testing.T) {
	kinds := loadCRDs(t)
	for _, m := range manifests {
		if m.routes == "" {
			continue
		}
		t.Run(m.file, func(t *testing.T) {
			data, err := os.ReadFile(m.routes)
			if err != nil {
				t.Fatal(err)
			}
			if err := validateCreate(kinds, data); err != nil {
				t.Fatalf("%s: %v", m.routes, err)
			}
			names := envoyRouteNames(readObject(t, m.routes, m.routesKind))
			rules := list(wasmBlock(readManifest(t, m))["pluginConfig"].(map[string]any)["routes"])
			if len(names) == 0 || len(rules) == 0 {
				t.Fatalf("%d routes in %s, %d rules in %s", len(names), m.routes, len(rules), m.file)
			}
			rulesWithoutRoute, routesWithoutRule := unmatchedRules(rules, names)
			if len(rulesWithoutRoute) > 0 {
				t.Errorf("rules for %q select no route of %s (its routes: %q)", rulesWithoutRoute, m.routes, names)
			}
			if len(routesWithoutRule) > 0 {
				t.Errorf("routes %q of %s have no rule in %s", routesWithoutRule, m.routes, m.file)
			}
		})
	}
}

// policy is what a route's configuration decides for a request.
type policy struct {
	enabled          bool
	realm            string
	scopes, required []string
	claimHeaders     []string
}

func policyOf(c *config.Config) policy {
	p := policy{enabled: c.Enabled, realm: c.Realm, scopes: c.Scopes, required: c.RequiredScopes}
	for _, h := range c.ClaimHeaders {
		p.claimHeaders = append(p.claimHeaders, h.Header)
	}
	return p
}

// TestRouteManifestPolicies parses each route manifest's pluginConfig as
// Istio delivers it and checks the policy of every route of its example, and
// of a route no rule names.
func TestRouteManifestPolicies(t *testing.T) {
	topLevel := policy{enabled: true, realm: "api", claimHeaders: []string{"x-user-id"}}
	public := policy{enabled: false, realm: "api", claimHeaders: []string{"x-user-id"}}
	admin := policy{enabled: true, realm: "admin", scopes: []string{"admin"}, required: []string{"admin"},
		claimHeaders: []string{"x-user-id", "x-user-roles"}}
	ordersRead := policy{enabled: true, realm: "api", scopes: []string{"orders:read"}, required: []string{"orders:read"},
		claimHeaders: []string{"x-user-id"}}
	want := map[string]map[string]policy{
		"wasmplugin-gateway-routes.yaml": {
			"health":      public,
			"orders.read": ordersRead,
			"orders.write": {enabled: true, realm: "api", scopes: []string{"orders:read", "orders:write"},
				required: []string{"orders:write"}, claimHeaders: []string{"x-user-id"}},
			"admin":        admin,
			"orders":       topLevel, // the VirtualService route's name: no Envoy route has it
			"":             topLevel, // an unnamed route
			"another-team": topLevel,
		},
		"trafficextension-gateway-routes.yaml": {
			"health":              public,
			"orders.orders-api.1": ordersRead,
			"admin":               admin,
			"orders.orders-api.0": topLevel, // another rule index
			"":                    topLevel,
			"another-team":        topLevel,
		},
	}
	getenv := func(name string) string {
		if name == "PHANTOM_TOKEN_CLIENT_SECRET" {
			return "test-secret"
		}
		return ""
	}
	for _, m := range manifests {
		if m.routes == "" {
			continue
		}
		t.Run(m.file, func(t *testing.T) {
			c, err := config.Parse([]byte(deliver(t, readManifest(t, m)).pluginConfig), getenv)
			if err != nil {
				t.Fatal(err)
			}
			if len(want[m.file]) == 0 {
				t.Fatalf("no policies to check for %s", m.file)
			}
			for route, w := range want[m.file] {
				if got := policyOf(c.ForRoute(route)); !reflect.DeepEqual(got, w) {
					t.Errorf("route %q: policy %+v, want %+v", route, got, w)
				}
			}
		})
	}
}
