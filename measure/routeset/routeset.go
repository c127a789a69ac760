// Package routeset is the route set of the benchmark's routed listener: n
// Envoy routes, each named and matched by a path prefix, and n route rules
// of the plugin configuration that name them, a mix of exact (`route`) and
// prefix (`route_prefix`) rules, some with their own realm, scopes or
// required scopes, the last one `"enabled": false`. The requests land on
// Target, the route the second-to-last rule names: a linear scan of the
// rules finds it last but one, and Envoy's matcher tries every route before
// it.
package routeset

import "fmt"

// Route is one Envoy route: its name (what the filter reads as
// xds.route_name) and the path prefix it matches.
type Route struct {
	Name, Prefix string
}

// TargetRealm is the realm of the target's rule: a request on the target
// without a token is challenged with it, which shows that the filter applied
// that rule.
const TargetRealm = "bench-target"

// Envoy is the route table, in match order.
func Envoy(n int) []Route {
	out := make([]Route, n)
	for i := range out {
		out[i] = route(i)
	}
	return out
}

// Target is the route the requests land on.
func Target(n int) Route { return route(n - 2) }

// Rules is the plugin configuration's "routes": one rule per route of
// Envoy(n), in the same order. The target's rule sets the realm and the
// scopes of the challenge, nothing that a cache hit checks: what a hit on
// the target costs more than a plain hit is finding its rule.
func Rules(n int) []map[string]any {
	out := make([]map[string]any, n)
	for i := range out {
		r := map[string]any{}
		if prefixRule(i) {
			r["route_prefix"] = fmt.Sprintf("r%02d-", i)
		} else {
			r["route"] = route(i).Name
		}
		switch {
		case i == n-1:
			r["enabled"] = false
		case i == n-2:
			r["realm"] = TargetRealm
			r["scopes"] = "read"
		case i%3 == 0:
			r["required_scopes"] = "read"
		case i%5 == 2:
			r["realm"] = fmt.Sprintf("api-%02d", i)
			r["scopes"] = []string{"read", fmt.Sprintf("write:%02d", i)}
			r["required_scopes"] = "read"
		}
		out[i] = r
	}
	return out
}

// prefixRule: one rule in four names its routes by a prefix; its route is
// named like a versioned service ("r05-v1").
func prefixRule(i int) bool { return i%4 == 1 }

func route(i int) Route {
	name := fmt.Sprintf("r%02d", i)
	if prefixRule(i) {
		name += "-v1"
	}
	return Route{Name: name, Prefix: fmt.Sprintf("/r%02d/", i)}
}
