package main

import (
	"flag"
	"fmt"
	"net/http"
	neturl "net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
	"github.com/phantom-token/envoy-phantom-token/e2e/harness"
)

// The refresh-ahead phase (issue 17 item 2): one hot token whose answers
// carry Cache-Control: max-age=2, under -sat-conns connections for
// -refresh-dur, through two listeners of one Envoy, one after the other:
// refresh-off (hit's configuration) and refresh-on (the same with
// refresh_ahead). Each listener has a token of its own, so that neither run
// finds the other's entry. Per run: req/s, p50, p99, p99.9 and the slowest
// request (fortio's per-request latencies, see load), the requests that
// waited for an introspection after the warm-up (the filter's
// requests.waited between the end of the warm-up and the end, read from the
// admin /stats) and the identity server's calls for the token in that time.
const (
	refreshOff = "refresh-off"
	refreshOn  = "refresh-on"
)

var (
	refreshAhead   = flag.Float64("refresh-ahead", 0.5, "refresh_ahead of the refresh-on listener (0: refresh-off only)")
	refreshDur     = flag.Duration("refresh-dur", 20*time.Second, "length of each refresh-ahead run, after its warm-up")
	refreshWarmup  = flag.Duration("refresh-warmup", 2*time.Second, "warm-up of each refresh-ahead run (not counted)")
	refreshMaxAge  = flag.Duration("refresh-max-age", 2*time.Second, "Cache-Control max-age of the hot token's answers")
	refreshDelay   = flag.Duration("refresh-ids-delay", 50*time.Millisecond, "how long the identity server takes to answer for the hot token")
	refreshWorkers = flag.Int("refresh-workers", 2, "Envoy workers of the refresh-ahead Envoy (the refresh lease is across workers)")
)

// statFlush is how long after a count the filter's counters surely show it
// in Envoy's: they are flushed on the plugin's tick, at least once a second.
const statFlush = 1500 * time.Millisecond

// refreshRun is what one listener's run measured.
type refreshRun struct {
	listener string
	s        sample
	waited   int // requests that waited for an introspection after warm-up
	calls    int // the identity server's calls for the token after warm-up
	stats    map[string]int
}

// refreshPlugin is hit's configuration, with refresh_ahead when x > 0.
func (b *bench) refreshPlugin(x float64) map[string]any {
	p := b.plugin(true)
	if x > 0 {
		p["refresh_ahead"] = x
	}
	return p
}

// refresh is the refresh-ahead phase.
func (b *bench) refresh() error {
	ss := []harness.Scenario{{Name: refreshOff, Plugin: b.refreshPlugin(0)}}
	if *refreshAhead > 0 {
		ss = append(ss, harness.Scenario{Name: refreshOn, Plugin: b.refreshPlugin(*refreshAhead)})
	}
	dir, err := os.MkdirTemp(b.dir, "envoy-refresh-")
	if err != nil {
		return err
	}
	envoy, err := harness.Start(b.ctx, harness.Config{
		EnvoyPath:    b.envoyPath,
		WasmPath:     b.wasmPath,
		Dir:          dir,
		Clusters:     map[string]string{"api": b.upstream.addr, "ids": b.ids.Addr.String()},
		Upstream:     "api",
		Concurrency:  *refreshWorkers,
		WasmLogLevel: "info",
		Scenarios:    ss,
	})
	if err != nil {
		return fmt.Errorf("starting the refresh-ahead Envoy: %w", err)
	}
	defer func() { _ = envoy.Stop() }()
	pid, err := envoy.PID()
	if err != nil {
		return err
	}
	fmt.Printf("\n== Refresh-ahead: one hot token, its answers max-age=%d, the IdS answering after %s; one Envoy, %d workers;\n"+
		"   per listener, one after the other: %s of warm-up, then %d connections for %s\n",
		int(refreshMaxAge.Seconds()), *refreshDelay, *refreshWorkers, *refreshWarmup, *satConns, *refreshDur)
	fmt.Printf("load average at start: %s\n", loadAvg())
	b.ids.SetHistory(true) // to count the calls per token
	defer b.ids.SetHistory(false)
	b.refreshRuns = nil
	for _, s := range ss {
		x, err := b.refreshRun(envoy, s.Name, pid)
		if err != nil {
			return err
		}
		b.refreshRuns = append(b.refreshRuns, x)
	}
	b.printRefresh()
	return stop(envoy)
}

// refreshRun fills the cache of one listener with a new hot token, warms up,
// and measures.
func (b *bench) refreshRun(envoy *harness.Envoy, listener string, pid int) (refreshRun, error) {
	tok := b.ids.Issue(fixtures.TokenOptions{Scope: "read", MaxAge: *refreshMaxAge, Delay: *refreshDelay})
	u := envoy.URL(listener)
	if status, err := get(http.DefaultClient, u+"/fill", tok); err != nil || status != http.StatusOK {
		return refreshRun{}, fmt.Errorf("%s: first request: status %d, %v", listener, status, err)
	}
	if _, err := load(u+"/warmup", tok, *refreshWarmup, *satConns, 0); err != nil {
		return refreshRun{}, err
	}
	before, err := filterStats(b, envoy)
	if err != nil {
		return refreshRun{}, err
	}
	calls0 := len(b.ids.IntrospectionsOf(tok))
	s, err := load(u+"/run", tok, *refreshDur, *satConns, pid)
	if err != nil {
		return refreshRun{}, err
	}
	calls := len(b.ids.IntrospectionsOf(tok)) - calls0
	time.Sleep(statFlush)
	end, err := filterStats(b, envoy)
	if err != nil {
		return refreshRun{}, err
	}
	if _, ok := end["requests.waited"]; !ok {
		return refreshRun{}, fmt.Errorf("%s: the module has no requests.waited counter", listener)
	}
	x := refreshRun{listener: listener, s: s, calls: calls, stats: map[string]int{}}
	for k, v := range end {
		x.stats[k] = v - before[k]
	}
	x.waited = x.stats["requests.waited"]
	return x, nil
}

// filterStats reads the filter's counters from the admin /stats.
func filterStats(b *bench, envoy *harness.Envoy) (map[string]int, error) {
	body, err := envoy.Admin(b.ctx, "/stats?filter="+neturl.QueryEscape(`^wasmcustom\.phantom_token\.`))
	if err != nil {
		return nil, err
	}
	return parseStats(body), nil
}

// statPrefix is where Envoy lists the filter's stats.
const statPrefix = "wasmcustom.phantom_token."

// parseStats reads the filter's counters (without statPrefix) from the
// admin /stats text; histograms and other stats are left out.
func parseStats(body string) map[string]int {
	m := map[string]int{}
	for _, line := range strings.Split(body, "\n") {
		name, value, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		name, ok = strings.CutPrefix(name, statPrefix)
		if !ok {
			continue
		}
		if v, err := strconv.Atoi(strings.TrimSpace(value)); err == nil {
			m[name] = v
		}
	}
	return m
}

// printRefresh prints the refresh-ahead runs.
func (b *bench) printRefresh() {
	fmt.Printf("%-12s | %8s %8s %8s %9s %9s | %7s %9s | %-28s | %7s\n",
		"listener", "req/s", "p50 µs", "p99 µs", "p99.9 µs", "max µs", "waited", "IdS calls", "refresh started/renewed/failed", "non-200")
	for _, x := range b.refreshRuns {
		r := "-"
		if _, ok := x.stats["refresh.started"]; ok {
			r = fmt.Sprintf("%d/%d/%d", x.stats["refresh.started"], x.stats["refresh.renewed"], x.stats["refresh.failed"])
		}
		fmt.Printf("%-12s | %8.0f %8.0f %8.0f %9.0f %9.0f | %7d %9d | %-28s | %7d\n",
			x.listener, x.s.rps, x.s.p50, x.s.p99, x.s.p999, x.s.max, x.waited, x.calls, r, x.s.bad)
	}
	fmt.Printf("(after the warm-up; waited: the filter's requests.waited, read at the end of the warm-up and %s after the run:\n"+
		" it may count waits of the warm-up's last second, never fewer)\n", statFlush)
	if *refreshAhead == 0 {
		fmt.Printf("refresh-on not run (-refresh-ahead 0)\n")
	}
	fmt.Printf("load average after the runs: %s\n", loadAvg())
}

// refreshTarget prints issue 17's target: no request waits for an
// introspection with refresh-ahead.
func (b *bench) refreshTarget() {
	var on, off *refreshRun
	for i, x := range b.refreshRuns {
		switch x.listener {
		case refreshOn:
			on = &b.refreshRuns[i]
		case refreshOff:
			off = &b.refreshRuns[i]
		}
	}
	if on == nil {
		return
	}
	without := ""
	if off != nil {
		without = fmt.Sprintf(" (without: %d waited, max %.1f ms)", off.waited, off.s.max/1000)
	}
	verdict(on.waited == 0, fmt.Sprintf("0 requests wait for an introspection with refresh_ahead %g (issue 17)", *refreshAhead),
		fmt.Sprintf("%d waited in %s at %d connections, max %.1f ms%s", on.waited, *refreshDur, *satConns, on.s.max/1000, without))
}
