package e2e

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/e2e/harness"
)

// badConfigs are plugin configurations OnPluginStart must refuse, each with
// the key its log line must name ("" when no single key is at fault).
var badConfigs = []struct {
	name   string
	plugin func() any
	key    string
}{
	{"unknown-key", func() any { return plugin(map[string]any{"introspection_uri": "http://x/"}) }, "introspection_uri"},
	{"missing-cluster", func() any { return plugin(map[string]any{"cluster": nil}) }, "cluster"},
	{"missing-url", func() any { return plugin(map[string]any{"introspection_url": nil}) }, "introspection_url"},
	{"unparsable-url", func() any { return plugin(map[string]any{"introspection_url": "http://[::1"}) }, "introspection_url"},
	{"timeout-type", func() any { return plugin(map[string]any{"timeout": true}) }, "timeout"},
	{"secret-env-unset", func() any {
		return plugin(map[string]any{"client_secret": nil, "client_secret_env": "NOT_SET_IN_VM"})
	}, "client_secret_env"},
	{"url-query-bad-escape", func() any { return plugin(map[string]any{"introspection_url": "http://ids/introspect?x=%zz"}) }, "introspection_url"},
	{"upstream-header-host", func() any { return plugin(map[string]any{"upstream_header": "host"}) }, "upstream_header"},
	{"upstream-header-hop-by-hop", func() any { return plugin(map[string]any{"upstream_header": "transfer-encoding"}) }, "upstream_header"},
	{"cache-max-ttl-over-24h", func() any { return plugin(map[string]any{"cache_max_ttl": "25h"}) }, "cache_max_ttl"},
	{"count-with-a-unit", func() any { return plugin(map[string]any{"max_in_flight": "1k"}) }, "max_in_flight"},
	{"not-json", func() any { return `{"introspection_url":` }, ""},
}

// TestBadConfigRejected: a bad plugin configuration fails the canary VM's
// OnPluginStart, so Envoy refuses it, and a plugin log line names the key.
// Each subtest starts an Envoy of its own; they run in parallel.
func TestBadConfigRejected(t *testing.T) {
	start := func(t *testing.T, lds bool, scenarios []harness.Scenario) *harness.StartupError {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		e, err := harness.Start(ctx, harness.Config{
			EnvoyPath:       suite.envoyPath,
			WasmPath:        suite.wasmPath,
			Dir:             t.TempDir(),
			Clusters:        map[string]string{"echo": suite.echo.Addr.String(), "ids": suite.ids.Addr.String()},
			Upstream:        "echo",
			Scenarios:       scenarios,
			ListenersViaLDS: lds,
		})
		if err == nil {
			_ = e.Stop()
			t.Fatal("Envoy accepted every configuration")
		}
		var se *harness.StartupError
		if !errors.As(err, &se) {
			t.Fatalf("Start: %v", err)
		}
		return se
	}

	// In the bootstrap, a bad configuration makes Envoy exit.
	t.Run("bootstrap", func(t *testing.T) {
		t.Parallel()
		bad := badConfigs[0]
		se := start(t, false, []harness.Scenario{{Name: bad.name, Plugin: bad.plugin()}})
		if !se.Exited || se.Err == nil {
			t.Fatalf("Envoy did not exit with an error: %v", se)
		}
		if !wasmLineMentions(se.Log, bad.key) {
			t.Errorf("no plugin log line names %q:\n%s", bad.key, se.Log)
		}
	})

	// Through LDS, Envoy rejects each bad listener and keeps the good one, so
	// one Envoy checks them all.
	t.Run("lds", func(t *testing.T) {
		t.Parallel()
		scenarios := []harness.Scenario{{Name: "good", Plugin: plugin(nil)}}
		var want []string
		for _, bad := range badConfigs {
			scenarios = append(scenarios, harness.Scenario{Name: bad.name, Plugin: bad.plugin()})
			want = append(want, bad.name)
		}
		se := start(t, true, scenarios)
		if se.Exited {
			t.Fatalf("Envoy exited: %v", se)
		}
		if !slices.Equal(se.Missing, want) {
			t.Errorf("listeners missing: %v, want exactly %v", se.Missing, want)
		}
		for _, bad := range badConfigs {
			if !strings.Contains(se.Log, "listener '"+bad.name+"' config rejected") {
				t.Errorf("%s: Envoy did not log the listener's rejection", bad.name)
			}
			if bad.key != "" && !wasmLineMentions(se.Log, bad.key) {
				t.Errorf("%s: no plugin log line names %q", bad.name, bad.key)
			}
		}
		if t.Failed() {
			t.Logf("Envoy log:\n%s", se.Log)
		}
	})
}

// wasmLineMentions reports whether a plugin log line contains s.
func wasmLineMentions(log, s string) bool {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "wasm log") && strings.Contains(line, s) {
			return true
		}
	}
	return false
}
