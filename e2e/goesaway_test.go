package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
	"github.com/phantom-token/envoy-phantom-token/e2e/harness"
)

// TestAClientThatGoesAwayWhileItsRequestWaits: Envoy ends a request with
// proxy_on_done, the one per-request end the module exports, also while the
// request waits on an introspection. The request that went away is let go
// and nothing is sent for it; another request waiting on the same call gets
// the answer; when every request that needed the call went away, its answer
// still fills the cache; the VM stays up.
func TestAClientThatGoesAwayWhileItsRequestWaits(t *testing.T) {
	const delay = 800 * time.Millisecond
	t.Run("one of two waiters goes away, the other gets the answer", func(t *testing.T) {
		t.Parallel()
		tok := suite.ids.Issue(fixtures.TokenOptions{Delay: delay})
		gone := goAway(t, tok, 200*time.Millisecond)
		time.Sleep(50 * time.Millisecond)
		r := call(t, client, scDefault, http.MethodGet, bearer(tok), "")
		if r.status != http.StatusOK || len(r.upstream) != 1 {
			t.Fatalf("the request that stayed: status %d, %d upstream requests; want 200 and 1", r.status, len(r.upstream))
		}
		if got := r.upstream[0].Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer "+suite.ids.JWTOf(tok) {
			t.Errorf("the upstream got Authorization %q, want the JWT", got)
		}
		if err := <-gone; err == nil {
			t.Error("the request that went away was answered")
		}
		if n := len(suite.ids.IntrospectionsOf(tok)); n != 1 {
			t.Errorf("%d introspections, want 1", n)
		}
	})
	t.Run("every waiter goes away: the answer still fills the cache", func(t *testing.T) {
		t.Parallel()
		tok := suite.ids.Issue(fixtures.TokenOptions{Delay: delay})
		if err := <-goAway(t, tok, 200*time.Millisecond); err == nil {
			t.Fatal("the request that went away was answered")
		}
		time.Sleep(delay)  // the call's answer comes to the plugin and fills the cache
		for i := range 4 { // new connections: both workers
			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			start := time.Now()
			r := call(t, c, scDefault, http.MethodGet, bearer(tok), "")
			if r.status != http.StatusOK {
				t.Fatalf("request %d after: status %d, want 200", i, r.status)
			}
			if took := time.Since(start); took >= delay {
				t.Errorf("request %d after took %v: it waited on a call, not on the cache", i, took)
			}
		}
		if n := len(suite.ids.IntrospectionsOf(tok)); n != 1 {
			t.Errorf("%d introspections, want 1 (the call of the request that went away)", n)
		}
	})
	t.Cleanup(func() {
		log, err := suite.envoy.Log()
		if err != nil {
			t.Fatal(err)
		}
		if failures := harness.VMFailures(log); len(failures) > 0 {
			t.Errorf("Envoy's log shows %d wasm VM failure lines, the first: %.400s", len(failures), failures[0])
		}
	})
}

// goAway sends a request with tok that the client abandons after wait, while
// it waits on its introspection: its connection closes, and Envoy resets the
// stream. The channel gets the request's error (nil if it was answered).
func goAway(t *testing.T, tok string, wait time.Duration) <-chan error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, suite.envoy.URL(scDefault)+uniquePath(t), nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	gone := make(chan error, 1)
	go func() {
		defer cancel()
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		res, err := c.Do(req)
		if err == nil {
			res.Body.Close()
		}
		gone <- err
	}()
	return gone
}
