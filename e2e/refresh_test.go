package e2e

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
	"github.com/phantom-token/envoy-phantom-token/e2e/harness"
)

// scRefresh refreshes a hot token in the last half of its entry's life.
const scRefresh = "refresh-ahead"

func refreshScenario() harness.Scenario {
	return harness.Scenario{Name: scRefresh, Plugin: plugin(map[string]any{"refresh_ahead": 0.5})}
}

// TestRefreshAheadNoRequestWaits: a hot token whose answers live 2 s and
// take 400 ms to come. With refresh_ahead, after the first request none of
// the requests of 4 clients over 5 s, on both workers, waits for an
// introspection, and the identity server sees about one call per refresh
// (one lease for all workers), not one per entry end per worker. Without
// it, requests wait at each entry's end: the same load on the default
// listener shows it, so the test can tell the two apart.
func TestRefreshAheadNoRequestWaits(t *testing.T) {
	const delay = 400 * time.Millisecond
	const run = 5 * time.Second
	for _, tc := range []struct {
		name     string
		scenario string
		refresh  bool
	}{
		{"refresh_ahead 0.5: no request waits", scRefresh, true},
		{"without refresh_ahead: requests wait at each entry's end", scDefault, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tok := suite.ids.Issue(fixtures.TokenOptions{MaxAge: 2 * time.Second, Delay: delay})
			if r := call(t, client, tc.scenario, http.MethodGet, bearer(tok), ""); r.status != http.StatusOK {
				t.Fatalf("warm-up: status %d", r.status)
			}
			var mu sync.Mutex
			var slowest time.Duration
			statuses := map[int]int{}
			var wg sync.WaitGroup
			end := time.Now().Add(run)
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := &http.Client{Timeout: 10 * time.Second}
					for time.Now().Before(end) {
						req, _ := http.NewRequest(http.MethodGet, suite.envoy.URL(tc.scenario)+"/refresh", nil)
						req.Header.Set("Authorization", "Bearer "+tok)
						start := time.Now()
						res, err := c.Do(req)
						took := time.Since(start)
						mu.Lock()
						if err != nil {
							statuses[0]++
						} else {
							statuses[res.StatusCode]++
							res.Body.Close()
						}
						slowest = max(slowest, took)
						mu.Unlock()
						time.Sleep(20 * time.Millisecond)
					}
				}()
			}
			wg.Wait()
			calls := len(suite.ids.IntrospectionsOf(tok))
			t.Logf("statuses %v, slowest %v, %d introspections in %v", statuses, slowest, calls, run)
			if len(statuses) != 1 || statuses[http.StatusOK] == 0 {
				t.Errorf("statuses %v, want only 200", statuses)
			}
			if tc.refresh {
				if slowest >= delay {
					t.Errorf("slowest request %v: one waited for an introspection (%v)", slowest, delay)
				}
				// One refresh about every 1.4 s (due at half of 2 s, 400 ms
				// to answer), for all workers together.
				if calls < 3 || calls > 7 {
					t.Errorf("%d introspections in %v, want one per refresh (3 to 7)", calls, run)
				}
				return
			}
			if slowest < delay {
				t.Errorf("slowest request %v: none waited, so this listener cannot show what refresh_ahead changes", slowest)
			}
		})
	}
}
