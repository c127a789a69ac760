package harness_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
	"github.com/phantom-token/envoy-phantom-token/e2e/harness"
)

func envoyPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("ENVOY_PATH")
	if p == "" {
		t.Fatal("ENVOY_PATH is not set: run the tests with `make e2e`")
	}
	return p
}

// TestStartWithoutWasm runs Envoy through func-e with two plain listeners in
// front of the echo upstream.
func TestStartWithoutWasm(t *testing.T) {
	echo, err := fixtures.StartEcho(fixtures.AnyPort)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(echo.Close)

	ctx := context.Background()
	e, err := harness.Start(ctx, harness.Config{
		EnvoyPath: envoyPath(t),
		Dir:       t.TempDir(),
		Clusters:  map[string]string{"echo": echo.Addr.String()},
		Upstream:  "echo",
		Scenarios: []harness.Scenario{{Name: "a"}, {Name: "b"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})

	for _, name := range []string{"a", "b"} {
		res, err := http.Get(e.URL(name) + "/plain/" + name)
		if err != nil {
			t.Fatal(err)
		}
		var seen fixtures.Request
		err = json.NewDecoder(res.Body).Decode(&seen)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK || seen.Path != "/plain/"+name {
			t.Fatalf("listener %s: status %d, echo %+v, err %v", name, res.StatusCode, seen, err)
		}
	}
	if got := len(echo.Requests("/plain/")); got != 2 {
		t.Errorf("echo saw %d requests, want 2", got)
	}
	n, err := e.Counter(ctx, "http.a.downstream_rq_total")
	if err != nil || n != 1 {
		t.Errorf("http.a.downstream_rq_total = %d, %v; want 1", n, err)
	}
	pid, err := e.PID()
	if err != nil {
		t.Fatal(err)
	}
	if exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe")); err != nil || filepath.Base(exe) != filepath.Base(envoyPath(t)) {
		t.Errorf("PID %d runs %q (%v), want %s", pid, exe, err, envoyPath(t))
	}
	if log, err := e.Log(); err != nil || !strings.Contains(log, "starting main dispatch loop") {
		t.Errorf("log lacks Envoy's start line (err %v):\n%s", err, log)
	}
}

// TestStartFailure: a wasm filter whose module does not exist makes Envoy exit,
// and Start reports it with the log.
func TestStartFailure(t *testing.T) {
	dir := t.TempDir()
	_, err := harness.Start(context.Background(), harness.Config{
		EnvoyPath: envoyPath(t),
		WasmPath:  filepath.Join(dir, "missing.wasm"),
		Dir:       dir,
		Clusters:  map[string]string{"echo": "127.0.0.1:1"},
		Upstream:  "echo",
		Scenarios: []harness.Scenario{{Name: "broken", Plugin: `{}`}},
	})
	var se *harness.StartupError
	if !errors.As(err, &se) || !se.Exited {
		t.Fatalf("Start error = %v, want a StartupError for an exited Envoy", err)
	}
	if !strings.Contains(se.Log, "missing.wasm") {
		t.Errorf("log does not name the missing module:\n%s", se.Log)
	}
}

// TestStartLDSRejectsOneListener: through LDS, a listener Envoy refuses is
// missing while the others serve.
func TestStartLDSRejectsOneListener(t *testing.T) {
	dir := t.TempDir()
	_, err := harness.Start(context.Background(), harness.Config{
		EnvoyPath:       envoyPath(t),
		WasmPath:        filepath.Join(dir, "missing.wasm"),
		Dir:             dir,
		Clusters:        map[string]string{"echo": "127.0.0.1:1"},
		Upstream:        "echo",
		Scenarios:       []harness.Scenario{{Name: "fine"}, {Name: "broken", Plugin: `{}`}},
		ListenersViaLDS: true,
	})
	var se *harness.StartupError
	if !errors.As(err, &se) || se.Exited || len(se.Missing) != 1 || se.Missing[0] != "broken" {
		t.Fatalf("Start error = %v, want only listener broken missing", err)
	}
}
