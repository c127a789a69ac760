// Package e2e runs the compiled phantom token filter in a real Envoy (1.40,
// V8, two workers) started through func-e, between an echo upstream and two
// identity servers: the Curity-style Go fixture and node oidc-provider.
//
// Run it with `make e2e` from the repository root, which builds the module,
// installs Envoy into the project's venv and oidc-provider into e2e/oidc, and
// sets ENVOY_PATH. Nothing is skipped: a missing Envoy, module or node fails
// the suite. WASM_PATH overrides the module (default ../build/phantom_token.wasm);
// E2E_KEEP=1 keeps the work directory (bootstrap, Envoy log) after a pass.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
	"github.com/phantom-token/envoy-phantom-token/e2e/harness"
)

// Clients of the Go identity server.
const (
	gatewayID = "gateway"
	// specialID and the special secret need RFC 6749 §2.3.1 form-encoding in
	// the Basic header: a space, '+', '%', '/' and ':'.
	specialID = "gate way+1"
)

// Names of the scenarios (listeners), one plugin configuration each.
const (
	scDefault  = "default"  // Go IdS, defaults, a 1s callout timeout
	scScopes   = "scopes"   // realm "orders", advertised and required scopes, numeric settings
	scEnv      = "env"      // secret from a VM env var, JWT in x-jwt, no cache
	scSpecial  = "special"  // client credentials that need form-encoding
	scRefused  = "refused"  // introspection cluster on a closed port
	scNoCORS   = "no-cors"  // forward_cors_preflight false
	scDisabled = "disabled" // enabled false
	scRFC9701  = "rfc9701"  // node oidc-provider, application/token-introspection+jwt

	// These share the default's vm_id (every scenario's is empty, as with
	// Istio), endpoint, cluster and client, with another caching policy.
	scIgnoreCC = "ignore-cc" // cache_ignore_cache_control
	scShortTTL = "short-ttl" // cache_max_ttl 1s
	scNegative = "negative"  // cache_negative_ttl 3s
	scBounded  = "bounded"   // max_in_flight 4
	scSmall    = "small"     // cache_max_entries 1000
	scSmallNeg = "small-neg" // cache_max_entries 1000, cache_negative_ttl 3s
)

// smallEntries is the cache_max_entries of the small scenario.
const smallEntries = 1000

// rfc9701MaxTTL is the cache_max_ttl of the rfc9701 scenario.
const rfc9701MaxTTL = 2 * time.Second

// suite holds what every test shares: one Envoy serving all scenarios.
var suite struct {
	echo  *fixtures.Echo
	ids   *fixtures.IdS
	oidc  *fixtures.OIDCProvider
	envoy *harness.Envoy

	envoyPath, wasmPath string
	gatewaySecret       string
	specialSecret       string

	mu      sync.Mutex
	secrets []string // further values that must never reach the log
}

// remember adds values that must never appear in Envoy's log.
func remember(values ...string) {
	suite.mu.Lock()
	defer suite.mu.Unlock()
	suite.secrets = append(suite.secrets, values...)
}

func TestMain(m *testing.M) {
	os.Exit(harness.RunSuite(m, "e2e", func(dir string) (func() *harness.Envoy, func(), error) {
		cleanup, err := setUp(dir)
		return func() *harness.Envoy { return suite.envoy }, cleanup, err
	}))
}

// setUp starts the fixtures and the shared Envoy. The returned cleanup stops
// whatever was started, also after an error.
func setUp(dir string) (cleanup func(), err error) {
	var stops []func()
	cleanup = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}

	suite.envoyPath = os.Getenv("ENVOY_PATH")
	if suite.envoyPath == "" {
		return cleanup, fmt.Errorf("ENVOY_PATH is not set: run `make e2e` from the repository root")
	}
	suite.wasmPath = os.Getenv("WASM_PATH")
	if suite.wasmPath == "" {
		suite.wasmPath = filepath.Join("..", "build", "phantom_token.wasm")
	}
	if suite.wasmPath, err = filepath.Abs(suite.wasmPath); err != nil {
		return cleanup, err
	}
	if _, err := os.Stat(suite.wasmPath); err != nil {
		return cleanup, fmt.Errorf("the filter module is missing (run `make build`): %w", err)
	}

	if suite.echo, err = fixtures.StartEcho(fixtures.AnyPort); err != nil {
		return cleanup, err
	}
	stops = append(stops, suite.echo.Close)

	suite.gatewaySecret = fixtures.RandomToken()
	suite.specialSecret = "s3cr%t+/:" + fixtures.RandomToken()
	if suite.ids, err = fixtures.StartIdS(fixtures.AnyPort, map[string]string{
		gatewayID: suite.gatewaySecret,
		specialID: suite.specialSecret,
	}); err != nil {
		return cleanup, err
	}
	stops = append(stops, suite.ids.Close)

	if suite.oidc, err = fixtures.StartOIDCProvider("oidc"); err != nil {
		return cleanup, err
	}
	stops = append(stops, suite.oidc.Close)
	remember(suite.gatewaySecret, suite.specialSecret, suite.oidc.GatewaySecret, suite.oidc.AppSecret)

	refused, err := fixtures.FreePort()
	if err != nil {
		return cleanup, err
	}
	if err := certBoundSetUp(dir); err != nil {
		return cleanup, err
	}
	if err := idsTLSSetUp(dir); err != nil {
		return cleanup, err
	}
	clusters := map[string]string{
		"echo":    suite.echo.Addr.String(),
		"ids":     suite.ids.Addr.String(),
		"oidc":    "127.0.0.1:" + strconv.Itoa(suite.oidc.Port),
		"refused": "127.0.0.1:" + strconv.Itoa(refused),
	}
	for name, addr := range certBoundClusters() {
		clusters[name] = addr
	}
	clusterTLS := certBoundClusterTLS()
	for name, addr := range idsTLS.clusters {
		clusters[name], clusterTLS[name] = addr, idsTLS.tls[name]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	suite.envoy, err = harness.Start(ctx, harness.Config{
		EnvoyPath:  suite.envoyPath,
		WasmPath:   suite.wasmPath,
		Dir:        dir,
		Clusters:   clusters,
		ClusterTLS: clusterTLS,
		Upstream:   "echo",
		Scenarios:  scenarios(refused),
	})
	if err != nil {
		return cleanup, err
	}
	stops = append(stops, func() { _ = suite.envoy.Stop() })
	return cleanup, nil
}

// plugin is a plugin configuration for the Go IdS with the gateway client;
// extra keys are added or override.
func plugin(extra map[string]any) map[string]any {
	c := map[string]any{
		"introspection_url": suite.ids.URL + fixtures.IntrospectionPath,
		"cluster":           "ids",
		"client_id":         gatewayID,
		"client_secret":     suite.gatewaySecret,
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func scenarios(refusedPort int) []harness.Scenario {
	return append([]harness.Scenario{
		{Name: scDefault, Plugin: plugin(map[string]any{"timeout": "1s", "max_token_length": 200})},
		{Name: scScopes, Plugin: plugin(map[string]any{
			"realm": "orders", "scopes": "read write", "required_scopes": []string{"write"},
			// numbers, fractional too, as Istio's pluginConfig passes them
			"timeout": 2.5, "cache_max_ttl": 300.0, "max_jwt_size": 16384.0,
		})},
		{Name: scEnv, Env: map[string]string{"PHANTOM_SECRET": suite.gatewaySecret}, Plugin: plugin(map[string]any{
			"client_secret": nil, "client_secret_env": "PHANTOM_SECRET",
			"upstream_header": "x-jwt", "cache": false,
		})},
		{Name: scSpecial, Plugin: plugin(map[string]any{"client_id": specialID, "client_secret": suite.specialSecret})},
		{Name: scRefused, Plugin: plugin(map[string]any{
			"cluster":           "refused",
			"introspection_url": "http://127.0.0.1:" + strconv.Itoa(refusedPort) + fixtures.IntrospectionPath,
		})},
		{Name: scNoCORS, Plugin: plugin(map[string]any{"forward_cors_preflight": false})},
		{Name: scIgnoreCC, Plugin: plugin(map[string]any{"cache_ignore_cache_control": true})},
		{Name: scShortTTL, Plugin: plugin(map[string]any{"cache_max_ttl": "1s"})},
		{Name: scNegative, Plugin: plugin(map[string]any{"cache_negative_ttl": "3s"})},
		{Name: scBounded, Plugin: plugin(map[string]any{"max_in_flight": 4, "timeout": "3s"})},
		{Name: scSmall, Plugin: plugin(map[string]any{"cache_max_entries": smallEntries})},
		{Name: scSmallNeg, Plugin: plugin(map[string]any{"cache_max_entries": smallEntries, "cache_negative_ttl": "3s"})},
		{Name: scDisabled, Plugin: plugin(map[string]any{"enabled": false})},
		{Name: scRFC9701, Plugin: map[string]any{
			"introspection_url":          suite.oidc.URL + fixtures.OIDCIntrospectionPath,
			"cluster":                    "oidc",
			"client_id":                  "gateway",
			"client_secret":              suite.oidc.GatewaySecret,
			"response_type":              "application/token-introspection+jwt",
			"cache_ignore_cache_control": true,
			"cache_max_ttl":              fmt.Sprintf("%ds", int(rfc9701MaxTTL.Seconds())),
		}},
		routesScenario(), // the route scenarios are in routes_test.go
		rejectClaimHeadersScenario(),
		refreshScenario(), // refresh_test.go
	}, append(certBoundScenarios(), idsTLSScenarios()...)...) // in certbound_test.go and idstls_test.go
}
