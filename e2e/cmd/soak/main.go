// Command soak is `make soak`: it drives the phantom token filter in a real
// Envoy (1.40, V8, two workers, started through func-e) at a fixed rate for a
// fixed time with a rotating mix of traffic, and checks that nothing drifts:
//
//   - every response has the status its class must get (spec §4): hot and new
//     valid tokens 200 with the identity server's JWT at the upstream, invalid
//     tokens 401, identity-server errors and hostile answers (500, timeout,
//     reset, deep JSON, 10 MB, over max_jwt_size) 502, its 503 503, …;
//   - Envoy's log has no line saying a wasm VM failed;
//   - Envoy's RSS is flat after warm-up: the last sample minus the one at the
//     warm-up mark (20% of the run) stays under a stated bound.
//
// It prints requests, statuses and latency percentiles per class, RSS
// samples, the introspections the identity server saw and the filter's stats,
// and exits 1 on any failed check. All traffic is on loopback; the number of
// requests (rate × duration) and requests in flight are bounded.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
	"github.com/phantom-token/envoy-phantom-token/e2e/harness"
)

var (
	duration    = flag.Duration("duration", 10*time.Minute, "how long to drive load")
	rate        = flag.Int("rate", 200, "requests per second (fixed, open loop)")
	maxInFlight = flag.Int("max-in-flight", 256, "requests in flight at most; a request that would exceed it is not sent and fails the soak")
	rssBoundMiB = flag.Float64("rss-bound-mib", 16, "largest RSS growth allowed from the warm-up mark to the end, MiB")
	warmupFrac  = flag.Float64("warmup", 0.2, "share of the run before the RSS reference sample")
	clients     = flag.Int("clients", 8, "independent keep-alive HTTP clients, so that both workers get connections")
)

// Settings of the soak's Envoy and identity server.
const (
	listener      = "soak"
	clientID      = "soak-gateway"
	pluginTimeout = time.Second                             // the filter's callout timeout
	slowDelay     = 10 * pluginTimeout                      // a slow IdS holds its answer far past the timeout
	maxJWTSize    = 64 << 10                                // so that 10,000-level nests reach the module's parser
	bufferLimit   = harness.DefaultAsyncResponseBufferLimit // as in envoy.yaml; above max_jwt_size
	oversizeBytes = 80 << 10                                // a JWT over max_jwt_size but under the buffer limit
	hugeBytes     = 10_000_000                              // an answer Envoy must cut off at the buffer limit
	cacheEntries  = 1024
	hotTokens     = 16
	requestLimit  = 5 * time.Second // a client gives up after this: a hang is a failure
)

// class is one kind of request in the mix.
type class struct {
	name   string
	weight int // requests per round of the schedule
	status int // the status it must get
	// calls is true when each request of the class costs one introspection
	// (its token is new, or its answer is never cached).
	calls bool
	// token returns the Authorization value for the n-th request of the class
	// ("" for none).
	token func(n int) string
	// preflight sends a CORS preflight instead of a GET.
	preflight bool
	// jwtUpstream: a 200 must carry the IdS's JWT to the upstream.
	jwtUpstream bool
}

// outcome is what one request got.
type outcome struct {
	status  int
	latency time.Duration
	problem string // why the response is wrong beyond its status, if it is
}

// classStats accumulates the outcomes of one class.
type classStats struct {
	mu        sync.Mutex
	sent      int
	statuses  map[int]int
	problems  map[string]int
	latencies []time.Duration
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	failures, err := run()
	if err != nil {
		log.Printf("soak: %v", err)
		os.Exit(1)
	}
	if len(failures) > 0 {
		fmt.Printf("\n== FAIL (%d)\n", len(failures))
		for _, f := range failures {
			fmt.Printf("FAIL  %s\n", f)
		}
		os.Exit(1)
	}
	fmt.Printf("\n== PASS\n")
}

func run() (failures []string, err error) {
	if *rate < 1 || *rate > 2000 || *duration <= 0 || *duration > 24*time.Hour || *maxInFlight < 1 {
		return nil, errors.New("need 1 ≤ -rate ≤ 2000, 0 < -duration ≤ 24h, -max-in-flight ≥ 1")
	}
	envoyPath, wasmPath := os.Getenv("ENVOY_PATH"), os.Getenv("WASM_PATH")
	if envoyPath == "" || wasmPath == "" {
		return nil, errors.New("ENVOY_PATH and WASM_PATH must be set: run `make soak` from the repository root")
	}
	began := time.Now()

	echo, err := fixtures.StartEcho(fixtures.AnyPort)
	if err != nil {
		return nil, err
	}
	defer echo.Close()
	echo.SetRecording(false) // the soak checks what the echo sends back instead
	secret := fixtures.RandomToken()
	ids, err := fixtures.StartIdS(fixtures.AnyPort, map[string]string{clientID: secret})
	if err != nil {
		return nil, err
	}
	defer ids.Close()
	ids.SetHistory(false) // keeps the soak's own memory flat
	ids.SlowDelay, ids.OversizeBytes, ids.HugeBytes = slowDelay, oversizeBytes, hugeBytes

	dir, err := os.MkdirTemp("", "phantom-soak-")
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	envoy, err := harness.Start(ctx, harness.Config{
		EnvoyPath:                envoyPath,
		WasmPath:                 wasmPath,
		Dir:                      dir,
		Clusters:                 map[string]string{"echo": echo.Addr.String(), "ids": ids.Addr.String()},
		Upstream:                 "echo",
		Concurrency:              2,
		WasmLogLevel:             "info", // debug lines for every request would fill the disk in 10 minutes
		AsyncResponseBufferLimit: bufferLimit,
		// As in envoy.yaml.
		CircuitBreakers: map[string]harness.CircuitBreakers{"ids": {MaxConnections: 256, MaxRequests: 256, MaxPendingRequests: 256}},
		Scenarios: []harness.Scenario{{Name: listener, Plugin: map[string]any{
			"introspection_url": ids.URL + fixtures.IntrospectionPath,
			"cluster":           "ids",
			"client_id":         clientID,
			"client_secret":     secret,
			"timeout":           pluginTimeout.String(),
			"max_jwt_size":      maxJWTSize,
			"cache_max_entries": cacheEntries,
		}}},
	})
	if err != nil {
		return nil, fmt.Errorf("starting Envoy (work directory %s kept): %w", dir, err)
	}
	defer func() {
		if stopErr := envoy.Stop(); stopErr != nil {
			failures = append(failures, fmt.Sprintf("Envoy ended with an error: %v", stopErr))
		}
		if err != nil || len(failures) > 0 {
			fmt.Printf("Envoy's work directory (bootstrap, log) is kept: %s\n", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}()
	pid, err := envoy.PID()
	if err != nil {
		return nil, err
	}
	base := envoy.URL(listener)

	classes := mix(ids)
	schedule := buildSchedule(classes)
	perRound := len(schedule)
	fmt.Printf("== Soak: %s at %d req/s (%d requests), Envoy %s with 2 workers, %d clients\n",
		*duration, *rate, int(duration.Seconds()*float64(*rate)), envoyVersion(ctx, envoy), *clients)
	fmt.Printf("filter: timeout %s, max_jwt_size %d, cache_max_entries %d; Envoy: http.async_response_buffer_limit %d, ids circuit breakers 256/256/256 (connections/requests/pending)\n",
		pluginTimeout, maxJWTSize, cacheEntries, bufferLimit)
	fmt.Printf("mix per round of %d requests:", perRound)
	for _, c := range classes {
		fmt.Printf(" %s %d,", c.name, c.weight)
	}
	fmt.Println()

	hc := make([]*http.Client, *clients)
	for i := range hc {
		hc[i] = &http.Client{
			Timeout:       requestLimit,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport:     &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
		}
	}
	// Warm the hot tokens into the cache (and both workers' VMs) before the clock starts.
	hot := classes[0]
	for i := range hotTokens {
		if o := send(hc[i%len(hc)], base, hot, i, ids); o.status != http.StatusOK || o.problem != "" {
			return nil, fmt.Errorf("warming hot token %d: status %d %s", i, o.status, o.problem)
		}
	}
	cxBefore := workerConnections(ctx, envoy)

	stats := make([]*classStats, len(classes))
	for i := range stats {
		stats[i] = &classStats{statuses: map[int]int{}, problems: map[string]int{}}
	}
	introspections0 := ids.Introspections()
	rss0, err := harness.RSSKiB(pid)
	if err != nil {
		return nil, err
	}

	// RSS samples: about 20 over the run, one at the warm-up mark.
	type rssSample struct {
		at  time.Duration
		kib int
	}
	var samples []rssSample
	var samplesMu sync.Mutex
	interval := max(time.Second, min(30*time.Second, *duration/20))
	warmMark := time.Duration(float64(*duration) * *warmupFrac)
	stopSampling, sampled := make(chan struct{}), make(chan struct{})
	start := time.Now()
	go func() {
		defer close(sampled)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
			at := time.Since(start)
			if kib, err := harness.RSSKiB(pid); err == nil {
				samplesMu.Lock()
				samples = append(samples, rssSample{at, kib})
				samplesMu.Unlock()
			}
		}
	}()

	// The load: request i goes out at start + i/rate, whatever came back.
	total := int(duration.Seconds() * float64(*rate))
	sem := make(chan struct{}, *maxInFlight)
	var wg sync.WaitGroup
	var skipped atomic.Int64
	counters := make([]atomic.Int64, len(classes))
	step := time.Second / time.Duration(*rate)
	lastProgress := start
	// Unexpected outcomes per window of the run, to tell a moment (a stall of
	// the machine) from a drift; and how late the generator itself sent, which
	// shows such a stall from outside Envoy.
	window := max(time.Second, *duration/60)
	unexpected := make([]atomic.Int64, int(*duration/window)+2)
	var maxLag time.Duration
	lateSends := 0
	for i := range total {
		due := start.Add(time.Duration(i) * step)
		time.Sleep(time.Until(due))
		if lag := time.Since(due); lag > 100*time.Millisecond {
			lateSends++
			maxLag = max(maxLag, lag)
		}
		ci := schedule[i%perRound]
		n := int(counters[ci].Add(1)) - 1
		select {
		case sem <- struct{}{}:
		default:
			skipped.Add(1)
			unexpected[min(int(time.Since(start)/window), len(unexpected)-1)].Add(1)
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			o := send(hc[i%len(hc)], base, classes[ci], n, ids)
			if o.status != classes[ci].status || o.problem != "" {
				unexpected[min(int(due.Sub(start)/window), len(unexpected)-1)].Add(1)
			}
			s := stats[ci]
			s.mu.Lock()
			s.sent++
			s.statuses[o.status]++
			if o.problem != "" {
				s.problems[o.problem]++
			}
			s.latencies = append(s.latencies, o.latency)
			s.mu.Unlock()
		})
		if time.Since(lastProgress) >= time.Minute {
			lastProgress = time.Now()
			fmt.Printf("… %s: %d requests sent\n", time.Since(start).Round(time.Second), i+1)
		}
	}
	loadTook := time.Since(start)
	wg.Wait()
	drained := time.Since(start)
	time.Sleep(time.Second) // let Envoy settle before the last sample
	close(stopSampling)
	<-sampled
	rssEnd, err := harness.RSSKiB(pid)
	if err != nil {
		return nil, err
	}
	samples = append(samples, rssSample{time.Since(start), rssEnd})
	introspections := ids.Introspections() - introspections0
	cxAfter := workerConnections(ctx, envoy)

	// Per class.
	fmt.Printf("\n== Requests: %d sent in %s (%.1f req/s), all answered after %s; %d not sent (over -max-in-flight)\n",
		total-int(skipped.Load()), loadTook.Round(time.Millisecond), float64(total-int(skipped.Load()))/loadTook.Seconds(), drained.Round(time.Millisecond), skipped.Load())
	fmt.Printf("%-18s %7s %6s %-26s %9s %9s   %s\n", "class", "sent", "want", "statuses", "p50 ms", "p99 ms", "problems")
	var all []time.Duration
	expectedCalls, hotSent := 0, 0
	for i, c := range classes {
		s := stats[i]
		all = append(all, s.latencies...)
		p50, p99 := percentile(s.latencies, 0.50), percentile(s.latencies, 0.99)
		fmt.Printf("%-18s %7d %6d %-26s %9.2f %9.2f   %s\n", c.name, s.sent, c.status, formatCounts(s.statuses), ms(p50), ms(p99), formatProblems(s.problems))
		if wrong := s.sent - s.statuses[c.status]; wrong > 0 {
			failures = append(failures, fmt.Sprintf("%s: %d of %d requests did not get %d (%s)", c.name, wrong, s.sent, c.status, formatCounts(s.statuses)))
		}
		for p, n := range s.problems {
			failures = append(failures, fmt.Sprintf("%s: %d × %s", c.name, n, p))
		}
		if c.calls {
			expectedCalls += s.sent
		}
		if c.name == hot.name {
			hotSent = s.sent
		}
	}
	fmt.Printf("%-18s %7d %6s %-26s %9.2f %9.2f\n", "all", len(all), "", "", ms(percentile(all, 0.5)), ms(percentile(all, 0.99)))
	fmt.Printf("load generator: %d requests sent over 100 ms late (largest lag %s): a stall of this machine, not of Envoy alone, when not 0\n",
		lateSends, maxLag.Round(time.Millisecond))
	var windows []string
	for w := range unexpected {
		if n := unexpected[w].Load(); n > 0 && len(windows) < 20 {
			windows = append(windows, fmt.Sprintf("%s–%s: %d", time.Duration(w)*window, time.Duration(w+1)*window, n))
		}
	}
	if len(windows) > 0 {
		fmt.Printf("unexpected outcomes (and requests not sent) by time sent: %s\n", strings.Join(windows, ", "))
	}
	if n := skipped.Load(); n > 0 {
		failures = append(failures, fmt.Sprintf("%d requests not sent: more than %d in flight (answers too slow or hanging)", n, *maxInFlight))
	}

	// Introspections: one per request of a calling class, plus the hot
	// tokens' misses (evicted by another token's record, or past the TTL).
	hotMisses := int(introspections) - expectedCalls
	fmt.Printf("\n== Identity server: %d introspections: %d for requests that must each cost one, %d for the %d hot requests (%.1f%%)\n",
		introspections, expectedCalls, hotMisses, hotSent, 100*float64(hotMisses)/float64(max(hotSent, 1)))
	if hotMisses < 0 {
		failures = append(failures, fmt.Sprintf("the IdS saw %d introspections, fewer than the %d requests that each need one", introspections, expectedCalls))
	}
	if hotSent > 0 && hotMisses > hotSent/10 {
		failures = append(failures, fmt.Sprintf("%d introspections for %d hot requests: the cache serves fewer than 90%%", hotMisses, hotSent))
	}

	// Workers.
	fmt.Printf("\n== Connections per worker: %d, %d (%d, %d opened during the run; the clients keep theirs alive)\n",
		cxAfter[0], cxAfter[1], cxAfter[0]-cxBefore[0], cxAfter[1]-cxBefore[1])
	if cxAfter[0] == 0 || cxAfter[1] == 0 {
		failures = append(failures, "one worker got no connection: the soak did not drive both VMs")
	}

	// Memory.
	fmt.Printf("\n== Envoy RSS (MiB): before the load %.1f\n", float64(rss0)/1024)
	var mark *rssSample
	for i := range samples {
		s := &samples[i]
		tag := ""
		if mark == nil && s.at >= warmMark {
			mark, tag = s, "  ← warm-up mark"
		}
		fmt.Printf("%9s %8.1f%s\n", s.at.Round(time.Second), float64(s.kib)/1024, tag)
	}
	if mark == nil || len(samples) < 2 {
		failures = append(failures, "too few RSS samples")
	} else {
		growth := float64(rssEnd-mark.kib) / 1024
		peak := slices.MaxFunc(samples, func(a, b rssSample) int { return a.kib - b.kib })
		fmt.Printf("end − warm-up mark: %+.1f MiB (bound %.0f MiB); peak %.1f MiB at %s\n", growth, *rssBoundMiB, float64(peak.kib)/1024, peak.at.Round(time.Second))
		if growth > *rssBoundMiB {
			failures = append(failures, fmt.Sprintf("Envoy's RSS grew %.1f MiB after warm-up, over the %.0f MiB bound", growth, *rssBoundMiB))
		}
	}

	// Envoy's view.
	printStats(ctx, envoy)
	logText, err := envoy.Log()
	if err != nil {
		return failures, err
	}
	vmFailures := harness.VMFailures(logText)
	fmt.Printf("\n== Envoy log: %d lines, %d wasm VM failure lines\n", strings.Count(logText, "\n"), len(vmFailures))
	for i, l := range vmFailures {
		if i == 5 {
			fmt.Printf("…\n")
			break
		}
		fmt.Printf("%.300s\n", l)
	}
	if len(vmFailures) > 0 {
		failures = append(failures, fmt.Sprintf("%d wasm VM failure lines in Envoy's log", len(vmFailures)))
	}
	fmt.Printf("\nsoak took %s\n", time.Since(began).Round(time.Second))
	return failures, nil
}

// mix is the traffic: the first class is the hot one.
func mix(ids *fixtures.IdS) []class {
	hot := make([]string, hotTokens)
	for i := range hot {
		// Outlive any soak: a hot token never turns inactive mid-run.
		hot[i] = ids.Issue(fixtures.TokenOptions{Scope: "read", Lifetime: *duration + time.Hour})
	}
	issue := func(o fixtures.TokenOptions) func(int) string {
		return func(int) string { return ids.Issue(o) }
	}
	deep := []fixtures.Fault{fixtures.FaultDeepObject, fixtures.FaultDeepJWTPayload, fixtures.FaultDeepJWTHeader, fixtures.FaultDeepArray}
	return []class{
		{name: "hot", weight: 10, status: 200, jwtUpstream: true, token: func(n int) string { return hot[n%len(hot)] }},
		{name: "new", weight: 3, status: 200, jwtUpstream: true, calls: true, token: issue(fixtures.TokenOptions{Scope: "read"})},
		{name: "invalid", weight: 2, status: 401, calls: true, token: func(int) string { return fixtures.RandomToken() }},
		{name: "malformed", weight: 1, status: 401, token: func(int) string { return "not/a\"token" }},
		{name: "no-token", weight: 1, status: 401, token: func(int) string { return "" }},
		{name: "preflight", weight: 1, status: 200, preflight: true, token: func(int) string { return "" }},
		{name: "expired-jwt", weight: 1, status: 401, calls: true, token: issue(fixtures.TokenOptions{Fault: fixtures.FaultExpiredJWT})},
		{name: "inactive-json", weight: 1, status: 401, calls: true, token: issue(fixtures.TokenOptions{Fault: fixtures.FaultInactiveJSON})},
		{name: "ids-500", weight: 1, status: 502, calls: true, token: issue(fixtures.TokenOptions{Status: 500})},
		{name: "ids-503", weight: 1, status: 503, calls: true, token: issue(fixtures.TokenOptions{Status: 503})},
		{name: "ids-429", weight: 1, status: 500, calls: true, token: issue(fixtures.TokenOptions{Status: 429})},
		{name: "ids-timeout", weight: 1, status: 502, calls: true, token: issue(fixtures.TokenOptions{Fault: fixtures.FaultSlow})},
		{name: "ids-reset", weight: 1, status: 502, calls: true, token: issue(fixtures.TokenOptions{Fault: fixtures.FaultReset})},
		{name: "empty-200", weight: 1, status: 502, calls: true, token: issue(fixtures.TokenOptions{Fault: fixtures.FaultEmpty})},
		{name: "deep-json", weight: 2, status: 502, calls: true, token: func(n int) string {
			return ids.Issue(fixtures.TokenOptions{Fault: deep[n%len(deep)], Depth: fixtures.DefaultDepth})
		}},
		{name: "oversize-jwt", weight: 1, status: 502, calls: true, token: issue(fixtures.TokenOptions{Fault: fixtures.FaultOversize})},
		{name: "huge-10MB", weight: 1, status: 502, calls: true, token: issue(fixtures.TokenOptions{Fault: fixtures.FaultHuge})},
	}
}

// buildSchedule spreads the classes over one round by their weights, so that
// the heavy classes are interleaved with the rest rather than in runs.
func buildSchedule(classes []class) []int {
	left := make([]int, len(classes))
	total := 0
	for i, c := range classes {
		left[i] = c.weight
		total += c.weight
	}
	var out []int
	for len(out) < total {
		for i := range classes {
			if left[i] > 0 {
				out = append(out, i)
				left[i]--
			}
		}
	}
	return out
}

// send makes the n-th request of class c and judges the answer.
func send(hc *http.Client, base string, c class, n int, ids *fixtures.IdS) outcome {
	method := http.MethodGet
	if c.preflight {
		method = http.MethodOptions
	}
	req, err := http.NewRequest(method, base+"/soak/"+c.name, nil)
	if err != nil {
		return outcome{problem: "bad request: " + err.Error()}
	}
	if c.preflight {
		req.Header.Set("Origin", "https://app.example")
		req.Header.Set("Access-Control-Request-Method", "GET")
	}
	token := c.token(n)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	t0 := time.Now()
	res, err := hc.Do(req)
	if err != nil {
		return outcome{latency: time.Since(t0), problem: "no answer (" + errorKind(err) + ")"}
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	_ = res.Body.Close()
	o := outcome{status: res.StatusCode, latency: time.Since(t0)}
	if err != nil {
		o.problem = "body cut short"
		return o
	}
	if res.StatusCode != http.StatusOK {
		// The filter's local answers are JSON (spec §4); Envoy's own are not.
		if ct := res.Header.Get("Content-Type"); res.StatusCode == c.status && !strings.HasPrefix(ct, "application/json") {
			o.problem = "error answer not JSON (not the filter's)"
		}
		return o
	}
	// A 200 comes from the echo upstream: check what it saw. Never print it:
	// it holds the JWT.
	var seen fixtures.Request
	if json.Unmarshal(body, &seen) != nil || seen.Method != method {
		o.problem = "200 not from the upstream"
		return o
	}
	if c.status != http.StatusOK {
		return o // the wrong status is the failure; what the upstream saw is not checked
	}
	auth := seen.Header.Values("Authorization")
	switch {
	case !c.jwtUpstream:
		if len(auth) != 0 {
			o.problem = "Authorization reached the upstream"
		}
	case len(auth) != 1 || !strings.HasPrefix(auth[0], "Bearer "):
		o.problem = "upstream did not get exactly one Bearer"
	case auth[0] == "Bearer "+token:
		o.problem = "upstream got the opaque token"
	default:
		if _, err := ids.Signer.Verify(strings.TrimPrefix(auth[0], "Bearer ")); err != nil {
			o.problem = "upstream JWT is not the IdS's"
		}
	}
	return o
}

// errorKind names a client error without its text, which holds the URL only,
// but is long.
func errorKind(err error) string {
	var ue *url.Error
	switch {
	case errors.As(err, &ue) && ue.Timeout():
		return "timeout"
	case strings.Contains(err.Error(), "reset"):
		return "reset"
	case strings.Contains(err.Error(), "EOF"):
		return "EOF"
	}
	return "error"
}

func workerConnections(ctx context.Context, envoy *harness.Envoy) [2]int {
	var n [2]int
	for w := range n {
		n[w], _ = envoy.Counter(ctx, fmt.Sprintf("listener.%s.worker_%d.downstream_cx_total", listener, w))
	}
	return n
}

func envoyVersion(ctx context.Context, envoy *harness.Envoy) string {
	body, err := envoy.Admin(ctx, "/server_info")
	if err != nil {
		return "unknown"
	}
	var info struct {
		Version string `json:"version"`
	}
	if json.Unmarshal([]byte(body), &info) != nil {
		return "unknown"
	}
	// "<commit>/<version>/<status>/<build>/<ssl>"
	if parts := strings.Split(info.Version, "/"); len(parts) > 1 {
		return parts[1]
	}
	return info.Version
}

// printStats prints the filter's counters and the identity-server cluster's
// overflow counters.
func printStats(ctx context.Context, envoy *harness.Envoy) {
	fmt.Printf("\n== Envoy stats\n")
	for _, filter := range []string{"phantom_token\\.(requests|cache|introspection)\\.[a-z0-9_]+$", "^cluster\\.ids\\.(upstream_rq_total|upstream_rq_pending_overflow|upstream_cx_overflow|upstream_rq_timeout|upstream_rq_rx_reset|upstream_cx_total)$"} {
		body, err := envoy.Admin(ctx, "/stats?filter="+url.QueryEscape(filter))
		if err != nil {
			fmt.Printf("cannot read stats: %v\n", err)
			continue
		}
		lines := strings.Split(strings.TrimSpace(body), "\n")
		sort.Strings(lines)
		for _, l := range lines {
			if l != "" && !strings.HasSuffix(l, ": 0") {
				fmt.Println(l)
			}
		}
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func formatCounts(m map[int]int) string {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d×%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func formatProblems(m map[string]int) string {
	var parts []string
	for p, n := range m {
		parts = append(parts, fmt.Sprintf("%d× %s", n, p))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}
