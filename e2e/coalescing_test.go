package e2e

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
)

// TestOneIntrospectionForConcurrentRequests: requests that carry the same
// fresh token at the same moment, on new connections spread over both
// workers, cost one introspection in all. The identity server holds its answer
// back, so every request is in the filter before it could be cached; several
// bursts give a race between the workers several chances to show.
func TestOneIntrospectionForConcurrentRequests(t *testing.T) {
	const n, bursts = 96, 4
	for b := range bursts {
		tok := suite.ids.Issue(fixtures.TokenOptions{Delay: 100 * time.Millisecond})
		var start, done sync.WaitGroup
		start.Add(1)
		statuses := make([]int, n)
		for i := range n {
			done.Add(1)
			go func() {
				defer done.Done()
				c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
				req, _ := http.NewRequest("GET", suite.envoy.URL(scDefault)+"/concurrent", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				start.Wait()
				if res, err := c.Do(req); err == nil {
					statuses[i] = res.StatusCode
					res.Body.Close()
				}
			}()
		}
		start.Done()
		done.Wait()
		for i, s := range statuses {
			if s != http.StatusOK {
				t.Fatalf("burst %d, request %d: status %d", b, i, s)
			}
		}
		if got := len(suite.ids.IntrospectionsOf(tok)); got != 1 {
			t.Errorf("burst %d: %d concurrent requests cost %d introspections, want 1", b, n, got)
		}
	}
}

// TestMetrics reads the filter's counters from Envoy's admin
// /stats/prometheus: each request is counted under its outcome.
func TestMetrics(t *testing.T) {
	read := func() map[string]int {
		body, err := suite.envoy.Admin(context.Background(), "/stats/prometheus")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for _, m := range regexp.MustCompile(`(?m)^(\S*phantom_token\S*?)(?:\{[^}]*\})? (\d+)$`).FindAllStringSubmatch(body, -1) {
			n, _ := strconv.Atoi(m[2])
			out[m[1]] += n
		}
		return out
	}
	// Counts of earlier tests reach Envoy on the next tick of their VMs
	// (once a second): let them land before taking the baseline.
	time.Sleep(1500 * time.Millisecond)
	before := read()
	tok := suite.ids.Issue(fixtures.TokenOptions{})
	call(t, client, scDefault, "GET", bearer(tok), "") // miss: allowed, one 2xx introspection
	call(t, client, scDefault, "GET", bearer(tok), "") // hit: allowed
	call(t, client, scDefault, "GET", nil, "")         // 401
	call(t, client, scDefault, "GET", bearer(suite.ids.Issue(fixtures.TokenOptions{Status: 503})), "")
	// The filter adds its counts to Envoy's stats on its tick, once a second.
	want := map[string]int{
		"phantom_token_requests_allowed": 2, "phantom_token_requests_401": 1, "phantom_token_requests_503": 1,
		"phantom_token_cache_hits": 1, "phantom_token_cache_misses": 2,
		"phantom_token_introspection_2xx": 1, "phantom_token_introspection_5xx": 1,
	}
	var after map[string]int
	delta := func(suffix string) int {
		for name, v := range after {
			if strings.HasSuffix(name, suffix) {
				return v - before[name]
			}
		}
		return -1
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		after = read()
		missing := 0
		for suffix, n := range want {
			if delta(suffix) != n {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			for suffix, n := range want {
				if got := delta(suffix); got != n {
					t.Errorf("%s went up by %d, want %d (-1: no such stat)", suffix, got, n)
				}
			}
			return
		}
	}
	// Envoy publishes histograms at its stats flush (every 5s by default).
	for deadline := time.Now().Add(8 * time.Second); delta("phantom_token_introspection_latency_ms_count") < 2; time.Sleep(250 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the latency histogram did not record the two introspections")
		}
		after = read()
	}
}
