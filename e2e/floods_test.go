package e2e

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
)

// An entry is served only under the policy that stored it: listeners with
// the same vm_id, endpoint, cluster and client but other caching settings do
// not share entries.
func TestCachePolicyIsPartOfTheEntry(t *testing.T) {
	t.Run("an answer marked no-store, cached where Cache-Control is ignored, is not served where it is honoured", func(t *testing.T) {
		tok := suite.ids.Issue(fixtures.TokenOptions{CacheControl: "no-store"})
		if n := introspectionDelta(func() {
			for range 3 {
				expectStatus(t, call(t, client, scIgnoreCC, "GET", bearer(tok), ""), 200)
			}
		}); n != 1 {
			t.Errorf("ignore-cc: %d introspections for 3 requests, want 1", n)
		}
		if n := introspectionDelta(func() {
			for range 2 {
				expectStatus(t, call(t, client, scDefault, "GET", bearer(tok), ""), 200)
			}
		}); n != 2 {
			t.Errorf("default: %d introspections for 2 requests, want 2 (no-store honoured)", n)
		}
	})
	t.Run("an entry stored for 300s is not served where cache_max_ttl is 1s", func(t *testing.T) {
		tok := suite.ids.Issue(fixtures.TokenOptions{MaxAge: 300 * time.Second})
		expectStatus(t, call(t, client, scDefault, "GET", bearer(tok), ""), 200)
		if n := introspectionDelta(func() { expectStatus(t, call(t, client, scShortTTL, "GET", bearer(tok), ""), 200) }); n != 1 {
			t.Errorf("short-ttl used the default's entry: %d introspections, want 1", n)
		}
		time.Sleep(1200 * time.Millisecond)
		if n := introspectionDelta(func() { expectStatus(t, call(t, client, scShortTTL, "GET", bearer(tok), ""), 200) }); n != 1 {
			t.Errorf("short-ttl after 1.2s: %d introspections, want 1", n)
		}
		if n := introspectionDelta(func() { expectStatus(t, call(t, client, scDefault, "GET", bearer(tok), ""), 200) }); n != 0 {
			t.Errorf("default after 1.2s: %d introspections, want 0 (its entry lives 300s)", n)
		}
	})
}

func expectStatus(t *testing.T, r result, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d", r.status, status)
	}
}

// A preflight carries nothing to the upstream: no client copy of the upstream
// header. A request that looks like a preflight but carries Authorization, or
// whose Origin is empty, is authenticated.
func TestPreflightCarriesNothing(t *testing.T) {
	forged := fixtures.RandomToken() + ".forged.jwt"
	preflight := func(extra http.Header) http.Header {
		h := http.Header{"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"POST"}}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	t.Run("a client copy of a custom upstream header is removed", func(t *testing.T) {
		r := call(t, client, scEnv, "OPTIONS", preflight(http.Header{"X-Jwt": {forged, forged}}), "")
		if r.status != 200 || len(r.upstream) != 1 {
			t.Fatalf("preflight: status %d, %d upstream requests", r.status, len(r.upstream))
		}
		if v := r.upstream[0].Header.Values("X-Jwt"); len(v) != 0 {
			t.Errorf("the upstream got the client's x-jwt: %d values", len(v))
		}
	})
	t.Run("with Authorization it is authenticated", func(t *testing.T) {
		for _, sc := range []string{scDefault, scEnv} {
			r := call(t, client, sc, "OPTIONS", preflight(http.Header{"Authorization": {"Bearer " + forged}}), "")
			expectLocal(t, r, 401, body401)
		}
	})
	t.Run("an empty Origin is no preflight", func(t *testing.T) {
		r := call(t, client, scDefault, "OPTIONS", http.Header{"Origin": {""}, "Access-Control-Request-Method": {"POST"}}, "")
		expectLocal(t, r, 401, body401)
	})
	t.Run("an empty Access-Control-Request-Method is no preflight", func(t *testing.T) {
		r := call(t, client, scDefault, "OPTIONS", http.Header{"Origin": {"https://app.example"}, "Access-Control-Request-Method": {""}}, "")
		expectLocal(t, r, 401, body401)
	})
	// HTTP/1.1 strips a value made only of spaces or tabs; HTTP/2 lets it
	// through to the filter, which must not count it as a value.
	for _, proto := range []struct {
		name string
		c    *http.Client
	}{{"HTTP/1.1", client}, {"HTTP/2.0", h2cClient}} {
		for _, tt := range []struct {
			name   string
			header http.Header
		}{
			{"an Origin of spaces", http.Header{"Origin": {"   "}, "Access-Control-Request-Method": {"POST"}}},
			{"an Origin of a tab", http.Header{"Origin": {"\t"}, "Access-Control-Request-Method": {"POST"}}},
			{"an Access-Control-Request-Method of spaces", http.Header{"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"  "}}},
			{"an Access-Control-Request-Method of a tab", http.Header{"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"\t"}}},
		} {
			t.Run(proto.name+": "+tt.name+" is no preflight", func(t *testing.T) {
				expectLocal(t, sendOver(t, proto.c, proto.name, scDefault, "OPTIONS", tt.header, "", false), 401, body401)
			})
		}
		t.Run(proto.name+": a preflight passes", func(t *testing.T) {
			r := sendOver(t, proto.c, proto.name, scDefault, "OPTIONS", preflight(nil), "", false)
			if r.status != 200 || len(r.upstream) != 1 {
				t.Fatalf("status %d, %d upstream requests; want 200, 1", r.status, len(r.upstream))
			}
		})
		// A preflight has no body (Fetch): an OPTIONS with one is
		// authenticated, so nothing reaches the API without a token.
		t.Run(proto.name+": an OPTIONS with a body and a content-length is authenticated", func(t *testing.T) {
			expectLocal(t, sendOver(t, proto.c, proto.name, scDefault, "OPTIONS", preflight(nil), "hello", false), 401, body401)
		})
		t.Run(proto.name+": an OPTIONS with a body of unknown length is authenticated", func(t *testing.T) {
			// chunked over HTTP/1.1; DATA frames without content-length over HTTP/2
			expectLocal(t, sendOver(t, proto.c, proto.name, scDefault, "OPTIONS", preflight(nil), "hello", true), 401, body401)
		})
	}
}

// h2cClient speaks HTTP/2 without TLS (prior knowledge), which the
// listeners accept (the connection manager's codec is AUTO).
var h2cClient = func() *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Protocols: p}}
}()

// sendOver is call with a protocol check and a body that may go without a
// content-length (unknownLength: chunked over HTTP/1.1, DATA frames alone
// over HTTP/2).
func sendOver(t *testing.T, c *http.Client, proto, scenario, method string, header http.Header, body string, unknownLength bool) result {
	t.Helper()
	path := uniquePath(t)
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
		if unknownLength {
			rd = io.MultiReader(rd) // a reader whose length net/http cannot know
		}
	}
	req, err := http.NewRequest(method, suite.envoy.URL(scenario)+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header.Clone()
	r, got := roundTrip(t, c, req, path)
	if got != proto {
		t.Fatalf("answered over %s, want %s", got, proto)
	}
	return r
}

// hammer sends n requests over conns connections, each with the token
// tokenOf(i), and returns how many got each status.
func hammer(t *testing.T, scenario string, n, conns int, tokenOf func(i int) string) map[int]int {
	t.Helper()
	var next atomic.Int64
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second}
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				req, _ := http.NewRequest("GET", suite.envoy.URL(scenario)+"/flood", nil)
				req.Header.Set("Authorization", "Bearer "+tokenOf(i))
				status := 0
				if res, err := c.Do(req); err == nil {
					status = res.StatusCode
					if status == 503 && res.Header.Get("Retry-After") == "" {
						status = -503 // a 503 without Retry-After
					}
					res.Body.Close()
				}
				mu.Lock()
				statuses[status]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return statuses
}

// Floods reach the identity server only as far as the filter lets them: a
// replayed invalid token costs one call per cached verdict with the negative
// cache, random tokens one call each (never more), and calls in flight per
// worker are bounded by max_in_flight.
func TestFloods(t *testing.T) {
	invalid := fixtures.RandomToken() // never issued: the IdS answers it 204
	const replays = 2000
	t.Run("a replayed invalid token without the negative cache", func(t *testing.T) {
		var statuses map[int]int
		n := introspectionDelta(func() { statuses = hammer(t, scDefault, replays, 16, func(int) string { return invalid }) })
		t.Logf("%d replays of one invalid token at 16 connections: %d introspections, statuses %v", replays, n, statuses)
		if statuses[401] != replays {
			t.Errorf("statuses %v, want %d × 401", statuses, replays)
		}
	})
	t.Run("a replayed invalid token with the negative cache", func(t *testing.T) {
		var statuses map[int]int
		start := time.Now()
		n := introspectionDelta(func() { statuses = hammer(t, scNegative, replays, 16, func(int) string { return invalid + "-n" }) })
		took := time.Since(start)
		t.Logf("%d replays of one invalid token at 16 connections, negative cache 3s: %d introspections in %v, statuses %v", replays, n, took, statuses)
		if statuses[401] != replays {
			t.Errorf("statuses %v, want %d × 401", statuses, replays)
		}
		// One verdict per 3s, shared by both workers; a worker that looked
		// while the other's call was under way may call once more.
		if limit := 2 * (int64(took/(3*time.Second)) + 1); n > limit {
			t.Errorf("%d introspections, want at most %d", n, limit)
		}
	})
	t.Run("random tokens cost one call each, never more", func(t *testing.T) {
		const distinct = 2000
		tokens := make([]string, distinct)
		for i := range tokens {
			tokens[i] = fixtures.RandomToken()
		}
		var statuses map[int]int
		n := introspectionDelta(func() { statuses = hammer(t, scNegative, distinct, 16, func(i int) string { return tokens[i] }) })
		t.Logf("%d random tokens at 16 connections: %d introspections, statuses %v", distinct, n, statuses)
		if statuses[401] != distinct || n != distinct {
			t.Errorf("statuses %v and %d introspections, want %d of each", statuses, n, distinct)
		}
	})
	t.Run("max_in_flight bounds the calls of each worker", func(t *testing.T) {
		const concurrent = 64
		tokens := make([]string, concurrent)
		for i := range tokens {
			tokens[i] = suite.ids.Issue(fixtures.TokenOptions{Delay: 500 * time.Millisecond})
		}
		var statuses map[int]int
		n := introspectionDelta(func() {
			statuses = hammer(t, scBounded, concurrent, concurrent, func(i int) string { return tokens[i] })
		})
		t.Logf("%d concurrent new tokens, a slow IdS, max_in_flight 4 on 2 workers: %d introspections, statuses %v", concurrent, n, statuses)
		if n > 8 || statuses[200] != int(n) || statuses[503] != concurrent-int(n) {
			t.Errorf("%d introspections and statuses %v: want at most 8 calls, each a 200, the rest 503 with Retry-After", n, statuses)
		}
	})
}
