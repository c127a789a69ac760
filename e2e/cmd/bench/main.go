// Command bench is `make bench`: it measures what the phantom token filter
// costs in a real Envoy (1.40, V8, two workers, started through func-e).
//
// One Envoy serves four listeners side by side, all routed to the echo
// upstream: "nofilter" (no wasm filter, the baseline), "noopwasm" (a Go
// wasip1 filter that does nothing: the floor any such filter pays), "warm" (the filter with
// its cache, the token already cached) and "nocache" (the filter with "cache":
// false, so every request introspects at the Go identity server fixture).
// fortio, used as a library, drives them in turn over several rounds with the
// same keep-alive connections, first at maximum rate and then at a fixed rate
// of half the baseline's maximum, and the program checks the targets: warm
// throughput ≥ 90% of nofilter, and at most 50 µs added to the median latency
// at half load. Then it checks that 256 simultaneous requests carrying one new
// token cost one introspection, and that Envoy's memory stays flat while a
// million distinct tokens churn through a bounded cache.
//
// Everything (load generator, identity server, upstream, Envoy) shares one
// machine, so absolute numbers describe this machine under this load; the
// ratios between listeners measured in the same rounds are what the targets
// are about.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"fortio.org/fortio/fhttp"
	"fortio.org/fortio/periodic"
	flog "fortio.org/log"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
	"github.com/phantom-token/envoy-phantom-token/e2e/harness"
)

// The listeners, in the order they are driven and printed.
const (
	noFilter = "nofilter"
	noopWasm = "noopwasm"
	warm     = "warm"
	noCache  = "nocache"
)

var scenarios = []string{noFilter, noopWasm, warm, noCache}

// The targets this benchmark checks.
const (
	minWarmRatio   = 0.90 // warm throughput / nofilter throughput
	maxAddedP50    = 50.0 // µs added to p50 by the warm filter at half load
	flatTolerance  = 0.05 // spread allowed in the last three RSS samples
	clientID       = "bench-gateway"
	burstSlowDelay = 100 * time.Millisecond
	idleQPS        = 200
)

var (
	rounds       = flag.Int("rounds", 3, "rounds over the listeners, at each load")
	duration     = flag.Duration("duration", 5*time.Second, "length of one run")
	warmup       = flag.Duration("warmup", time.Second, "warm-up run per listener before the rounds")
	conns        = flag.Int("conns", 16, "keep-alive connections (fortio threads) of every run")
	burst        = flag.Int("burst", 256, "simultaneous requests with one new token")
	tokens       = flag.Int("tokens", 1_000_000, "distinct tokens sent for the memory check")
	memWorkers   = flag.Int("mem-workers", 96, "concurrent keep-alive clients of the memory check")
	memBudget    = flag.Duration("mem-budget", 6*time.Minute, "time allowed for the memory check; it reports what it did by then")
	cacheEntries = flag.Int("cache-entries", 10_000, "cache_max_entries of the warm listener")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	flog.SetLogLevelQuiet(flog.Error) // fortio's per-run info lines would bury the tables
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() (err error) {
	began := time.Now()
	envoyPath, wasmPath := os.Getenv("ENVOY_PATH"), os.Getenv("WASM_PATH")
	if envoyPath == "" || wasmPath == "" {
		return fmt.Errorf("ENVOY_PATH and WASM_PATH must be set: run `make bench` from the repository root")
	}

	echo, err := fixtures.StartEcho(fixtures.AnyPort)
	if err != nil {
		return err
	}
	defer echo.Close()
	echo.SetRecording(false) // millions of requests must not pile up in this process
	secret := fixtures.RandomToken()
	ids, err := fixtures.StartIdS(fixtures.AnyPort, map[string]string{clientID: secret})
	if err != nil {
		return err
	}
	defer ids.Close()
	ids.SetHistory(false)
	ids.SlowDelay = burstSlowDelay // set before any request reaches the IdS

	dir, err := os.MkdirTemp("", "phantom-bench-")
	if err != nil {
		return err
	}
	// The no-op module (./cmd/bench/noop) shows the floor: what any Go
	// wasip1 filter costs in Envoy before its own code runs.
	noopPath := filepath.Join(dir, "noop.wasm")
	build := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", noopPath, "./cmd/bench/noop")
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building the no-op module: %v\n%s", err, out)
	}
	plugin := func(cache bool) map[string]any {
		return map[string]any{
			"introspection_url": ids.URL + fixtures.IntrospectionPath,
			"cluster":           "ids",
			"client_id":         clientID,
			"client_secret":     secret,
			"timeout":           "2s",
			"cache":             cache,
			"cache_max_ttl":     "300s",
			"cache_max_entries": *cacheEntries,
		}
	}
	ctx := context.Background()
	envoy, err := harness.Start(ctx, harness.Config{
		EnvoyPath:    envoyPath,
		WasmPath:     wasmPath,
		Dir:          dir,
		Clusters:     map[string]string{"echo": echo.Addr.String(), "ids": ids.Addr.String()},
		Upstream:     "echo",
		Concurrency:  2,
		WasmLogLevel: "info", // per-request debug lines are not part of the filter's cost
		Scenarios: []harness.Scenario{
			{Name: noFilter},
			{Name: noopWasm, Plugin: "{}", WasmPath: noopPath, VMID: noopWasm},
			{Name: warm, Plugin: plugin(true)},
			{Name: noCache, Plugin: plugin(false)},
		},
	})
	if err != nil {
		return fmt.Errorf("starting Envoy (work directory %s kept): %w", dir, err)
	}
	defer func() {
		_ = envoy.Stop()
		if err != nil {
			fmt.Fprintf(os.Stderr, "Envoy's log is kept: %s\n", envoy.LogPath)
			return
		}
		_ = os.RemoveAll(dir)
	}()
	pid, err := envoy.PID()
	if err != nil {
		return err
	}

	printMachine(ctx, envoy, wasmPath)

	// The fixed token of the warm listener goes into its cache now; nofilter
	// gets the same header so every listener parses the same request.
	tok := ids.Issue(fixtures.TokenOptions{Scope: "read"})
	if err := warmUp(envoy.URL(warm), tok, ids); err != nil {
		return err
	}
	noCacheTok := ids.Issue(fixtures.TokenOptions{Scope: "read"})
	token := map[string]string{noFilter: tok, noopWasm: tok, warm: tok, noCache: noCacheTok}

	tp, err := throughput(envoy, token, ids)
	if err != nil {
		return err
	}
	coalesced, err := burstTest(ctx, envoy, ids)
	if err != nil {
		return err
	}
	flat, err := memoryTest(envoy.URL(warm), pid, ids)
	if err != nil {
		return err
	}
	printStats(ctx, envoy)

	fmt.Printf("\n== Targets\n")
	verdict(tp.ratio >= minWarmRatio,
		fmt.Sprintf("warm throughput ≥ %.2f × nofilter", minWarmRatio),
		fmt.Sprintf("%.3f × (margin %+.1f points)", tp.ratio, 100*(tp.ratio-minWarmRatio)))
	fmt.Printf("      (a no-op Go wasip1 filter reaches %.3f × nofilter here; warm reaches %.3f × the no-op filter)\n", tp.floor, tp.ratio/tp.floor)
	verdict(tp.addedHalfP50 <= maxAddedP50,
		fmt.Sprintf("warm added p50 at 50%% load ≤ %.0f µs", maxAddedP50),
		fmt.Sprintf("%+.0f µs (margin %+.0f µs)", tp.addedHalfP50, maxAddedP50-tp.addedHalfP50))
	verdict(coalesced == 1,
		fmt.Sprintf("1 introspection for %d simultaneous requests with a new token", *burst),
		fmt.Sprintf("%d introspections", coalesced))
	verdict(flat.ok,
		fmt.Sprintf("Envoy RSS flat after the cache budget (last 3 within %.0f%%)", 100*flatTolerance),
		fmt.Sprintf("spread %.1f%%", 100*flat.spread))
	fmt.Printf("\nbench took %s\n", time.Since(began).Round(time.Second))
	return nil
}

// verdict prints one target as PASS or MISS with what was measured.
func verdict(pass bool, target, measured string) {
	status := "MISS"
	if pass {
		status = "PASS"
	}
	fmt.Printf("%s  %-66s %s\n", status, target, measured)
}

// printMachine says what the numbers were measured on.
func printMachine(ctx context.Context, envoy *harness.Envoy, wasmPath string) {
	model := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	version := "unknown"
	if body, err := envoy.Admin(ctx, "/server_info"); err == nil {
		var info struct {
			Version string `json:"version"`
		}
		if json.Unmarshal([]byte(body), &info) == nil {
			version = info.Version
		}
	}
	size := int64(0)
	if st, err := os.Stat(wasmPath); err == nil {
		size = st.Size()
	}
	fmt.Printf("== Machine\n")
	fmt.Printf("cpus (nproc)   %d\ncpu model      %s\ngo             %s\nenvoy          %s (--concurrency 2)\nmodule         %s (%d bytes)\n",
		runtime.NumCPU(), model, runtime.Version(), version, filepath.Base(wasmPath), size)
	fmt.Printf("load           fortio (library), %d keep-alive connections; it shares this process with the IdS and the echo upstream\n", *conns)
}

// warmUp puts tok into the warm listener's cache and checks that a second
// request is served from it.
func warmUp(base, tok string, ids *fixtures.IdS) error {
	before := ids.Introspections()
	for i := range 2 {
		status, err := get(http.DefaultClient, base+"/warmup", tok)
		if err != nil || status != http.StatusOK {
			return fmt.Errorf("warm-up request %d: status %d, %v", i, status, err)
		}
	}
	if n := ids.Introspections() - before; n != 1 {
		return fmt.Errorf("warm-up: %d introspections for two requests, want 1 (is the cache on?)", n)
	}
	return nil
}

func get(c *http.Client, u, tok string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	return res.StatusCode, nil
}

// sample is one fortio run: its rate, exact latency percentiles in µs and the
// number of answers other than 200.
type sample struct {
	rps, p50, p99 float64
	bad           int64
}

// latencies is a fortio AccessLogger that keeps every latency, one slice per
// thread so that recording takes no lock. fortio's own histogram has buckets
// 50 µs wide around the medians measured here, too coarse for a 50 µs target.
type latencies struct{ per [][]float64 }

func (l *latencies) Start(ctx context.Context, _ periodic.ThreadID, _ int64, _ time.Time) context.Context {
	return ctx
}

func (l *latencies) Report(_ context.Context, id periodic.ThreadID, _ int64, _ time.Time, seconds float64, _ bool, _ string) {
	l.per[id] = append(l.per[id], seconds)
}

func (l *latencies) Info() string { return "exact latencies" }

// load runs fortio against u for d with n keep-alive connections, at most
// speed when qps is negative, else at qps requests per second.
func load(u, tok string, qps float64, d time.Duration, n int) (sample, error) {
	o := fhttp.HTTPRunnerOptions{}
	o.URL = u
	o.QPS = qps
	o.Duration = d
	o.NumThreads = n
	o.Uniform = qps > 0 // stagger the connections instead of bursts
	o.Out = io.Discard
	lat := &latencies{per: make([][]float64, n)}
	o.AccessLogger = lat
	if err := o.AddAndValidateExtraHeader("Authorization: Bearer " + tok); err != nil {
		return sample{}, err
	}
	res, err := fhttp.RunHTTPTest(&o)
	if err != nil {
		return sample{}, fmt.Errorf("fortio on %s: %w", u, err)
	}
	all := slices.Concat(lat.per...)
	slices.Sort(all)
	if len(all) == 0 {
		return sample{}, fmt.Errorf("fortio on %s: no requests", u)
	}
	pct := func(p float64) float64 { return 1e6 * all[min(len(all)-1, int(p*float64(len(all))))] }
	return sample{rps: res.ActualQPS, p50: pct(0.50), p99: pct(0.99), bad: res.DurationHistogram.Count - res.RetCodes[http.StatusOK]}, nil
}

// tpResult is what the targets need from the throughput runs.
type tpResult struct {
	ratio        float64 // warm / nofilter requests per second at max load
	floor        float64 // noopwasm / nofilter requests per second at max load
	addedHalfP50 float64 // warm p50 - nofilter p50 at half load, µs
}

// throughput drives the three listeners in turn, round after round, at max
// rate, then at half of nofilter's median max rate, and prints medians.
func throughput(envoy *harness.Envoy, token map[string]string, ids *fixtures.IdS) (tpResult, error) {
	fmt.Printf("\n== Throughput and latency: %d rounds × %d listeners × %s per load, %d connections\n",
		*rounds, len(scenarios), *duration, *conns)
	for _, s := range scenarios {
		if _, err := load(envoy.URL(s)+"/warmup", token[s], -1, *warmup, *conns); err != nil {
			return tpResult{}, err
		}
	}
	drive := func(rounds int, qps float64, n int) (map[string][]sample, error) {
		out := map[string][]sample{}
		for range rounds {
			for _, s := range scenarios {
				before := ids.Introspections()
				r, err := load(envoy.URL(s)+"/bench", token[s], qps, *duration, n)
				if err != nil {
					return nil, err
				}
				if s == warm && ids.Introspections() != before {
					return nil, fmt.Errorf("the warm listener introspected %d times: its token left the cache", ids.Introspections()-before)
				}
				out[s] = append(out[s], r)
			}
		}
		return out, nil
	}
	peak, err := drive(*rounds, -1, *conns)
	if err != nil {
		return tpResult{}, err
	}
	half := median(peak[noFilter], func(s sample) float64 { return s.rps }) / 2
	fmt.Printf("\nmax load (fortio QPS -1); medians over rounds\n")
	printTable(peak, true)
	atHalf, err := drive(*rounds, half, *conns)
	if err != nil {
		return tpResult{}, err
	}
	fmt.Printf("\nhalf load: fixed %.0f req/s = 50%% of nofilter's median max; medians over rounds\n", half)
	printTable(atHalf, false)
	fmt.Printf("(nocache introspects on every request; where it cannot reach the rate, its latency is queueing)\n")
	// Not a target: one connection at a low rate shows what the filter adds
	// to a request by itself, without the queueing that a loaded 2-core
	// machine adds to every listener.
	idle, err := drive(1, idleQPS, 1)
	if err != nil {
		return tpResult{}, err
	}
	fmt.Printf("\nlight load (not a target): 1 connection at %d req/s, 1 round\n", idleQPS)
	printTable(idle, false)

	rps := func(s sample) float64 { return s.rps }
	p50 := func(s sample) float64 { return s.p50 }
	return tpResult{
		ratio:        median(peak[warm], rps) / median(peak[noFilter], rps),
		floor:        median(peak[noopWasm], rps) / median(peak[noFilter], rps),
		addedHalfP50: median(atHalf[warm], p50) - median(atHalf[noFilter], p50),
	}, nil
}

func printTable(res map[string][]sample, withRatio bool) {
	rps := func(s sample) float64 { return s.rps }
	p50 := func(s sample) float64 { return s.p50 }
	p99 := func(s sample) float64 { return s.p99 }
	baseRPS, baseP50 := median(res[noFilter], rps), median(res[noFilter], p50)
	fmt.Printf("%-9s %9s %11s %9s %9s %9s %8s   %s\n", "listener", "req/s", "×nofilter", "p50 µs", "+p50 µs", "p99 µs", "non-200", "req/s per round")
	for _, s := range scenarios {
		r := res[s]
		var rounds []string
		var bad int64
		for _, x := range r {
			rounds = append(rounds, strconv.FormatFloat(x.rps, 'f', 0, 64))
			bad += x.bad
		}
		ratio := "-"
		if withRatio || s != noFilter {
			ratio = fmt.Sprintf("%.3f", median(r, rps)/baseRPS)
		}
		added := "-"
		if s != noFilter {
			added = fmt.Sprintf("%+.0f", median(r, p50)-baseP50)
		}
		fmt.Printf("%-9s %9.0f %11s %9.0f %9s %9.0f %8d   %s\n", s, median(r, rps), ratio, median(r, p50), added, median(r, p99), bad, strings.Join(rounds, " "))
	}
}

func median(xs []sample, f func(sample) float64) float64 {
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// burstTest opens *burst connections to the warm listener (the kernel spreads
// them over both workers), then sends on all of them at once one request with
// a token never seen before, and returns how many introspections the IdS got
// for it. The IdS holds that answer back burstSlowDelay, so every request is
// in the filter before the first answer could be cached: only coalescing
// across requests and workers makes the count 1.
func burstTest(ctx context.Context, envoy *harness.Envoy, ids *fixtures.IdS) (int, error) {
	fmt.Printf("\n== Concurrency: %d simultaneous requests, new connections, one new token (IdS answers after %s)\n", *burst, burstSlowDelay)
	ids.SetHistory(true)
	defer ids.SetHistory(false)
	tok := ids.Issue(fixtures.TokenOptions{Scope: "read", Fault: fixtures.FaultSlow})
	workers := func() []int {
		var n []int
		for w := 0; ; w++ {
			v, err := envoy.Counter(ctx, fmt.Sprintf("listener.%s.worker_%d.downstream_cx_total", warm, w))
			if err != nil {
				return n
			}
			n = append(n, v)
		}
	}
	before := workers()

	addr := strings.TrimPrefix(envoy.URL(warm), "http://")
	cs := make([]net.Conn, *burst)
	for i := range cs {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		cs[i] = c
	}
	request := "GET /burst HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer " + tok + "\r\nConnection: close\r\n\r\n"
	start := make(chan struct{})
	statuses := make([]int, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			<-start
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c, request); err != nil {
				return
			}
			if res, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
				_, _ = io.Copy(io.Discard, res.Body)
				statuses[i] = res.StatusCode
			}
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	took := time.Since(t0)

	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	after := workers()
	var spread []string
	for w := range min(len(before), len(after)) {
		spread = append(spread, fmt.Sprintf("worker_%d %d", w, after[w]-before[w]))
	}
	n := len(ids.IntrospectionsOf(tok))
	fmt.Printf("statuses       %v (0 = no answer), all answered in %s\n", count, took.Round(time.Millisecond))
	fmt.Printf("connections    %s\n", strings.Join(spread, ", "))
	fmt.Printf("introspections %d for that token (target 1)\n", n)
	return n, nil
}

// flatness is the verdict of the memory check.
type flatness struct {
	ok     bool
	spread float64 // (max-min)/min of the last three samples
}

// memoryTest sends *tokens requests through the warm listener (a cache of
// *cacheEntries entries), each with a distinct valid token, and samples
// Envoy's RSS every quarter. Tokens are issued in-process; the IdS keeps no
// history, so only its token map grows here.
func memoryTest(base string, pid int, ids *fixtures.IdS) (flatness, error) {
	fmt.Printf("\n== Memory: %d distinct tokens through %q (cache_max_entries %d), %d keep-alive clients\n",
		*tokens, warm, *cacheEntries, *memWorkers)
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: *memWorkers, MaxConnsPerHost: *memWorkers},
	}
	rss0, err := rssKB(pid)
	if err != nil {
		return flatness{}, err
	}
	introspections0 := ids.Introspections()
	fmt.Printf("%10s %12s %10s %12s %8s %9s\n", "tokens", "Envoy RSS", "Δ vs 0", "req/s", "non-200", "elapsed")
	fmt.Printf("%10d %9.1f MiB %10s %12s %8s %9s\n", 0, float64(rss0)/1024, "-", "-", "-", "-")

	deadline := time.Now().Add(*memBudget)
	began := time.Now()
	var samples []int
	var sent, bad atomic.Int64
	for q := 1; q <= 4; q++ {
		target := int64(*tokens) * int64(q) / 4
		t0, s0 := time.Now(), sent.Load()
		var wg sync.WaitGroup
		for range *memWorkers {
			wg.Go(func() {
				for time.Now().Before(deadline) {
					if sent.Add(1) > target {
						sent.Add(-1)
						return
					}
					tok := ids.Issue(fixtures.TokenOptions{Scope: "read"})
					if status, err := get(client, base+"/mem", tok); err != nil || status != http.StatusOK {
						bad.Add(1)
					}
				}
			})
		}
		wg.Wait()
		rss, err := rssKB(pid)
		if err != nil {
			return flatness{}, err
		}
		samples = append(samples, rss)
		done := sent.Load()
		fmt.Printf("%10d %9.1f MiB %+9.1f%% %12.0f %8d %9s\n", done, float64(rss)/1024,
			100*(float64(rss)/float64(rss0)-1), float64(done-s0)/time.Since(t0).Seconds(), bad.Load(),
			time.Since(began).Round(time.Second))
		if done < target {
			fmt.Printf("stopped at the %s budget: %d of %d tokens sent in %s\n", *memBudget, done, *tokens, time.Since(began).Round(time.Second))
			break
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("introspections %d during the check; bench process heap %.0f MiB\n",
		ids.Introspections()-introspections0, float64(ms.HeapInuse)/(1<<20))

	if len(samples) < 3 {
		return flatness{}, nil
	}
	last := samples[len(samples)-3:]
	lo, hi := slices.Min(last), slices.Max(last)
	f := flatness{spread: float64(hi-lo) / float64(lo)}
	f.ok = f.spread <= flatTolerance
	fmt.Printf("last three samples within %.1f%%: %s\n", 100*f.spread, map[bool]string{true: "flat", false: "NOT flat"}[f.ok])
	return f, nil
}

// rssKB reads VmRSS of a process, in KiB.
func rssKB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// printStats prints Envoy's wasm stats and whatever the filter defines, and
// counts the plugin's warning and error log lines.
func printStats(ctx context.Context, envoy *harness.Envoy) {
	fmt.Printf("\n== Envoy stats of the wasm runtime and the filter (^wasm)\n")
	body, err := envoy.Admin(ctx, "/stats?filter="+url.QueryEscape("^wasm"))
	if err != nil {
		fmt.Printf("cannot read stats: %v\n", err)
	}
	fmt.Print(body)
	logText, err := envoy.Log()
	if err != nil {
		return
	}
	levels := map[string]int{}
	for _, line := range strings.Split(logText, "\n") {
		if !strings.Contains(line, "wasm log") {
			continue
		}
		for _, lvl := range []string{"[warning]", "[error]", "[critical]"} {
			if strings.Contains(line, lvl) {
				levels[lvl]++
			}
		}
	}
	fmt.Printf("plugin log lines: %d warning, %d error, %d critical\n", levels["[warning]"], levels["[error]"], levels["[critical]"])
}
