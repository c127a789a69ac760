// Command bench is `make bench`: it measures what the phantom token filter
// costs in a real Envoy (1.40, V8, started through func-e) against two
// baselines measured in the same run: no wasm filter ("passthrough") and a Go
// wasip1 filter that does nothing ("noop", ./noop: the floor any such filter
// pays).
//
//  1. Side by side: one Envoy (one worker by default) serves eight listeners,
//     all routed to a loopback upstream that answers a few fixed bytes:
//     passthrough, noop, "noop-jwt" (noop again, the client sending the JWT
//     itself: what the JWT's bytes cost on the way through, since the filter
//     sends the JWT upstream in place of the short opaque token), "hit" (the
//     filter, its token cached), "hit-table" (hit behind a table of 50 named
//     Envoy routes: what Envoy's route matching and path normalisation cost),
//     "hit-routes" (the same table, and 50 route rules in the plugin
//     configuration: the requests land on a route the second-to-last rule
//     names, see ../routeset), "hit-dpop" (hit's configuration with "dpop":
//     "allowed": a DPoP-bound token and a new ES256 proof per request; see
//     dpop.go) and "nocache" (the filter with "cache": false: every request
//     introspects at the Go identity server fixture); "hit-own" is hit's
//     listener again, driven by the client that drives hit-dpop. With
//     -base-ref, "hit-base" is hit's configuration on the filter module
//     built from that git ref (base.go: issue 19 compares the hit's cost
//     with the earlier module's in the same rounds). On request (-listeners)
//     the attribution listeners of attrib.go join them: no-op modules that
//     export fewer callbacks, make only a hit's host calls, or are padded
//     to the filter's size. fortio, used
//     as a library, drives them (hit-dpop and hit-own with a client of the
//     bench's own on fortio's periodic runner: a proof cannot be repeated) in
//     interleaved rounds: per round and listener,
//     one connection as fast as it goes (p50, p99, and Envoy's CPU time per
//     request: the run time of its threads (/proc/<pid>/task/*/schedstat, in
//     ns; see cpuSeconds) over the run divided by the requests, steadier
//     than percentiles on a shared machine), then
//     -sat-conns connections (requests per second at saturation).
//  2. Profile: the filter built with -tags debugstats (filter/debugstats.go)
//     in its own Envoy, driven with cache hits at one connection; the VM logs
//     its callback and host-call counts and Go MemStats, from which the bench
//     prints allocations per request, GC cycles per 10k requests, callbacks
//     and host calls per request; then the same for a hit on hit-routes'
//     target route and for a DPoP hit; then measure/hostcount's exact counts under wazero, for
//     a plain hit and for a hit on that route.
//  3. Refresh-ahead (issue 17): one hot token whose answers carry
//     max-age=2, under -sat-conns connections for 20 s, with and without
//     refresh_ahead, in one Envoy of two workers; see refresh.go. It runs
//     before the memory phase, whose churn leaves this process (the load
//     generator) with a larger heap.
//  4. Memory: Envoy's RSS with passthrough only, noop only and the filter only
//     (three separate Envoys) at 1, 2 and 8 workers, with where it is from
//     /proc/<pid>/smaps (Envoy's binary, V8's compiled code, wasm linear
//     memories, the rest of the anonymous memory) and tcmalloc's figures;
//     then, on the filter's two-worker Envoy, 256 simultaneous requests with
//     one new token (one introspection) and many distinct tokens through a
//     bounded cache (flat RSS).
//  5. The modules: section sizes of the filter and the no-op, and the
//     filter's code section by Go package (from the name section).
//
// Everything (load generator, identity server, upstream, Envoy) shares one
// machine, so absolute numbers describe this machine under this load; the
// differences and ratios between listeners measured in the same rounds are
// what the targets are about. -quick runs a shorter version (~3 minutes; its
// refresh-ahead runs last 6 s).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	flog "fortio.org/log"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
	"github.com/phantom-token/envoy-phantom-token/e2e/harness"
	"github.com/phantom-token/envoy-phantom-token/measure/routeset"
	"github.com/phantom-token/envoy-phantom-token/measure/wasmfile"
)

// The listeners of the side-by-side Envoy, in the order they are printed.
const (
	passthrough = "passthrough"
	noop        = "noop"
	noopJWT     = "noop-jwt"
	hit         = "hit"
	noCache     = "nocache"
	hitTable    = "hit-table"
	hitRoutes   = "hit-routes"
	debugHit    = "hit-debugstats"
	debugRoutes = "hit-routes-debugstats"
	hitGOGC     = "hit-gogc"
	hitBase     = "hit-base" // hit's configuration on the module built from -base-ref
)

var listeners = []string{passthrough, noop, noopJWT, hit, hitTable, hitRoutes, hitOwn, hitDPoP, noCache}

// routeCount is the number of Envoy routes of hit-table and hit-routes, and
// of route rules of hit-routes.
const routeCount = 50

// maxRouteCPU is issue 15's target: a hit on a named route (hit-routes)
// adds at most this many µs of Envoy CPU per request over a plain hit.
const maxRouteCPU = 1.0

// The targets of issue 9, against the no-op filter measured in the same run.
const (
	maxHitCPU      = 4.0  // µs of Envoy CPU per request a cache hit adds over noop, 1 connection
	maxHitP50      = 5.0  // µs a cache hit adds to p50 over noop, 1 connection
	minHitRPS      = 0.97 // hit req/s / noop req/s at saturation
	minHitRPSPass  = 0.90 // hit req/s / passthrough req/s at saturation (follows from the above)
	maxHitRSS      = 10.0 // MiB of RSS the filter adds over noop, 2 workers
	targetWorkers  = 2    // workers of the RSS target
	flatTolerance  = 0.05 // spread allowed in the last three RSS samples of the churn
	clientID       = "bench-gateway"
	burstSlowDelay = 100 * time.Millisecond
)

var (
	quick        = flag.Bool("quick", false, "a short run (~3 minutes): fewer, shorter rounds and a smaller churn")
	rounds       = flag.Int("rounds", 10, "interleaved rounds over the listeners")
	oneDur       = flag.Duration("one", 2500*time.Millisecond, "length of a one-connection run")
	satDur       = flag.Duration("sat", 2*time.Second, "length of a saturation run")
	satConns     = flag.Int("sat-conns", 32, "connections of a saturation run")
	warmup       = flag.Duration("warmup", 2*time.Second, "warm-up per listener and load before the rounds (V8 tiers up)")
	workers      = flag.Int("workers", 1, "Envoy workers of the side-by-side and profile Envoys")
	rssWorkers   = flag.String("rss-workers", "1,2,8", "worker counts of the memory Envoys")
	profileDur   = flag.Duration("profile", 8*time.Second, "length of the debugstats run")
	burst        = flag.Int("burst", 256, "simultaneous requests with one new token")
	tokens       = flag.Int("tokens", 200_000, "distinct tokens of the churn check (0: skip it)")
	memWorkers   = flag.Int("mem-workers", 32, "concurrent keep-alive clients of the churn")
	memBudget    = flag.Duration("mem-budget", 2*time.Minute, "time allowed for the churn; it reports what it did by then")
	cacheEntries = flag.Int("cache-entries", 10_000, "cache_max_entries of the filter")
	root         = flag.String("root", "..", "the repository root, where the debugstats module is built from")
	top          = flag.Int("top", 25, "packages listed in the module breakdown")
	gogc         = flag.String("gogc", "25", "GOGC of one more filter configuration in the memory phase (empty: none)")
	phases       = flag.String("phases", "side,profile,refresh,memory", "phases to run, of side, profile, refresh, memory, in that order (the module breakdown always prints)")
	only         = flag.String("listeners", "", "listeners of the side-by-side phase, a subset of all with hit among them (e.g. hit,hit-table,hit-routes); empty: all")
	perfDir      = flag.String("perf-dir", "", "an empty directory: record Envoy with `perf record` during each 1-connection run of the side-by-side phase, one file per listener and round (see perf.go)")
	baseRef      = flag.String("base-ref", "", "a git ref of the repository (-root): its filter module is built and runs hit's configuration as listener hit-base beside hit (issue 19)")
)

func phase(name string) bool { return slices.Contains(strings.Split(*phases, ","), name) }

func main() {
	flag.Parse()
	if *quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		quickDefault := func(name, value string) {
			if !set[name] {
				_ = flag.Set(name, value)
			}
		}
		quickDefault("rounds", "3")
		quickDefault("one", "1500ms")
		quickDefault("sat", "1500ms")
		quickDefault("warmup", "1s")
		quickDefault("profile", "4s")
		quickDefault("tokens", "20000")
		quickDefault("mem-budget", "30s")
		quickDefault("refresh-dur", "6s")
		quickDefault("refresh-warmup", "1s")
	}
	log.SetFlags(0)
	if *baseRef != "" {
		listeners = append(listeners, hitBase)
	}
	if *only != "" {
		some := strings.Split(*only, ",")
		known := slices.Concat(listeners, extraListeners)
		for _, s := range some {
			if !slices.Contains(known, s) {
				log.Fatalf("-listeners: %q is not one of %s", s, strings.Join(known, ","))
			}
			if s == hitBase && *baseRef == "" {
				log.Fatalf("-listeners: %s needs -base-ref", hitBase)
			}
		}
		if !slices.Contains(some, hit) {
			log.Fatalf("-listeners: hit must be among them (its fill learns the JWT, and the others are compared with it)")
		}
		listeners = some
	}
	flog.SetLogLevelQuiet(flog.Error) // fortio's per-run info lines would bury the tables
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

// bench is what the phases share.
type bench struct {
	ctx                           context.Context
	envoyPath, wasmPath, dir      string
	noopPath, debugPath           string
	basePath, baseCommit          string // the module built from -base-ref, and the commit
	miniPaths                     map[string]string
	upstream                      *upstream
	ids                           *fixtures.IdS
	secret                        string
	tok, noCacheTok, jwt          string  // a token the hit listeners cache; one for nocache; tok's JWT
	proofs                        *proofs // hit-dpop's key, bound token and proofs
	envoyVersion                  string
	filterInfo, noopInfo          *wasmfile.Module
	sideOne, sideSat              map[string][]sample
	prof, profRoutes, profDPoP    profile
	rss                           map[string]map[int]memBreakdown // config → workers → breakdown
	coalesced                     int
	flat                          flatness
	churned                       bool
	loadBefore, loadAfterSideSide string
	refreshRuns                   []refreshRun
}

func run() (err error) {
	began := time.Now()
	b := &bench{ctx: context.Background(), envoyPath: os.Getenv("ENVOY_PATH"), wasmPath: os.Getenv("WASM_PATH")}
	if b.envoyPath == "" || b.wasmPath == "" {
		return fmt.Errorf("ENVOY_PATH and WASM_PATH must be set: run `make bench` from the repository root")
	}
	b.loadBefore = loadAvg()

	if b.upstream, err = startUpstream(); err != nil {
		return err
	}
	defer b.upstream.Close()
	b.secret = fixtures.RandomToken()
	if b.ids, err = fixtures.StartIdS(fixtures.AnyPort, map[string]string{clientID: b.secret}); err != nil {
		return err
	}
	defer b.ids.Close()
	b.ids.SetHistory(false)
	b.ids.SlowDelay = burstSlowDelay // set before any request reaches the IdS

	if b.dir, err = os.MkdirTemp("", "phantom-bench-"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			fmt.Fprintf(os.Stderr, "work directory (Envoy logs) kept: %s\n", b.dir)
			return
		}
		_ = os.RemoveAll(b.dir)
	}()
	if err := b.buildModules(); err != nil {
		return err
	}
	if out, err := exec.Command(b.envoyPath, "--version").Output(); err == nil {
		b.envoyVersion = strings.TrimSpace(string(out))
		if _, v, ok := strings.Cut(b.envoyVersion, "version: "); ok {
			b.envoyVersion = v
		}
	}
	printMachine(b)
	b.tok = b.ids.Issue(fixtures.TokenOptions{Scope: "read"})
	b.noCacheTok = b.ids.Issue(fixtures.TokenOptions{Scope: "read"})
	key, err := fixtures.NewDPoPKey()
	if err != nil {
		return err
	}
	b.proofs = newProofs(b.ids.Issue(fixtures.TokenOptions{Scope: "read", JKT: key.Thumbprint}), key)

	for _, p := range []struct {
		name string
		run  func() error
	}{{"side", b.sideBySide}, {"profile", b.profile}, {"refresh", b.refresh}, {"memory", b.memory}} {
		if phase(p.name) {
			if err := p.run(); err != nil {
				return err
			}
		}
	}
	printModules(b.filterInfo, b.noopInfo, *top)
	b.targets()
	fmt.Printf("\nload average   before %s, at the end %s (2 CPUs; others may share them: the rounds are interleaved so that ratios stay fair)\n", b.loadBefore, loadAvg())
	fmt.Printf("bench took %s\n", time.Since(began).Round(time.Second))
	return nil
}

// buildModules builds the no-op module and the filter with -tags debugstats
// into the work directory, and reads the sections of the no-op and of the
// filter under test (WASM_PATH).
func (b *bench) buildModules() error {
	b.noopPath = filepath.Join(b.dir, "noop.wasm")
	b.debugPath = filepath.Join(b.dir, "phantom_token_debugstats.wasm")
	rootDir, err := filepath.Abs(*root)
	if err != nil {
		return err
	}
	for _, c := range []struct {
		dir  string
		args []string
	}{
		{".", []string{"build", "-buildmode=c-shared", "-trimpath", "-o", b.noopPath, "./bench/noop"}},
		{rootDir, []string{"build", "-tags", "debugstats", "-buildmode=c-shared", "-trimpath", "-o", b.debugPath, "./filter"}},
	} {
		cmd := exec.Command("go", c.args...)
		cmd.Dir = c.dir
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if out, err := cmd.CombinedOutput(); err != nil {
			if c.dir == rootDir { // the profile needs it; the rest does not
				fmt.Printf("cannot build the debugstats module, the profile runs without it: go %s: %v\n%s", strings.Join(c.args, " "), err, out)
				b.debugPath = ""
				continue
			}
			return fmt.Errorf("go %s: %v\n%s", strings.Join(c.args, " "), err, out)
		}
	}
	if *baseRef != "" && slices.Contains(listeners, hitBase) {
		if err := b.buildBase(rootDir); err != nil {
			return err
		}
	}
	if err := b.buildExtra(); err != nil {
		return err
	}
	if b.filterInfo, err = wasmfile.Read(b.wasmPath); err != nil {
		return fmt.Errorf("%s: %w", b.wasmPath, err)
	}
	if b.noopInfo, err = wasmfile.Read(b.noopPath); err != nil {
		return fmt.Errorf("%s: %w", b.noopPath, err)
	}
	return nil
}

// plugin is the filter's configuration, with or without its cache.
func (b *bench) plugin(cache bool) map[string]any {
	return map[string]any{
		"introspection_url": b.ids.URL + fixtures.IntrospectionPath,
		"cluster":           "ids",
		"client_id":         clientID,
		"client_secret":     b.secret,
		"timeout":           "2s",
		"cache":             cache,
		"cache_max_ttl":     "1800s", // longer than the bench: a hit listener's token stays cached through every round
		"cache_max_entries": *cacheEntries,
	}
}

// scenario is the listener of one configuration.
func (b *bench) scenario(name string) harness.Scenario {
	switch name {
	case noop, noopJWT:
		return harness.Scenario{Name: name, Plugin: "{}", WasmPath: b.noopPath, VMID: noop}
	case hit:
		return harness.Scenario{Name: hit, Plugin: b.plugin(true)}
	case noCache:
		return harness.Scenario{Name: noCache, Plugin: b.plugin(false)}
	case hitDPoP:
		return harness.Scenario{Name: hitDPoP, Plugin: b.dpopPlugin()}
	case hitTable:
		return harness.Scenario{Name: hitTable, Plugin: b.plugin(true), Routes: routeTable()}
	case hitRoutes:
		return harness.Scenario{Name: hitRoutes, Plugin: b.routedPlugin(), Routes: routeTable()}
	case hitGOGC:
		return harness.Scenario{Name: hitGOGC, Plugin: b.plugin(true), VMID: "gogc", Env: map[string]string{"GOGC": *gogc}}
	case hitBase:
		return harness.Scenario{Name: hitBase, Plugin: b.plugin(true), WasmPath: b.basePath, VMID: "base"}
	case miniJWT, miniAllJWT, miniHit, miniHit3, padJWT, miniMemJWT:
		return harness.Scenario{Name: name, Plugin: "{}", WasmPath: b.miniPaths[name], VMID: name}
	case debugHit:
		return harness.Scenario{Name: debugHit, Plugin: b.plugin(true), WasmPath: b.debugPath, VMID: "debugstats"}
	case debugDPoP:
		return harness.Scenario{Name: debugDPoP, Plugin: b.dpopPlugin(), WasmPath: b.debugPath, VMID: "debugstats"}
	case debugRoutes:
		return harness.Scenario{Name: debugRoutes, Plugin: b.routedPlugin(), Routes: routeTable(), WasmPath: b.debugPath, VMID: "debugstats"}
	}
	return harness.Scenario{Name: name}
}

// routedPlugin is hit's configuration with routeCount route rules.
func (b *bench) routedPlugin() map[string]any {
	p := b.plugin(true)
	p["routes"] = routeset.Rules(routeCount)
	return p
}

// routeTable is the Envoy route table of the routed listeners.
func routeTable() []harness.Route {
	var out []harness.Route
	for _, r := range routeset.Envoy(routeCount) {
		out = append(out, harness.Route{Name: r.Name, Prefix: r.Prefix})
	}
	return out
}

// url is where the requests of a listener go, before the path of the run:
// on a routed listener, under the target route's prefix.
func url(envoy *harness.Envoy, listener string) string {
	switch listener {
	case hitTable, hitRoutes, debugRoutes:
		return envoy.URL(listener) + strings.TrimSuffix(routeset.Target(routeCount).Prefix, "/")
	case hitOwn:
		return envoy.URL(hit)
	}
	return envoy.URL(listener)
}

// cached reports whether every request on a listener should be a cache hit.
func cached(listener string) bool {
	return listener == hit || listener == hitTable || listener == hitRoutes || listener == hitOwn || listener == hitDPoP || listener == hitBase
}

// loadOn runs a listener's load: fortio, or the bench's own client for the
// DPoP listeners (see dpop.go).
func (b *bench) loadOn(envoy *harness.Envoy, listener, path string, d time.Duration, n, pid int) (sample, error) {
	u := url(envoy, listener) + path
	switch listener {
	case hitDPoP, debugDPoP:
		return b.proofs.load(u, d, n, pid)
	case hitOwn:
		return bearerLoad(u, b.tok, d, n, pid)
	}
	return load(u, b.token(listener), d, n, pid)
}

// checkRoutes makes sure the routed listeners' requests reach the route and
// the rule meant for them: without a token, hit-routes challenges with the
// target rule's realm, and hit-table with the top level's.
func checkRoutes(envoy *harness.Envoy) error {
	for _, c := range []struct{ listener, realm string }{{hitTable, "api"}, {hitRoutes, routeset.TargetRealm}} {
		if !slices.Contains(listeners, c.listener) {
			continue
		}
		res, err := http.Get(url(envoy, c.listener) + "/check")
		if err != nil {
			return err
		}
		_ = res.Body.Close()
		want := `realm="` + c.realm + `"`
		if got := res.Header.Get("WWW-Authenticate"); res.StatusCode != http.StatusUnauthorized || !strings.Contains(got, want) {
			return fmt.Errorf("%s: a request without a token got %d %q, want 401 with %s: not on the target route and rule", c.listener, res.StatusCode, got, want)
		}
	}
	return nil
}

// start runs an Envoy with these listeners and workers, in a directory of
// its own, and returns it with its process ID.
func (b *bench) start(n int, names ...string) (*harness.Envoy, int, error) {
	dir, err := os.MkdirTemp(b.dir, "envoy-")
	if err != nil {
		return nil, 0, err
	}
	var ss []harness.Scenario
	for _, name := range names {
		if name != hitOwn { // hit's listener
			ss = append(ss, b.scenario(name))
		}
	}
	envoy, err := harness.Start(b.ctx, harness.Config{
		EnvoyPath:    b.envoyPath,
		WasmPath:     b.wasmPath,
		Dir:          dir,
		Clusters:     map[string]string{"api": b.upstream.addr, "ids": b.ids.Addr.String()},
		Upstream:     "api",
		Concurrency:  n,
		WasmLogLevel: "info", // per-request debug lines are not part of the filter's cost
		Scenarios:    ss,
	})
	if err != nil {
		return nil, 0, fmt.Errorf("starting Envoy (%s): %w", strings.Join(names, ", "), err)
	}
	pid, err := envoy.PID()
	if err != nil {
		_ = envoy.Stop()
		return nil, 0, err
	}
	return envoy, pid, nil
}

// stop ends an Envoy and fails if its log says a wasm VM failed.
func stop(envoy *harness.Envoy) error {
	_ = envoy.Stop()
	text, err := envoy.Log()
	if err != nil {
		return err
	}
	if bad := harness.VMFailures(text); len(bad) > 0 {
		return fmt.Errorf("a wasm VM failed, says Envoy's log (%s):\n%s", envoy.LogPath, strings.Join(bad[:min(len(bad), 5)], "\n"))
	}
	return nil
}

// fill puts b.tok into the cache of a hit listener: two requests, one
// introspection.
func (b *bench) fill(base string) error {
	before := b.ids.Introspections()
	for i := range 2 {
		status, err := get(http.DefaultClient, base+"/fill", b.tok)
		if err != nil || status != http.StatusOK {
			return fmt.Errorf("cache fill request %d: status %d, %v", i, status, err)
		}
	}
	if n := b.ids.Introspections() - before; n > 1 {
		return fmt.Errorf("cache fill: %d introspections for two requests, want at most 1 (is the cache on?)", n)
	}
	return nil
}

func (b *bench) token(listener string) string {
	switch listener {
	case noCache:
		return b.noCacheTok
	case noopJWT, miniJWT, miniAllJWT, padJWT, miniMemJWT:
		return b.jwt
	}
	return b.tok // passthrough and noop parse the same request as hit
}

// sideBySide is phase 1.
func (b *bench) sideBySide() error {
	envoy, pid, err := b.start(*workers, listeners...)
	if err != nil && slices.Contains(listeners, hitBase) {
		return fmt.Errorf("%w\n(hit-base runs the filter of -base-ref %s with hit's configuration: if Envoy's log names that listener or the base VM, that module does not accept it)", err, *baseRef)
	}
	if err != nil {
		return err
	}
	defer func() { _ = envoy.Stop() }()
	fmt.Printf("\n== Side by side: one Envoy, %d worker(s), %d interleaved rounds; per round and listener: 1 connection for %s, then %d connections for %s\n",
		*workers, *rounds, *oneDur, *satConns, *satDur)
	fmt.Printf("load average at start: %s\n", loadAvg())
	b.ids.SetHistory(true) // to learn the JWT
	err = b.fill(envoy.URL(hit))
	b.ids.SetHistory(false)
	if err != nil {
		return err
	}
	for _, s := range []string{hitTable, hitRoutes, hitBase} {
		if !slices.Contains(listeners, s) {
			continue
		}
		if err := b.fill(url(envoy, s)); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	if err := checkRoutes(envoy); err != nil {
		return err
	}
	if slices.Contains(listeners, hitDPoP) {
		if err := b.fillDPoP(url(envoy, hitDPoP)); err != nil {
			return err
		}
		if err := b.checkDPoP(url(envoy, hitDPoP)); err != nil {
			return err
		}
	}
	if b.jwt = b.ids.JWTOf(b.tok); b.jwt == "" {
		return fmt.Errorf("the IdS has no JWT for the hit token")
	}
	fmt.Printf("token %d bytes; its JWT, which the filter sends upstream instead, %d bytes\n", len(b.tok), len(b.jwt))
	for _, s := range listeners {
		if _, err := b.loadOn(envoy, s, "/warmup", *warmup, 1, 0); err != nil {
			return err
		}
		if _, err := b.loadOn(envoy, s, "/warmup", *warmup, *satConns, 0); err != nil {
			return err
		}
	}
	b.sideOne, b.sideSat = map[string][]sample{}, map[string][]sample{}
	// A round runs every listener at one connection, then every listener at
	// saturation, each time starting one listener further: every listener
	// takes every position in turn, and runs compared within a round are
	// close in time.
	for r := range *rounds {
		for _, c := range []struct {
			conns int
			d     time.Duration
			pid   int
			out   map[string][]sample
		}{{1, *oneDur, pid, b.sideOne}, {*satConns, *satDur, pid, b.sideSat}} {
			for i := range listeners {
				s := listeners[(i+r)%len(listeners)]
				before := b.ids.Introspections()
				rec := startPerf(c.pid, s, r, c.conns, c.d)
				x, err := b.loadOn(envoy, s, "/run", c.d, c.conns, c.pid)
				rec.wait()
				if err != nil {
					return err
				}
				if cached(s) && b.ids.Introspections() != before {
					return fmt.Errorf("the %s listener introspected %d times: its token left the cache", s, b.ids.Introspections()-before)
				}
				c.out[s] = append(c.out[s], x)
			}
		}
	}
	b.loadAfterSideSide = loadAvg()
	b.printSideBySide()
	return stop(envoy)
}

// paired is the median over rounds of op(f(x), f(y)) for the runs of x and
// y in the same round: a disturbance that hits one round moves one pair.
// It is NaN without pairs (a listener left out with -listeners).
func paired(xs, ys []sample, f func(sample) float64, op func(a, b float64) float64) float64 {
	if len(xs) == 0 || len(ys) == 0 {
		return math.NaN()
	}
	var v []sample
	for i := range min(len(xs), len(ys)) {
		v = append(v, sample{rps: op(f(xs[i]), f(ys[i]))})
	}
	return median(v, func(s sample) float64 { return s.rps })
}

var (
	rpsOf = func(s sample) float64 { return s.rps }
	p50Of = func(s sample) float64 { return s.p50 }
	p99Of = func(s sample) float64 { return s.p99 }
	cpuOf = func(s sample) float64 { return s.cpuPerReq() }
	minus = func(a, b float64) float64 { return a - b }
	ratio = func(a, b float64) float64 { return a / b }
)

func (b *bench) printSideBySide() {
	one, sat := b.sideOne, b.sideSat
	fmt.Printf("\n%-12s | %-66s | %-42s | %s\n", "", "1 connection: medians over rounds (Δ: median of same-round differences)", fmt.Sprintf("%d connections: medians (× same-round ratios)", *satConns), "")
	fmt.Printf("%-12s | %7s %8s %7s %8s %8s %8s %6s | %8s %7s %7s %8s | %7s\n",
		"listener", "p50 µs", "Δnoop", "p99 µs", "CPU µs", "Δnoop", "pooled", "req/s", "req/s", "×pass", "×noop", "CPU µs", "non-200")
	for _, s := range listeners {
		var bad int64
		for _, x := range append(slices.Clone(one[s]), sat[s]...) {
			bad += x.bad
		}
		base := noop
		if s == noop {
			base = passthrough
		}
		dP50, dCPU := "-", "-"
		if s != passthrough {
			dP50 = fmt.Sprintf("%+.1f", paired(one[s], one[base], p50Of, minus))
			dCPU = fmt.Sprintf("%+.1f", paired(one[s], one[base], cpuOf, minus))
			if s == noop {
				dP50, dCPU = "("+dP50+")", "("+dCPU+")"
			}
		}
		fmt.Printf("%-12s | %7.0f %8s %7.0f %8.1f %8s %8.1f %6.0f | %8.0f %7.3f %7.3f %8.1f | %7d\n",
			s, median(one[s], p50Of), dP50, median(one[s], p99Of), median(one[s], cpuOf), dCPU, pooledCPU(one[s]), median(one[s], rpsOf),
			median(sat[s], rpsOf), paired(sat[s], sat[passthrough], rpsOf, ratio), paired(sat[s], sat[noop], rpsOf, ratio), pooledCPU(sat[s]), bad)
	}
	fmt.Printf("(Δnoop: over the no-op filter; for noop, in parentheses, over passthrough. CPU: Envoy's threads' run time over a run / its requests;\n" +
		" pooled: over all rounds. noop-jwt: the no-op filter with the client sending the JWT itself)\n")
	fmt.Printf("\nper round (CPU µs/request at 1 connection | req/s at %d connections)\n", *satConns)
	for _, s := range listeners {
		var c, r []string
		for i := range one[s] {
			c = append(c, strconv.FormatFloat(one[s][i].cpuPerReq(), 'f', 1, 64))
		}
		for i := range sat[s] {
			r = append(r, strconv.FormatFloat(sat[s][i].rps, 'f', 0, 64))
		}
		fmt.Printf("%-12s %s | %s\n", s, strings.Join(c, " "), strings.Join(r, " "))
	}
	fmt.Printf("load average after the rounds: %s\n", b.loadAfterSideSide)
	b.printRoutes()
	b.printDPoP()
	b.printBase()
	b.printAttribution()
	b.printPerf()
}

// printRoutes prints the routed listeners against hit, measured in the same
// rounds: what a table of named Envoy routes costs (hit-table), and what the
// route rules cost on top of it (hit-routes).
func (b *bench) printRoutes() {
	one, sat := b.sideOne, b.sideSat
	if len(one[hitTable]) == 0 && len(one[hitRoutes]) == 0 {
		return
	}
	fmt.Printf("\nroutes (issue 15): %d named Envoy routes; hit-routes also has %d route rules and its requests land on %q, which rule %d of %d names\n",
		routeCount, routeCount, routeset.Target(routeCount).Name, routeCount-1, routeCount)
	fmt.Printf("%-12s | %8s %8s %8s | %7s %8s | %9s\n", "listener", "CPU µs", "Δhit", "pooled", "p50 µs", "Δhit", "req/s×hit")
	for _, s := range []string{hit, hitTable, hitRoutes} {
		if len(one[s]) == 0 {
			continue
		}
		dCPU, pCPU, dP50, r := "-", "-", "-", "-"
		if s != hit {
			dCPU = fmt.Sprintf("%+.2f", paired(one[s], one[hit], cpuOf, minus))
			pCPU = fmt.Sprintf("%+.2f", pooledCPU(one[s])-pooledCPU(one[hit]))
			dP50 = fmt.Sprintf("%+.1f", paired(one[s], one[hit], p50Of, minus))
			r = fmt.Sprintf("%.3f", paired(sat[s], sat[hit], rpsOf, ratio))
		}
		fmt.Printf("%-12s | %8.1f %8s %8s | %7.0f %8s | %9s\n", s, median(one[s], cpuOf), dCPU, pCPU, median(one[s], p50Of), dP50, r)
	}
	if len(one[hitTable]) > 0 && len(one[hitRoutes]) > 0 {
		fmt.Printf("%-12s | %8s %8s %8s | %7s %8s | %9s\n", "rules only", "", fmt.Sprintf("%+.2f", paired(one[hitRoutes], one[hitTable], cpuOf, minus)),
			fmt.Sprintf("%+.2f", pooledCPU(one[hitRoutes])-pooledCPU(one[hitTable])), "", fmt.Sprintf("%+.1f", paired(one[hitRoutes], one[hitTable], p50Of, minus)),
			fmt.Sprintf("%.3f", paired(sat[hitRoutes], sat[hitTable], rpsOf, ratio)))
	}
	fmt.Printf("(Δhit: median of same-round differences to hit at 1 connection; pooled: over all rounds; req/s×hit: median of same-round ratios at %d connections;\n"+
		" rules only: hit-routes against hit-table, the filter's share)\n", *satConns)
	fmt.Printf("per round, CPU µs/request over hit at 1 connection\n")
	for _, s := range []string{hitTable, hitRoutes} {
		if len(one[s]) == 0 {
			continue
		}
		var d []string
		for i := range min(len(one[s]), len(one[hit])) {
			d = append(d, fmt.Sprintf("%+.1f", one[s][i].cpuPerReq()-one[hit][i].cpuPerReq()))
		}
		fmt.Printf("%-12s %s\n", s, strings.Join(d, " "))
	}
}

// printMachine says what the numbers were measured on.
func printMachine(b *bench) {
	model := "unknown"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	fmt.Printf("== Machine\n")
	fmt.Printf("cpus (nproc)   %d\ncpu model      %s\ngo             %s\nenvoy          %s\n", runtime.NumCPU(), model, runtime.Version(), b.envoyVersion)
	fmt.Printf("module         %s (%d bytes); no-op %d bytes\n", b.wasmPath, b.filterInfo.Size, b.noopInfo.Size)
	if b.basePath != "" {
		if fi, err := os.Stat(b.basePath); err == nil {
			fmt.Printf("base module    %s = %s, built from git (%d bytes): listener hit-base\n", *baseRef, b.baseCommit[:12], fi.Size())
		}
	}
	for _, l := range extraListeners {
		if fi, err := os.Stat(b.miniPaths[l]); err == nil {
			fmt.Printf("%-14s %d bytes (measure/bench %s, tags %q)\n", l, fi.Size(), extraBuilds[l].pkg, extraBuilds[l].tags)
		}
	}
	fmt.Printf("load           fortio (library) in this process, which also runs the IdS and the upstream (answers %d bytes)\n", len(upstreamBody))
	fmt.Printf("load average   %s\n", b.loadBefore)
}

// verdict prints one target as PASS or MISS with what was measured.
func verdict(pass bool, target, measured string) {
	status := "MISS"
	if pass {
		status = "PASS"
	}
	fmt.Printf("%s  %-64s %s\n", status, target, measured)
}

// targets prints issue 9's targets and the checks kept from the earlier bench.
func (b *bench) targets() {
	fmt.Printf("\n== Targets (issue 9; against the no-op filter in the same run)\n")
	if len(b.sideOne[hit]) > 0 && len(b.sideOne[noop]) > 0 {
		b.sideTargets()
	}
	if len(b.sideOne[hitRoutes]) > 0 {
		b.routeTarget()
	}
	b.issue19Targets()
	b.refreshTarget()
	f, n := b.rss["filter"][targetWorkers], b.rss[noop][targetWorkers]
	if f.rss > 0 && n.rss > 0 {
		d := float64(f.rss-n.rss) / 1024
		verdict(d <= maxHitRSS, fmt.Sprintf("filter RSS ≤ noop + %.0f MiB at %d workers", maxHitRSS, targetWorkers),
			fmt.Sprintf("%+.1f MiB (%.1f vs %.1f MiB; margin %+.1f MiB)", d, float64(f.rss)/1024, float64(n.rss)/1024, maxHitRSS-d))
	}
	if !phase("memory") {
		return
	}
	fmt.Printf("\n== Checks kept from the earlier bench\n")
	verdict(b.coalesced == 1, fmt.Sprintf("1 introspection for %d simultaneous requests with a new token", *burst),
		fmt.Sprintf("%d introspections", b.coalesced))
	if b.churned {
		verdict(b.flat.ok, fmt.Sprintf("RSS flat under %d distinct tokens (last 3 within %.0f%%)", *tokens, 100*flatTolerance),
			fmt.Sprintf("spread %.1f%%", 100*b.flat.spread))
	}
}

// sideTargets prints the targets measured side by side.
func (b *bench) sideTargets() {
	one, sat := b.sideOne, b.sideSat
	dCPU := paired(one[hit], one[noop], cpuOf, minus)
	dP50 := paired(one[hit], one[noop], p50Of, minus)
	r := paired(sat[hit], sat[noop], rpsOf, ratio)
	verdict(dCPU <= maxHitCPU, fmt.Sprintf("hit adds ≤ %.0f µs Envoy CPU/request over noop, 1 connection", maxHitCPU),
		fmt.Sprintf("%+.1f µs (median of %d rounds; pooled %+.1f; margin %+.1f µs)", dCPU, len(one[hit]), pooledCPU(one[hit])-pooledCPU(one[noop]), maxHitCPU-dCPU))
	verdict(dP50 <= maxHitP50, fmt.Sprintf("hit adds ≤ %.0f µs p50 over noop, 1 connection", maxHitP50),
		fmt.Sprintf("%+.1f µs (%.0f vs %.0f; margin %+.1f µs)", dP50, median(one[hit], p50Of), median(one[noop], p50Of), maxHitP50-dP50))
	verdict(r >= minHitRPS, fmt.Sprintf("hit req/s ≥ %.2f × noop at %d connections", minHitRPS, *satConns),
		fmt.Sprintf("%.3f × (margin %+.1f points)", r, 100*(r-minHitRPS)))
	fmt.Printf("      (hit reaches %.3f × passthrough, aim ≥ %.2f; noop reaches %.3f × passthrough)\n",
		paired(sat[hit], sat[passthrough], rpsOf, ratio), minHitRPSPass, paired(sat[noop], sat[passthrough], rpsOf, ratio))
	if len(one[noopJWT]) > 0 {
		fmt.Printf("      (of hit's %+.1f µs CPU and %+.1f µs p50 over noop, noop-jwt shows %+.1f µs and %+.1f µs are the JWT's bytes through Envoy)\n",
			dCPU, dP50, paired(one[noopJWT], one[noop], cpuOf, minus), paired(one[noopJWT], one[noop], p50Of, minus))
	}
}

// routeTarget prints issue 15's target: a hit on a named route against a
// plain hit, measured in the same rounds.
func (b *bench) routeTarget() {
	one, sat := b.sideOne, b.sideSat
	d := paired(one[hitRoutes], one[hit], cpuOf, minus)
	verdict(d <= maxRouteCPU, fmt.Sprintf("hit on a named route (%d rules) adds ≤ %.0f µs Envoy CPU/request over hit (issue 15)", routeCount, maxRouteCPU),
		fmt.Sprintf("%+.2f µs (median of %d rounds; pooled %+.2f; margin %+.2f µs)", d, len(one[hitRoutes]), pooledCPU(one[hitRoutes])-pooledCPU(one[hit]), maxRouteCPU-d))
	fmt.Printf("      (of which Envoy's %d-route table, hit-table over hit: %+.2f µs; the rules, hit-routes over hit-table: %+.2f µs;\n"+
		"       p50 %+.1f µs over hit; req/s %.3f × hit at %d connections)\n",
		routeCount, paired(one[hitTable], one[hit], cpuOf, minus), paired(one[hitRoutes], one[hitTable], cpuOf, minus),
		paired(one[hitRoutes], one[hit], p50Of, minus), paired(sat[hitRoutes], sat[hit], rpsOf, ratio), *satConns)
}
