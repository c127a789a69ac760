package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
	"github.com/phantom-token/envoy-phantom-token/e2e/harness"
)

// The tests in this file start an Envoy of their own, in front of the suite's
// echo upstream and Go identity server: they change process-wide settings,
// measure Envoy's memory, or may kill a worker's VM, and none of that may
// reach the shared Envoy the other tests use.

// privateEnvoy starts an Envoy (two workers) with cfg's scenarios, routing to
// the suite's echo upstream, with the suite's IdS as cluster "ids" besides
// cfg.Clusters. Its work directory is removed after a pass and named in the
// test log otherwise.
func privateEnvoy(t *testing.T, cfg harness.Config) *harness.Envoy {
	t.Helper()
	dir, err := os.MkdirTemp("", "phantom-e2e-"+strings.ReplaceAll(t.Name(), "/", "-")+"-")
	if err != nil {
		t.Fatal(err)
	}
	cfg.EnvoyPath, cfg.WasmPath, cfg.Dir = suite.envoyPath, suite.wasmPath, dir
	clusters := map[string]string{"echo": suite.echo.Addr.String(), "ids": suite.ids.Addr.String()}
	for name, addr := range cfg.Clusters {
		clusters[name] = addr
	}
	cfg.Clusters = clusters
	cfg.Upstream = "echo"
	cfg.Concurrency = 2
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e, err := harness.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("starting Envoy (work directory %s kept): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("Envoy: %v", err)
		}
		if t.Failed() || os.Getenv("E2E_KEEP") != "" {
			t.Logf("work directory (bootstrap, Envoy log): %s", dir)
		} else {
			_ = os.RemoveAll(dir)
		}
	})
	return e
}

// send makes one GET with token (none when empty) to u and returns the status
// and the upstream's view of the request when the echo upstream answered.
func send(c *http.Client, u, token string) (int, *fixtures.Request, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return res.StatusCode, nil, err
	}
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		return res.StatusCode, nil, nil
	}
	var seen fixtures.Request
	if json.Unmarshal(body, &seen) != nil || seen.Method == "" {
		return res.StatusCode, nil, nil
	}
	return res.StatusCode, &seen, nil
}

// workerConnections reads a listener's per-worker connection counters.
func workerConnections(t *testing.T, e *harness.Envoy, listener string) []int {
	t.Helper()
	var n []int
	for w := 0; w < 2; w++ {
		v, err := e.Counter(testCtx(t), fmt.Sprintf("listener.%s.worker_%d.downstream_cx_total", listener, w))
		if err != nil {
			t.Fatal(err)
		}
		n = append(n, v)
	}
	return n
}

// expectServing sends 20 requests, each on a new connection so that both
// workers get some, with valid tokens (one new, so one introspection, then a
// cached one): every one must get 200 with the IdS's JWT at the upstream.
func expectServing(t *testing.T, e *harness.Envoy, listener string) {
	t.Helper()
	const n = 20
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	before := workerConnections(t, e, listener)
	tokens := []string{suite.ids.Issue(fixtures.TokenOptions{Scope: "read"}), suite.ids.Issue(fixtures.TokenOptions{Scope: "read"})}
	bad := map[string]int{}
	for i := range n {
		tok := tokens[min(i, 1)] // the first request introspects tokens[0]; the others mostly hit the cache
		if i == n/2 {
			tok = tokens[0]
		}
		status, seen, err := send(c, e.URL(listener)+"/serving", tok)
		switch {
		case err != nil:
			bad[fmt.Sprintf("error %v", err)]++
		case status != http.StatusOK:
			bad[fmt.Sprintf("status %d", status)]++
		case seen == nil:
			bad["200 not from the upstream"]++
		case len(seen.Header.Values("Authorization")) != 1 || seen.Header.Get("Authorization") != "Bearer "+suite.ids.JWTOf(tok):
			bad["upstream Authorization is not the IdS's JWT"]++
		}
	}
	after := workerConnections(t, e, listener)
	if len(bad) > 0 {
		t.Errorf("after the hostile answer, of %d requests with valid tokens: %v (want all 200 with the JWT)", n, bad)
	}
	if after[0] == before[0] || after[1] == before[1] {
		t.Errorf("connections per worker %d and %d: both workers must have served", after[0]-before[0], after[1]-before[1])
	}
}

// TestDeepNestingKeepsVMServing: answers nested 10,000 and 100,000 deep, in
// the body, in a JWT's payload and in its header, each get 502, and the VMs of
// both workers keep serving afterwards. A recursive JSON parser overflows V8's
// stack on such input: a wasm trap that recover() cannot catch, which leaves
// the worker's VM dead (every later request on it answered 503 by Envoy).
//
// The "deep" listener accepts JWTs up to 1 MiB and this Envoy buffers answers
// up to 2 MiB, so that even the 100,000-level answers reach the module instead
// of being stopped by a size limit first; "member" takes JSON answers with the
// JWT in a member (Keycloak's jwt_member), the other path by which a JSON body
// is parsed; "defaults" has every default. All three share one VM per worker
// (same vm_id), as Istio's WasmPlugins do. (Here a body that starts with '['
// is refused as "not a JWT" before any JSON parser in every mode; it is sent
// anyway, since that could change.)
func TestDeepNestingKeepsVMServing(t *testing.T) {
	e := privateEnvoy(t, harness.Config{
		AsyncResponseBufferLimit: 2 << 20,
		Scenarios: []harness.Scenario{
			{Name: "deep", Plugin: plugin(map[string]any{"max_jwt_size": "1MiB", "timeout": "2s"})},
			{Name: "member", Plugin: plugin(map[string]any{"jwt_member": "jwt", "max_jwt_size": "256KiB", "timeout": "2s"})},
			{Name: "defaults", Plugin: plugin(nil)},
		},
	})
	expectServing(t, e, "deep")

	// A hostile answer must be answered at once; the client gives up after
	// 10s (a dead VM leaves the request hanging until Envoy's idle timeout).
	c := &http.Client{Timeout: 10 * time.Second}
	for _, tc := range []struct {
		listener string
		fault    fixtures.Fault
		depth    int
	}{
		{"defaults", fixtures.FaultDeepArray, 10_000}, // 10 kB: within the default max_jwt_size
		{"deep", fixtures.FaultDeepArray, 10_000},
		{"deep", fixtures.FaultDeepArray, 100_000},
		{"deep", fixtures.FaultDeepObject, 10_000},
		{"deep", fixtures.FaultDeepObject, 100_000},
		{"deep", fixtures.FaultDeepJWTPayload, 10_000},
		{"deep", fixtures.FaultDeepJWTPayload, 100_000},
		{"deep", fixtures.FaultDeepJWTHeader, 10_000},
		{"deep", fixtures.FaultDeepJWTHeader, 100_000},
		{"member", fixtures.FaultDeepArray, 10_000},
		{"member", fixtures.FaultDeepArray, 100_000},
		{"member", fixtures.FaultDeepObject, 10_000},
		{"member", fixtures.FaultDeepObject, 100_000},
	} {
		t.Run(fmt.Sprintf("%s/%s-%d", tc.listener, tc.fault, tc.depth), func(t *testing.T) {
			tok := suite.ids.Issue(fixtures.TokenOptions{Fault: tc.fault, Depth: tc.depth})
			start := time.Now()
			status, _, err := send(c, e.URL(tc.listener)+"/deep", tok)
			if err != nil || status != http.StatusBadGateway {
				t.Errorf("hostile answer: status %d, error %v after %s; want 502", status, err, time.Since(start).Round(time.Millisecond))
			}
			if n := len(suite.ids.IntrospectionsOf(tok)); n != 1 {
				t.Errorf("the IdS got %d introspections for the token, want 1", n)
			}
			expectServing(t, e, tc.listener)
		})
	}

	log, err := e.Log()
	if err != nil {
		t.Fatal(err)
	}
	if failures := harness.VMFailures(log); len(failures) > 0 {
		t.Errorf("Envoy's log shows %d wasm VM failure lines, the first: %.400s", len(failures), strings.Join(failures[:min(len(failures), 5)], "\n"))
	}
}

// TestAnswerSizeBoundedByEnvoy: 40 identity-server answers of 10 MB at once
// each get 502, and Envoy's memory stays within 40 MiB of what it was: with
// http.async_response_buffer_limit at the harness's default (128 KiB, as in
// envoy.yaml), Envoy resets each call after 128 KiB instead of buffering the
// whole answer for the module (by default it buffers up to 32 MiB per call,
// and 40 such answers took its RSS up by about 200 MiB).
func TestAnswerSizeBoundedByEnvoy(t *testing.T) {
	const concurrent, maxGrowthKiB = 40, 40 << 10
	e := privateEnvoy(t, harness.Config{
		WasmLogLevel: "info", // 40 × the debug lines are not what is measured
		Scenarios:    []harness.Scenario{{Name: "huge", Plugin: plugin(map[string]any{"timeout": "5s"})}},
	})
	if rt, err := e.Admin(testCtx(t), "/runtime"); err != nil {
		t.Fatal(err)
	} else {
		var v struct {
			Entries map[string]struct {
				FinalValue string `json:"final_value"`
			} `json:"entries"`
		}
		_ = json.Unmarshal([]byte(rt), &v)
		if got := v.Entries["http.async_response_buffer_limit"].FinalValue; got != fmt.Sprint(harness.DefaultAsyncResponseBufferLimit) {
			t.Errorf("Envoy's runtime has http.async_response_buffer_limit %q, want %d", got, harness.DefaultAsyncResponseBufferLimit)
		}
	}
	// Warm up both workers' VMs and connection pools with ordinary traffic,
	// so that the figure before includes what any traffic costs.
	expectServing(t, e, "huge")
	before, err := e.RSSKiB()
	if err != nil {
		t.Fatal(err)
	}

	tokens := make([]string, concurrent)
	for i := range tokens {
		tokens[i] = suite.ids.Issue(fixtures.TokenOptions{Fault: fixtures.FaultHuge})
	}
	statuses := make([]int, concurrent)
	errs := make([]error, concurrent)
	var peak int
	var peakMu sync.Mutex
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() { // RSS every 10 ms while the answers are in flight
		defer close(sampled)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
			if rss, err := e.RSSKiB(); err == nil {
				peakMu.Lock()
				peak = max(peak, rss)
				peakMu.Unlock()
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	}()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range concurrent {
		wg.Go(func() {
			c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			<-start
			statuses[i], _, errs[i] = send(c, e.URL("huge")+"/huge", tokens[i])
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	took := time.Since(t0)
	close(stopSampling)
	<-sampled
	time.Sleep(time.Second) // let Envoy finish the deferred deletes of the reset calls
	after, err := e.RSSKiB()
	if err != nil {
		t.Fatal(err)
	}

	count := map[string]int{}
	for i := range statuses {
		if errs[i] != nil {
			count["error"]++
			t.Errorf("request %d: %v", i, errs[i])
		} else {
			count[fmt.Sprint(statuses[i])]++
		}
	}
	t.Logf("%d concurrent %d-byte answers: statuses %v, all answered in %s", concurrent, suite.ids.HugeBytes, count, took.Round(time.Millisecond))
	t.Logf("Envoy RSS: before %.1f MiB, peak %.1f MiB (%+.1f), after %.1f MiB (%+.1f); bound +%d MiB",
		float64(before)/1024, float64(peak)/1024, float64(peak-before)/1024, float64(after)/1024, float64(after-before)/1024, maxGrowthKiB>>10)
	if count["502"] != concurrent {
		t.Errorf("statuses %v, want %d × 502", count, concurrent)
	}
	if peak-before > maxGrowthKiB || after-before > maxGrowthKiB {
		t.Errorf("Envoy's RSS grew by %d KiB at its peak and %d KiB after, beyond the %d KiB bound: is http.async_response_buffer_limit in the bootstrap?",
			peak-before, after-before, maxGrowthKiB)
	}
	var calls int
	for _, tok := range tokens {
		calls += len(suite.ids.IntrospectionsOf(tok))
	}
	if calls != concurrent {
		t.Errorf("the IdS got %d introspections for %d tokens, want one each", calls, concurrent)
	}
	expectServing(t, e, "huge")
}

// TestCircuitBreakerRefusalIs502: when Envoy's circuit breakers on the
// identity-server cluster refuse a call, the filter answers 502 and the call
// never reaches the server. With max_pending_requests 2 and connections to
// spare, a burst of new tokens on an idle pool overflows: over HTTP/1.1 a call
// is pending while its connection is being opened, not only when every
// connection is busy (which is why envoy.yaml gives pending as much room as
// requests).
func TestCircuitBreakerRefusalIs502(t *testing.T) {
	const burst = 30
	e := privateEnvoy(t, harness.Config{
		CircuitBreakers: map[string]harness.CircuitBreakers{"ids": {MaxConnections: 256, MaxRequests: 256, MaxPendingRequests: 2}},
		Scenarios:       []harness.Scenario{{Name: "breaker", Plugin: plugin(map[string]any{"timeout": "5s"})}},
	})
	tokens := make([]string, burst)
	for i := range tokens {
		tokens[i] = suite.ids.Issue(fixtures.TokenOptions{Delay: 200 * time.Millisecond})
	}
	statuses := make([]int, burst)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range burst {
		wg.Go(func() {
			c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			<-start
			statuses[i], _, _ = send(c, e.URL("breaker")+"/breaker", tokens[i])
		})
	}
	close(start)
	wg.Wait()
	count := map[int]int{}
	calls := 0
	for i, s := range statuses {
		count[s]++
		if n := len(suite.ids.IntrospectionsOf(tokens[i])); s == http.StatusBadGateway && n != 0 {
			t.Errorf("request %d got 502 but its token reached the IdS %d times", i, n)
		} else {
			calls += n
		}
	}
	overflow, err := e.Counter(testCtx(t), "cluster.ids.upstream_rq_pending_overflow")
	if err != nil {
		t.Fatal(err)
	}
	cx, _ := e.Counter(testCtx(t), "cluster.ids.upstream_cx_total")
	t.Logf("%d simultaneous new tokens, max_pending_requests 2: statuses %v, pending overflows %d, connections opened %d, introspections %d",
		burst, count, overflow, cx, calls)
	if count[http.StatusBadGateway] == 0 || count[http.StatusBadGateway] != overflow {
		t.Errorf("%d × 502 and %d pending overflows: want some, and as many of each", count[http.StatusBadGateway], overflow)
	}
	if count[http.StatusOK]+count[http.StatusBadGateway] != burst {
		t.Errorf("statuses %v: want only 200 and 502", count)
	}
	if calls != count[http.StatusOK] {
		t.Errorf("the IdS got %d introspections for %d answered tokens", calls, count[http.StatusOK])
	}
}
