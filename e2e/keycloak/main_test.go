// Package keycloak runs the compiled phantom token filter in a real Envoy in
// front of a real Keycloak (keycloak-quarkus-dist 26.7.3, `start-dev`), whose
// realm is realm.json: client "app" gets lightweight access tokens with the
// gateway in their audience, client "other-app" gets lightweight tokens
// without it, client "dpop-app" gets lightweight DPoP-bound tokens
// (dpop.bound.access.tokens) with the gateway in their audience, and client
// "gateway" introspects with
// client.introspection.response.allow.jwt.claim.enabled, so that Keycloak
// answers Accept: application/jwt with {"active":…,"jwt":"<full token>"}.
//
// Run it with `make e2e` from the repository root: it fetches Keycloak with
// Maven into .cache/keycloak and sets KEYCLOAK_HOME, ENVOY_PATH and WASM_PATH.
// Keycloak starts once for the package (about 20 s; the first run after
// extraction re-augments it for development mode, about 30 s more). Nothing is
// skipped: a missing Keycloak, Java, Envoy or module fails the suite.
// E2E_KEEP=1 keeps the work directory (Keycloak and Envoy logs) after a pass.
package keycloak

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
	"github.com/phantom-token/envoy-phantom-token/e2e/harness"
)

//go:embed realm.json
var realmJSON []byte

// Clients of realm.json.
const (
	gatewayClient  = "gateway"   // introspects
	appClient      = "app"       // lightweight tokens, gateway in the audience
	otherAppClient = "other-app" // lightweight tokens, gateway not in the audience
	dpopAppClient  = "dpop-app"  // lightweight DPoP-bound tokens, gateway in the audience
)

// Scenarios (Envoy listeners), each with its own cluster to Keycloak so that
// the cluster's upstream_rq_total counts that scenario's introspections.
const (
	scNoCache = "kc-nocache" // defaults: Keycloak's Cache-Control: no-cache is honoured
	scExp     = "kc-exp"     // cache_ignore_cache_control: the JWT's exp bounds the entry
	scRevoke  = "kc-revoke"  // cache_ignore_cache_control and a short cache_max_ttl
	scDPoP    = "kc-dpop"    // dpop allowed, cache_ignore_cache_control
	scNonce   = "kc-nonce"   // dpop required, with a server nonce
)

// revokeMaxTTL is the cache_max_ttl of scRevoke.
const revokeMaxTTL = 2 * time.Second

// expSkew is how long before the JWT's exp the filter's cache entry ends
// (docs/configuration.md: cache_max_ttl is "also capped by … the JWT's exp
// minus 5s").
const expSkew = 5 * time.Second

var suite struct {
	echo     *fixtures.Echo
	keycloak *fixtures.Keycloak
	envoy    *harness.Envoy

	mu      sync.Mutex
	secrets []string // values that must never reach Envoy's log
}

// remember adds values that must never appear in Envoy's log.
func remember(values ...string) {
	suite.mu.Lock()
	defer suite.mu.Unlock()
	suite.secrets = append(suite.secrets, values...)
}

func TestMain(m *testing.M) {
	os.Exit(harness.RunSuite(m, "keycloak-e2e", func(dir string) (func() *harness.Envoy, func(), error) {
		began := time.Now()
		cleanup, err := setUp(dir)
		if err == nil {
			fmt.Fprintf(os.Stderr, "keycloak ready in %v, Envoy ready %v after the start of the set-up\n",
				suite.keycloak.Started.Round(100*time.Millisecond), time.Since(began).Round(100*time.Millisecond))
		}
		return func() *harness.Envoy { return suite.envoy }, cleanup, err
	}))
}

// setUp starts the echo upstream, Keycloak and Envoy. The returned cleanup
// stops whatever was started, also after an error.
func setUp(dir string) (cleanup func(), err error) {
	var stops []func()
	cleanup = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}

	envoyPath := os.Getenv("ENVOY_PATH")
	if envoyPath == "" {
		return cleanup, fmt.Errorf("ENVOY_PATH is not set: run `make e2e` from the repository root")
	}
	wasmPath := os.Getenv("WASM_PATH")
	if wasmPath == "" {
		wasmPath = filepath.Join("..", "..", "build", "phantom_token.wasm")
	}
	if wasmPath, err = filepath.Abs(wasmPath); err != nil {
		return cleanup, err
	}
	if _, err := os.Stat(wasmPath); err != nil {
		return cleanup, fmt.Errorf("the filter module is missing (run `make build`): %w", err)
	}
	home := os.Getenv("KEYCLOAK_HOME")
	if home == "" {
		return cleanup, fmt.Errorf("KEYCLOAK_HOME is not set: run `make e2e` from the repository root, which fetches Keycloak")
	}

	if suite.echo, err = fixtures.StartEcho(fixtures.AnyPort); err != nil {
		return cleanup, err
	}
	stops = append(stops, suite.echo.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if suite.keycloak, err = fixtures.StartKeycloak(ctx, fixtures.KeycloakOptions{
		Home: home, Dir: dir, Realm: realmJSON,
	}); err != nil {
		return cleanup, err
	}
	stops = append(stops, suite.keycloak.Close)
	for _, s := range suite.keycloak.Secrets {
		remember(s)
	}

	kc := "127.0.0.1:" + fmt.Sprint(suite.keycloak.Port)
	suite.envoy, err = harness.Start(ctx, harness.Config{
		EnvoyPath: envoyPath,
		WasmPath:  wasmPath,
		Dir:       dir,
		Clusters: map[string]string{
			"echo":    suite.echo.Addr.String(),
			scNoCache: kc,
			scExp:     kc,
			scRevoke:  kc,
			scDPoP:    kc,
			scNonce:   kc,
		},
		Upstream: "echo",
		Scenarios: []harness.Scenario{
			{Name: scNoCache, Plugin: plugin(scNoCache, nil)},
			{Name: scExp, Plugin: plugin(scExp, map[string]any{"cache_ignore_cache_control": true})},
			{Name: scRevoke, Plugin: plugin(scRevoke, map[string]any{
				"cache_ignore_cache_control": true,
				"cache_max_ttl":              fmt.Sprintf("%ds", int(revokeMaxTTL.Seconds())),
			})},
			{Name: scDPoP, Plugin: plugin(scDPoP, map[string]any{"dpop": "allowed", "cache_ignore_cache_control": true})},
			{Name: scNonce, Plugin: plugin(scNonce, map[string]any{"dpop": "required", "dpop_nonce": true})},
		},
	})
	if err != nil {
		return cleanup, err
	}
	stops = append(stops, func() { _ = suite.envoy.Stop() })
	return cleanup, nil
}

// plugin is the filter configuration for Keycloak's introspection endpoint
// through cluster, as docs/keycloak.md gives it; extra keys are
// added.
func plugin(cluster string, extra map[string]any) map[string]any {
	c := map[string]any{
		"introspection_url": suite.keycloak.IntrospectURL(),
		"cluster":           cluster,
		"client_id":         gatewayClient,
		"client_secret":     suite.keycloak.Secrets[gatewayClient],
		"response_type":     "application/jwt", // the default, and the Accept Keycloak needs
		"jwt_member":        "jwt",
	}
	for k, v := range extra {
		c[k] = v
	}
	return c
}
