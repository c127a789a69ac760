package routeset

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/phantom-token/envoy-phantom-token/internal/config"
)

const n = 50

func parse(t *testing.T) *config.Config {
	t.Helper()
	conf, err := json.Marshal(map[string]any{
		"introspection_url": "http://ids.example/introspect",
		"cluster":           "ids",
		"client_id":         "gw",
		"client_secret":     "s3cret",
		"routes":            Rules(n),
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse(conf, func(string) string { return "" })
	if err != nil {
		t.Fatalf("the rules do not parse: %v", err)
	}
	return c
}

// The filter accepts the rules, and the first rule that matches each Envoy
// route is that route's own, so the target's is the second-to-last.
func TestEachRouteHasItsOwnRule(t *testing.T) {
	c := parse(t)
	if len(c.Routes) != n {
		t.Fatalf("%d rules, want %d", len(c.Routes), n)
	}
	for i, r := range Envoy(n) {
		if !strings.HasPrefix(r.Prefix, "/") || !strings.HasSuffix(r.Prefix, "/") {
			t.Errorf("route %q: prefix %q is not a path segment", r.Name, r.Prefix)
		}
		for j, rule := range c.Routes {
			if rule.Matches(r.Name) {
				if j != i {
					t.Errorf("route %q is matched first by rule %d, want %d", r.Name, j, i)
				}
				break
			}
		}
	}
	if got, want := c.ForRoute(Target(n).Name), c.Routes[n-2].Config; got != want {
		t.Errorf("the target %q does not get rule %d", Target(n).Name, n-2)
	}
}

// The target's rule authenticates, with its own challenge and nothing more
// to check on a hit than the top level.
func TestTargetRule(t *testing.T) {
	c := parse(t)
	got := c.ForRoute(Target(n).Name)
	if !got.Enabled || got.Realm != TargetRealm || len(got.RequiredScopes) != 0 {
		t.Errorf("target: enabled %v, realm %q, required scopes %v; want true, %q, none", got.Enabled, got.Realm, got.RequiredScopes, TargetRealm)
	}
}

// A realistic mix: exact and prefix rules, some with required scopes, some
// with a realm, exactly one that turns the filter off.
func TestMix(t *testing.T) {
	c := parse(t)
	var prefix, exact, scoped, realm, off int
	for _, r := range c.Routes {
		if r.Prefix {
			prefix++
		} else {
			exact++
		}
		if len(r.Config.RequiredScopes) > 0 {
			scoped++
		}
		if r.Config.Realm != c.Realm {
			realm++
		}
		if !r.Config.Enabled {
			off++
		}
	}
	if prefix == 0 || exact == 0 || scoped == 0 || realm < 2 || off != 1 {
		t.Errorf("prefix %d, exact %d, with required scopes %d, with a realm %d, off %d", prefix, exact, scoped, realm, off)
	}
}
