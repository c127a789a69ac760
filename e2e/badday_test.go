package e2e

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
	"github.com/phantom-token/envoy-phantom-token/e2e/harness"
)

// The identity server's bad day (spec §10, issue 17): one Envoy with two
// workers under steady load, in front of an identity server of its own that
// is healthy, then down (connections refused), then slow (every answer after
// 2 s, past the filter's 1 s timeout), then back. Three listeners put the same
// API behind that server, each with its own hot tokens, sent again and again,
// and its own stream of new tokens:
//
//	stale        stale_if_error 45s: longer than the whole outage
//	stale-short  stale_if_error 5s: ends early in the outage
//	plain        no stale_if_error, as before it existed
//
// Every listener has cache_max_ttl 3s, so the hot tokens' entries end early in
// the outage. The phases have fixed lengths: 55 s of load in all.
const (
	bdHealthy = 5 * time.Second
	bdDown    = 20 * time.Second
	bdSlow    = 20 * time.Second
	bdBack    = 10 * time.Second

	bdTimeout    = time.Second      // the filter's timeout
	bdSlowness   = 2 * time.Second  // how long the slow identity server takes to answer
	bdTTL        = 3 * time.Second  // cache_max_ttl
	bdStale      = 45 * time.Second // stale_if_error of "stale"
	bdStaleShort = 5 * time.Second  // stale_if_error of "stale-short"

	// bdGrace: a call made before a phase began has ended (answered or timed
	// out) this long into it.
	bdGrace = bdTimeout + 500*time.Millisecond
	// bdMaxLatency: no request waits longer. It is below bdSlowness, so a
	// request that waited for the slow server's answer fails the test.
	bdMaxLatency = bdTimeout + 750*time.Millisecond

	bdHotTokens = 3 // per listener
	// bdExpiringLifetime: the expiring token's JWT exp falls 14 s into the
	// outage, between the stale bound of "stale" and its end.
	bdExpiringLifetime = bdHealthy + 14*time.Second
	// bdMinSamples: fewer requests in a checked window mean the scenario did
	// not test what the window says.
	bdMinSamples = 5
)

// Offsets of the phases from the start of the load.
const (
	bdDownAt = bdHealthy
	bdSlowAt = bdDownAt + bdDown
	bdBackAt = bdSlowAt + bdSlow
	bdEndAt  = bdBackAt + bdBack
)

// bdKind is what a request's token is.
type bdKind int

const (
	bdHot      bdKind = iota // sent again and again
	bdNew                    // sent once
	bdExpiring               // sent again and again; its JWT's exp falls in the outage
)

func (k bdKind) String() string { return [...]string{"hot", "new", "expiring"}[k] }

// bdSample is one request of the scenario; times are offsets from the start
// of the load.
type bdSample struct {
	listener   string
	kind       bdKind
	token      string
	start, end time.Duration
	status     int // 0: no response (err says why)
	err        error
}

// bdPhase is a stretch of the day, by the start of its requests.
type bdPhase struct {
	name     string
	from, to time.Duration
}

var bdPhases = []bdPhase{
	{"healthy", 0, bdDownAt},
	{"down", bdDownAt, bdSlowAt},
	{"slow", bdSlowAt, bdBackAt},
	{"back", bdBackAt, bdEndAt},
}

// bdWindow is what every request of some listeners and kinds that starts and
// ends within [from, to) must get.
type bdWindow struct {
	what      string
	listeners []string
	kinds     []bdKind
	from, to  time.Duration
	status    int
}

// TestIdentityServerBadDay: with stale_if_error, hot tokens are admitted
// while within the bound and never past it or past their JWT's exp less 5 s;
// without it, and for new tokens, the outage gives 502; no request waits
// past the timeout and a margin; after the recovery each hot token costs one
// introspection per cache lifetime again; cache.stale_served and
// requests.waited move as the requests say; the log holds no VM failure and
// no token.
func TestIdentityServerBadDay(t *testing.T) {
	secret := fixtures.RandomToken()
	ids, err := fixtures.StartIdS(fixtures.AnyPort, map[string]string{gatewayID: secret})
	if err != nil {
		t.Fatal(err)
	}
	defer ids.Close()

	listeners := []struct {
		name  string
		stale time.Duration
	}{{"stale", bdStale}, {"stale-short", bdStaleShort}, {"plain", 0}}
	var scenarios []harness.Scenario
	for _, l := range listeners {
		p := map[string]any{
			"introspection_url": ids.URL + fixtures.IntrospectionPath,
			"cluster":           "bad-day-ids",
			"client_id":         gatewayID,
			"client_secret":     secret,
			"timeout":           bdTimeout.String(),
			"cache_max_ttl":     bdTTL.String(),
		}
		if l.stale > 0 {
			p["stale_if_error"] = l.stale.String()
		}
		scenarios = append(scenarios, harness.Scenario{Name: l.name, Plugin: p})
	}
	e := privateEnvoy(t, harness.Config{
		WasmLogLevel: "info", // Envoy's default, what an operator sees
		Clusters:     map[string]string{"bad-day-ids": ids.Addr.String()},
		Scenarios:    scenarios,
	})

	hot := map[string][]string{}
	for _, l := range listeners {
		for range bdHotTokens {
			hot[l.name] = append(hot[l.name], ids.Issue(fixtures.TokenOptions{}))
		}
	}
	expiring := ids.Issue(fixtures.TokenOptions{Lifetime: bdExpiringLifetime})

	var (
		mu      sync.Mutex
		samples []bdSample
		wg      sync.WaitGroup
	)
	before := phantomStats(t, e)
	t0 := time.Now()
	// load sends next()'s token to a listener, on one connection (or a new
	// one per request), every interval plus the request's own time, until the
	// day ends.
	load := func(listener string, keepAlive bool, interval time.Duration, next func() (string, bdKind)) {
		defer wg.Done()
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: !keepAlive}}
		defer c.CloseIdleConnections()
		for time.Since(t0) < bdEndAt {
			tok, kind := next()
			start := time.Since(t0)
			status, _, err := send(c, e.URL(listener)+"/bad-day", tok)
			s := bdSample{listener: listener, kind: kind, token: tok, start: start, end: time.Since(t0), status: status, err: err}
			if err != nil {
				s.status = 0
			}
			mu.Lock()
			samples = append(samples, s)
			mu.Unlock()
			time.Sleep(interval)
		}
	}
	for _, l := range listeners {
		tokens := hot[l.name]
		if l.name == "stale" {
			tokens = append(slices.Clone(tokens), expiring)
		}
		for g := range 2 {
			i := g
			wg.Add(1)
			go load(l.name, true, 100*time.Millisecond, func() (string, bdKind) {
				tok := tokens[i%len(tokens)]
				i++
				if tok == expiring {
					return tok, bdExpiring
				}
				return tok, bdHot
			})
		}
		wg.Add(1)
		go load(l.name, false, 250*time.Millisecond, func() (string, bdKind) {
			return ids.Issue(fixtures.TokenOptions{}), bdNew
		})
	}

	// The day, and the filter's counters along it (they reach Envoy up to a
	// second late).
	until := func(d time.Duration) { time.Sleep(time.Until(t0.Add(d))) }
	until(bdDownAt - 50*time.Millisecond)
	atHealthyEnd := phantomStats(t, e)
	until(bdDownAt)
	ids.Down()
	until(bdSlowAt)
	ids.SetDelay(bdSlowness)
	if err := ids.Up(); err != nil {
		t.Errorf("the identity server cannot come back: %v", err)
	}
	atSlow := phantomStats(t, e)
	until(bdBackAt)
	ids.SetDelay(0)
	atBack := phantomStats(t, e)
	// Served stale at the latest: one timeout into the phase (a slow call's
	// end), then one second (new requests get the stale answer at once for
	// a second after a failure); the count is in Envoy a second later.
	until(bdBackAt + bdTimeout + 2500*time.Millisecond)
	atRecovered := phantomStats(t, e)
	wg.Wait()
	time.Sleep(1500 * time.Millisecond)
	after := phantomStats(t, e)
	t.Logf("the day took %v of load", time.Since(t0).Round(100*time.Millisecond))

	sort.Slice(samples, func(i, j int) bool { return samples[i].start < samples[j].start })
	bdReport(t, samples, ids, hot, t0, []map[string]int{before, atHealthyEnd, atSlow, atBack, after})

	// Statuses.
	exp := bdJWTExp(t, ids, expiring).Sub(t0)
	all := []string{"stale", "stale-short", "plain"}
	windows := []bdWindow{
		{"healthy: every token is admitted", all, []bdKind{bdHot, bdNew, bdExpiring}, 0, bdDownAt, 200},
		{"stale_if_error longer than the outage: a hot token is admitted all day", []string{"stale"}, []bdKind{bdHot}, 0, bdEndAt, 200},
		{"within stale_if_error and before exp: a token is admitted", []string{"stale"}, []bdKind{bdExpiring}, bdDownAt, exp - 6*time.Second, 200},
		{"past its JWT's exp less 5 s, never stale: 502", []string{"stale"}, []bdKind{bdExpiring}, exp - 4*time.Second, bdBackAt - 100*time.Millisecond, 502},
		{"back: an expired token is inactive: 401", []string{"stale"}, []bdKind{bdExpiring}, bdBackAt + bdGrace, bdEndAt, 401},
		{"within stale_if_error: a hot token is admitted", []string{"stale-short"}, []bdKind{bdHot}, bdDownAt, bdDownAt + bdStaleShort - 500*time.Millisecond, 200},
		{"past stale_if_error: 502", []string{"stale-short"}, []bdKind{bdHot}, bdDownAt + bdTTL + bdStaleShort + time.Second, bdBackAt - 100*time.Millisecond, 502},
		{"without stale_if_error, once the entry has ended: 502", []string{"plain"}, []bdKind{bdHot}, bdDownAt + bdTTL + 500*time.Millisecond, bdBackAt - 100*time.Millisecond, 502},
		{"down or slow: a new token gets 502", all, []bdKind{bdNew}, bdDownAt, bdBackAt - 100*time.Millisecond, 502},
		{"back: every token is admitted", all, []bdKind{bdHot, bdNew}, bdBackAt + bdGrace, bdEndAt, 200},
	}
	for _, w := range windows {
		n, bad := 0, []string(nil)
		for _, s := range samples {
			if !slices.Contains(w.listeners, s.listener) || !slices.Contains(w.kinds, s.kind) || s.start < w.from || s.end >= w.to {
				continue
			}
			n++
			if s.status != w.status {
				bad = append(bad, fmt.Sprintf("%s %s %v–%v: %d %v", s.listener, s.kind, s.start.Round(time.Millisecond), s.end.Round(time.Millisecond), s.status, s.err))
			}
		}
		if n < bdMinSamples {
			t.Errorf("%s [%v, %v): %d requests, want at least %d", w.what, w.from, w.to, n, bdMinSamples)
		}
		if len(bad) > 0 {
			t.Errorf("%s [%v, %v): %d of %d requests did not get %d, e.g. %q", w.what, w.from, w.to, len(bad), n, w.status, bad[:min(len(bad), 5)])
		}
	}

	// Nothing waits past the timeout; a new token waited for it while the
	// server was slow, so the slow phase was real.
	slowest := bdSample{}
	for _, s := range samples {
		if s.end-s.start > slowest.end-slowest.start {
			slowest = s
		}
		if s.kind == bdNew && s.start > bdSlowAt+50*time.Millisecond && s.end < bdBackAt && s.end-s.start < bdTimeout-100*time.Millisecond {
			t.Errorf("slow: a new token was answered %d after %v, before the timeout", s.status, (s.end - s.start).Round(time.Millisecond))
		}
	}
	if d := slowest.end - slowest.start; d > bdMaxLatency {
		t.Errorf("a request (%s, %s, at %v) took %v, longer than the timeout and a margin (%v)", slowest.listener, slowest.kind, slowest.start.Round(time.Millisecond), d.Round(time.Millisecond), bdMaxLatency)
	}

	// One introspection per hot token per cache lifetime, healthy and after
	// the recovery, on every listener, across both workers.
	for _, w := range []bdPhase{{"healthy", 0, bdDownAt}, {"back", bdBackAt + bdGrace, bdEndAt}} {
		most := int(math.Ceil(float64(w.to-w.from) / float64(bdTTL)))
		least := int(float64(w.to-w.from) / float64(bdTTL+time.Second))
		for _, l := range listeners {
			for i, tok := range hot[l.name] {
				if n := bdCalls(ids, tok, t0, w.from, w.to); n < least || n > most {
					t.Errorf("%s, %s hot token %d: %d introspections in %v, want %d to %d (one per %v)", w.name, l.name, i, n, w.to-w.from, least, most, bdTTL)
				}
			}
		}
	}

	// The counters: nothing stale before the outage nor after the recovery;
	// during it, at least every admission that only a stale answer explains,
	// at most every admission of a cached token.
	delta := func(a, b map[string]int, name string) int { return b[name] - a[name] }
	const staleServed, waited = "cache.stale_served", "requests.waited"
	for _, m := range []map[string]int{before, after} {
		for _, name := range []string{staleServed, waited, "cache.hits"} {
			if _, ok := m[name]; !ok {
				t.Fatalf("no stat wasmcustom.phantom_token.%s in Envoy's /stats", name)
			}
		}
	}
	if n := delta(before, atHealthyEnd, staleServed); n != 0 {
		t.Errorf("healthy: %s went up by %d, want 0", staleServed, n)
	}
	if n := delta(atRecovered, after, staleServed); n != 0 {
		t.Errorf("back, after the recovery: %s went up by %d, want 0", staleServed, n)
	}
	least, most, total, lower := 0, 0, len(samples), 0
	for _, s := range samples {
		cached := s.kind != bdNew && s.listener != "plain"
		if cached && s.status == 200 && s.start >= bdDownAt+bdTTL+500*time.Millisecond && s.end < bdBackAt {
			least++
		}
		if cached && s.status == 200 && s.start >= bdDownAt-500*time.Millisecond {
			most++
		}
		// Certainly waited: every new token, and every failure of a cached
		// token without stale_if_error.
		if s.kind == bdNew || (s.listener == "plain" && s.status == 502) {
			lower++
		}
	}
	if n := delta(before, after, staleServed); n < least || n > most {
		t.Errorf("%s went up by %d, want %d to %d (the hot tokens' admissions during the outage)", staleServed, n, least, most)
	}
	if n, hits := delta(before, after, waited), delta(before, after, "cache.hits"); n < lower || n > total-hits {
		t.Errorf("%s went up by %d, want %d (new tokens and failures without stale_if_error) to %d (requests %d less cache hits %d)", waited, n, lower, total-hits, total, hits)
	}

	// The log: no VM failure, the stale answers said, no token.
	log, err := e.Log()
	if err != nil {
		t.Fatal(err)
	}
	if failures := harness.VMFailures(log); len(failures) > 0 {
		t.Errorf("Envoy's log shows %d wasm VM failure lines, the first: %.400s", len(failures), strings.Join(failures[:min(len(failures), 5)], "\n"))
	}
	// Each worker's plugin of each listener with stale_if_error logs it at
	// most once a second.
	staleLines := strings.Count(log, "phantom-token: serving a stale answer: ")
	t.Logf("Envoy's log: %d lines \"serving a stale answer\", %d lines \"answering 502\"", staleLines, strings.Count(log, ": answering 502"))
	if most := 2 * 2 * int((bdDown+bdSlow+bdGrace)/time.Second+2); staleLines < 1 || staleLines > most {
		t.Errorf("%d log lines say a stale answer was served, want 1 to %d (at most one a second per worker and listener)", staleLines, most)
	}
	for _, s := range ids.Secrets() {
		if strings.Contains(log, s) {
			t.Fatal("Envoy's log holds a token or a JWT")
		}
	}
}

// phantomStats reads the filter's counters from Envoy's admin /stats, by
// name after "wasmcustom.phantom_token.", and the identity server cluster's
// failed connections and timed-out calls, by their full names.
func phantomStats(t *testing.T, e *harness.Envoy) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body, err := e.Admin(ctx, "/stats?filter="+url.QueryEscape(`^wasmcustom\.phantom_token\.|^cluster\.bad-day-ids\.upstream_(cx_connect_fail|rq_timeout)$`))
	if err != nil {
		t.Error(err)
		return nil
	}
	out := map[string]int{}
	for _, line := range strings.Split(body, "\n") {
		name, value, ok := strings.Cut(line, ": ")
		if n, err := strconv.Atoi(strings.TrimSpace(value)); ok && err == nil {
			out[strings.TrimPrefix(name, "wasmcustom.phantom_token.")] = n
		}
	}
	return out
}

// bdJWTExp is the exp of the last JWT the identity server issued for token.
func bdJWTExp(t *testing.T, ids *fixtures.IdS, token string) time.Time {
	t.Helper()
	claims, err := fixtures.JWTPayload(ids.JWTOf(token))
	if err != nil {
		t.Fatalf("the expiring token's JWT: %v", err)
	}
	exp, ok := claims["exp"].(float64)
	if !ok {
		t.Fatal("the expiring token's JWT has no exp")
	}
	return time.Unix(int64(exp), 0)
}

// bdCalls counts the introspections of token that arrived in [from, to) of
// the day.
func bdCalls(ids *fixtures.IdS, token string, t0 time.Time, from, to time.Duration) int {
	n := 0
	for _, c := range ids.IntrospectionsOf(token) {
		if at := c.At.Sub(t0); at >= from && at < to {
			n++
		}
	}
	return n
}

// bdReport logs, per phase and listener, what each kind of token got and how
// long it took, the introspections per hot token, and the counters' moves;
// stats holds the counters at the start and at the end of each phase.
func bdReport(t *testing.T, samples []bdSample, ids *fixtures.IdS, hot map[string][]string, t0 time.Time, stats []map[string]int) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%-8s %-12s %-9s %5s  %-28s %7s %7s %9s\n", "phase", "listener", "token", "reqs", "statuses", "p50", "max", "calls/hot")
	for _, p := range bdPhases {
		for _, l := range []string{"stale", "stale-short", "plain"} {
			for _, k := range []bdKind{bdHot, bdExpiring, bdNew} {
				var lat []time.Duration
				statuses := map[int]int{}
				for _, s := range samples {
					if s.listener == l && s.kind == k && s.start >= p.from && s.start < p.to {
						lat = append(lat, s.end-s.start)
						statuses[s.status]++
					}
				}
				if len(lat) == 0 {
					continue
				}
				slices.Sort(lat)
				var codes []int
				for c := range statuses {
					codes = append(codes, c)
				}
				slices.Sort(codes)
				var st []string
				for _, c := range codes {
					st = append(st, fmt.Sprintf("%d×%d", c, statuses[c]))
				}
				calls := ""
				if k == bdHot {
					n := 0
					for _, tok := range hot[l] {
						n += bdCalls(ids, tok, t0, p.from, p.to)
					}
					calls = fmt.Sprintf("%.1f", float64(n)/float64(len(hot[l])))
				}
				fmt.Fprintf(&b, "%-8s %-12s %-9s %5d  %-28s %7v %7v %9s\n", p.name, l, k, len(lat), strings.Join(st, " "),
					lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), calls)
			}
		}
	}
	names := map[string]bool{}
	for _, m := range stats {
		for n := range m {
			names[n] = true
		}
	}
	var sorted []string
	for n := range names {
		if !strings.Contains(n, "latency") {
			sorted = append(sorted, n)
		}
	}
	slices.Sort(sorted)
	fmt.Fprintf(&b, "\n%-40s", "counter (up to 1 s late)")
	for _, p := range bdPhases {
		fmt.Fprintf(&b, " %8s", p.name)
	}
	b.WriteString("\n")
	for _, n := range sorted {
		line, moved := fmt.Sprintf("%-40s", n), false
		for i := range bdPhases {
			d := stats[i+1][n] - stats[i][n]
			line += fmt.Sprintf(" %8d", d)
			moved = moved || d != 0
		}
		if moved {
			b.WriteString(line + "\n")
		}
	}
	t.Log("\n" + b.String())
}
