package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	neturl "net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"fortio.org/fortio/periodic"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
)

// The DPoP listeners (issue 16). A DPoP proof is signed and used once, so
// fortio's HTTP clients, which send the same headers on every request,
// cannot make these requests: own, a raw HTTP/1.1 keep-alive client run by
// fortio's periodic runner (the same closed loop, threads and latency log as
// load), sends requests made before the run, one new ES256 proof each.
// "hit-own" is that client on hit with the plain Bearer token: its figures
// against hit's are what the client alone changes.
const (
	hitDPoP = "hit-dpop" // hit's configuration with "dpop": "allowed"; a DPoP-bound token and a new proof per request
	hitOwn  = "hit-own"  // hit's listener and token, driven by own
	// debugDPoP is hit-dpop on the debugstats build, in the profile phase.
	debugDPoP = "hit-dpop-debugstats"
)

var dpopReplayEntries = flag.Int("dpop-replay-entries", 1_000_000, "dpop_replay_max_entries of hit-dpop (the replay memory must hold every proof of 120 s; see dpopPlugin)")

// dpopPlugin is hit's configuration with DPoP allowed. Its replay memory
// keeps a proof for twice dpop_iat_window (120 s); hit-dpop sends about
// 100,000 proofs in the busiest 120 s of a full run (it is printed), and a
// set of 8 that fills answers 503, which the bench counts: the memory is the
// largest the filter allows (1M), so that its sets stay sparse.
func (b *bench) dpopPlugin() map[string]any {
	p := b.plugin(true)
	p["dpop"] = "allowed"
	p["dpop_replay_max_entries"] = *dpopReplayEntries
	return p
}

// proofs makes hit-dpop's requests for one run before it starts; the
// signing is the client's work, not Envoy's.
type proofs struct {
	key   *fixtures.DPoPKey
	tok   string          // bound to key (cnf.jkt)
	rate  map[int]float64 // highest req/s seen per connection count
	sent  []time.Time     // when each run began, with sentN
	sentN []int64
	late  int64 // proofs made during runs because the made ones ran out
}

func newProofs(tok string, key *fixtures.DPoPKey) *proofs {
	return &proofs{key: key, tok: tok, rate: map[int]float64{}}
}

// request is one GET of u with the DPoP token and a new proof.
func (p *proofs) request(u *neturl.URL) ([]byte, error) {
	proof, err := p.key.Proof(fixtures.DPoPRequest{Method: http.MethodGet, URL: u.String(), Token: p.tok})
	if err != nil {
		return nil, err
	}
	return []byte("GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nAuthorization: DPoP " + p.tok + "\r\nDPoP: " + proof + "\r\n\r\n"), nil
}

// make returns n requests, made on every CPU.
func (p *proofs) make(u *neturl.URL, n int) ([][]byte, error) {
	out := make([][]byte, n)
	var wg sync.WaitGroup
	var failed atomic.Value
	parts := runtime.NumCPU()
	for w := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += parts {
				r, err := p.request(u)
				if err != nil {
					failed.Store(err)
					return
				}
				out[i] = r
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return nil, err
	}
	return out, nil
}

// count is how many requests a run of d at n connections is given: half as
// many again as the fastest run seen would send, 20k/s before any.
func (p *proofs) count(d time.Duration, n int) int {
	r := p.rate[n]
	if r == 0 {
		r = 20_000
	}
	return int(math.Ceil(1.5*r*d.Seconds())) + 500
}

// load is hit-dpop's load: like load, with own and requests made before the
// run (and, if they run out, during it, counted in p.late).
func (p *proofs) load(u string, d time.Duration, n, pid int) (sample, error) {
	parsed, err := neturl.Parse(u)
	if err != nil {
		return sample{}, err
	}
	reqs, err := p.make(parsed, p.count(d, n))
	if err != nil {
		return sample{}, err
	}
	var next atomic.Int64
	more := func() []byte {
		i := next.Add(1) - 1
		if i < int64(len(reqs)) {
			return reqs[i]
		}
		atomic.AddInt64(&p.late, 1)
		r, err := p.request(parsed)
		if err != nil {
			return nil
		}
		return r
	}
	p.sent, p.sentN = append(p.sent, time.Now()), append(p.sentN, 0)
	x, err := ownLoad(parsed.Host, more, d, n, pid)
	p.sentN[len(p.sentN)-1] = x.count
	p.rate[n] = max(p.rate[n], x.rps)
	return x, err
}

// busiest is the most proofs sent in runs that began within window of one
// another: an upper bound of what the replay memory holds at once.
func (p *proofs) busiest(window time.Duration) int64 {
	var most int64
	for i := range p.sent {
		var n int64
		for j := i; j < len(p.sent) && p.sent[j].Sub(p.sent[i]) < window; j++ {
			n += p.sentN[j]
		}
		most = max(most, n)
	}
	return most
}

// bearerLoad is hit-own's load: own with the same Bearer request every time.
func bearerLoad(u, tok string, d time.Duration, n, pid int) (sample, error) {
	parsed, err := neturl.Parse(u)
	if err != nil {
		return sample{}, err
	}
	req := []byte("GET " + parsed.RequestURI() + " HTTP/1.1\r\nHost: " + parsed.Host + "\r\nAuthorization: Bearer " + tok + "\r\n\r\n")
	return ownLoad(parsed.Host, func() []byte { return req }, d, n, pid)
}

// own is one connection of the raw client: it writes a request and reads
// the answer.
type own struct {
	conn  net.Conn
	r     *bufio.Reader
	next  func() []byte
	ok    *atomic.Int64
	fails *atomic.Int64
}

func (c *own) Run(context.Context, periodic.ThreadID) (bool, string) {
	req := c.next()
	if req == nil {
		c.fails.Add(1)
		return false, "no request"
	}
	if _, err := c.conn.Write(req); err != nil {
		c.fails.Add(1)
		return false, err.Error()
	}
	res, err := http.ReadResponse(c.r, nil)
	if err != nil {
		c.fails.Add(1)
		return false, err.Error()
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		c.fails.Add(1)
		ownStatuses.Lock()
		ownStatuses.n[res.StatusCode]++
		ownStatuses.Unlock()
		return false, res.Status
	}
	c.ok.Add(1)
	return true, ""
}

// ownStatuses counts the own client's answers other than 200, by status.
var ownStatuses = struct {
	sync.Mutex
	n map[int]int64
}{n: map[int]int64{}}

// ownLoad runs own against addr for d with n keep-alive connections as fast
// as they go, and measures pid's CPU time over the run when pid > 0: load's
// measurement with another client.
func ownLoad(addr string, next func() []byte, d time.Duration, n, pid int) (sample, error) {
	var ok, fails atomic.Int64
	o := periodic.RunnerOptions{QPS: -1, Duration: d, NumThreads: n, Out: io.Discard}
	lat := &latencies{per: make([][]float64, n)}
	o.AccessLogger = lat
	r := periodic.NewPeriodicRunner(&o) // as fhttp does: the runners are set after it normalised the options
	for i := range r.Options().NumThreads {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return sample{}, err
		}
		defer conn.Close()
		r.Options().Runners[i] = &own{conn: conn, r: bufio.NewReader(conn), next: next, ok: &ok, fails: &fails}
	}
	var cpu0 float64
	if pid > 0 {
		var err error
		if cpu0, err = cpuSeconds(pid); err != nil {
			return sample{}, err
		}
	}
	res := r.Run()
	return measured(sample{rps: res.ActualQPS, count: ok.Load() + fails.Load(), bad: fails.Load()}, lat, pid, cpu0, "own client on "+addr)
}

// checkDPoP makes sure hit-dpop verifies what it is sent before it is
// measured: a proof is accepted once, and the bound token is refused as
// Bearer.
func (b *bench) checkDPoP(base string) error {
	u, err := neturl.Parse(base + "/check")
	if err != nil {
		return err
	}
	raw, err := b.proofs.request(u)
	if err != nil {
		return err
	}
	_, proof, _ := strings.Cut(string(raw), "\r\nDPoP: ")
	proof, _, _ = strings.Cut(proof, "\r\n")
	for _, c := range []struct {
		name, scheme, proof string
		want                int
		challenge           string
	}{
		{"a new proof", "DPoP", proof, http.StatusOK, ""},
		{"the same proof again", "DPoP", proof, http.StatusUnauthorized, "invalid_dpop_proof"},
		{"the bound token as Bearer", "Bearer", "", http.StatusUnauthorized, "invalid_token"},
	} {
		req, err := http.NewRequest(http.MethodGet, u.String(), nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", c.scheme+" "+b.proofs.tok)
		if c.proof != "" {
			req.Header.Set("DPoP", c.proof)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		if got := res.Header.Values("WWW-Authenticate"); res.StatusCode != c.want || !strings.Contains(strings.Join(got, ", "), c.challenge) {
			return fmt.Errorf("%s: %s got %d %q, want %d with %q", hitDPoP, c.name, res.StatusCode, got, c.want, c.challenge)
		}
	}
	return nil
}

// fillDPoP puts the bound token into hit-dpop's cache: two requests with
// new proofs, one introspection.
func (b *bench) fillDPoP(base string) error {
	u, err := neturl.Parse(base + "/fill")
	if err != nil {
		return err
	}
	before := b.ids.Introspections()
	reqs, err := b.proofs.make(u, 2)
	if err != nil {
		return err
	}
	for i, r := range reqs {
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			return err
		}
		_, err = conn.Write(r)
		var res *http.Response
		if err == nil {
			res, err = http.ReadResponse(bufio.NewReader(conn), nil)
		}
		_ = conn.Close()
		if err != nil || res.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: cache fill request %d: %v, %v", hitDPoP, i, res, err)
		}
	}
	if n := b.ids.Introspections() - before; n > 1 {
		return fmt.Errorf("%s: cache fill: %d introspections for two requests, want at most 1", hitDPoP, n)
	}
	return nil
}

// printDPoP prints hit-dpop against hit, measured in the same rounds, and
// hit-own, the same client as hit-dpop's with hit's Bearer request.
func (b *bench) printDPoP() {
	one, sat := b.sideOne, b.sideSat
	if len(one[hitDPoP]) == 0 {
		return
	}
	fmt.Printf("\nDPoP (issue 16): hit-dpop sends the DPoP-bound token with a new ES256 proof per request (verified, remembered for replay, removed);\n" +
		"it and hit-own are driven by the bench's own client (fortio cannot vary a header per request), proofs made before each run\n")
	fmt.Printf("%-12s | %8s %8s %8s %8s | %7s %8s %8s | %9s %9s | %7s\n", "listener", "CPU µs", "Δhit", "pooled", "Δhit-own", "p50 µs", "Δhit", "Δhit-own", "req/s×hit", "×hit-own", "non-200")
	for _, s := range []string{hit, hitOwn, hitDPoP} {
		if len(one[s]) == 0 {
			continue
		}
		var bad int64
		for _, x := range append(slices.Clone(one[s]), sat[s]...) {
			bad += x.bad
		}
		dCPU, pCPU, dCPUown, dP50, dP50own, r, rOwn := "-", "-", "-", "-", "-", "-", "-"
		if s != hit {
			dCPU = fmt.Sprintf("%+.2f", paired(one[s], one[hit], cpuOf, minus))
			pCPU = fmt.Sprintf("%+.2f", pooledCPU(one[s])-pooledCPU(one[hit]))
			dP50 = fmt.Sprintf("%+.1f", paired(one[s], one[hit], p50Of, minus))
			r = fmt.Sprintf("%.3f", paired(sat[s], sat[hit], rpsOf, ratio))
		}
		if s == hitDPoP && len(one[hitOwn]) > 0 {
			dCPUown = fmt.Sprintf("%+.2f", paired(one[s], one[hitOwn], cpuOf, minus))
			dP50own = fmt.Sprintf("%+.1f", paired(one[s], one[hitOwn], p50Of, minus))
			rOwn = fmt.Sprintf("%.3f", paired(sat[s], sat[hitOwn], rpsOf, ratio))
		}
		fmt.Printf("%-12s | %8.1f %8s %8s %8s | %7.0f %8s %8s | %9s %9s | %7d\n", s, median(one[s], cpuOf), dCPU, pCPU, dCPUown, median(one[s], p50Of), dP50, dP50own, r, rOwn, bad)
	}
	fmt.Printf("(Δhit: median of same-round differences to hit at 1 connection; pooled: over all rounds; req/s×: median of same-round ratios at %d connections;\n"+
		" Δhit-own, ×hit-own: against the same client on hit, what the proof costs without the change of client: the slower client alone\n"+
		" moves Envoy's CPU per request, as hit-own against hit shows)\n", *satConns)
	fmt.Printf("per round, CPU µs/request over hit at 1 connection\n")
	for _, s := range []string{hitOwn, hitDPoP} {
		var d []string
		for i := range min(len(one[s]), len(one[hit])) {
			d = append(d, fmt.Sprintf("%+.1f", one[s][i].cpuPerReq()-one[hit][i].cpuPerReq()))
		}
		if len(d) > 0 {
			fmt.Printf("%-12s %s\n", s, strings.Join(d, " "))
		}
	}
	ownStatuses.Lock()
	if len(ownStatuses.n) > 0 {
		fmt.Printf("answers other than 200 to the own client (hit-own and hit-dpop), by status: %v\n", ownStatuses.n)
	}
	ownStatuses.Unlock()
	fmt.Printf("proofs: %d sent (warm-ups included), at most %d in runs begun within 120 s (dpop_replay_max_entries %d); %d made during runs (the made ones ran out)\n",
		sum(b.proofs.sentN), b.proofs.busiest(120*time.Second), *dpopReplayEntries, b.proofs.late)
}

func sum(xs []int64) int64 {
	var n int64
	for _, x := range xs {
		n += x
	}
	return n
}

// printDPoPProfile sets a DPoP hit beside the plain hit, both in the
// debugstats build (two Envoys, one after the other: the CPU and p50 are not
// same-round figures). The debugstats build does not wrap the
// verify_signature foreign call: its time is in "the rest".
func (b *bench) printDPoPProfile() {
	p, d := b.prof, b.profDPoP
	fmt.Printf("\n== Profile of a DPoP hit (%s: a new ES256 proof per request), beside the plain hit above\n", hitDPoP)
	fmt.Printf("  %-52s %8s %8s %8s\n", "", "hit", "dpop", "Δ")
	row := func(what string, a, c float64) { fmt.Printf("  %-52s %8.3f %8.3f %+8.3f\n", what, a, c, c-a) }
	row("requests in the window", float64(p.requests), float64(d.requests))
	row("callbacks into the filter's contexts per request", p.callbacks(), d.callbacks())
	row("host calls per request counted in the VM", p.hostCalls(), d.hostCalls())
	for _, f := range []string{"get_header", "replace_header", "remove_header", "get_shared", "set_shared", "clock"} {
		row("  "+f, p.per(f), d.per(f))
	}
	if a, ok := p.headersUs(); ok {
		if c, ok := d.headersUs(); ok {
			row("µs in the filter's OnHttpRequestHeaders (timed)", a, c)
			gh, dh := p.hostUs("t_get_header_ns", "get_header"), d.hostUs("t_get_header_ns", "get_header")
			other := func(x profile) float64 {
				n := float64(x.delta["t_samples"])
				return float64(x.delta["t_other_ns"]) / max(n, 1) / 1e3
			}
			row("  header reads (+ their on_memory_allocate)", gh, dh)
			row("  shared data, header removal (other host calls)", other(p), other(d))
			row("  the rest: Go code and verify_signature", a-gh-other(p)-p.hostUs("t_replace_header_ns", "replace_header")-p.hostUs("t_clock_ns", "clock"),
				c-dh-other(d)-d.hostUs("t_replace_header_ns", "replace_header")-d.hostUs("t_clock_ns", "clock"))
		}
	}
	var scratch []string // fields of a scratch debugstats build that times more (x_…_ns), printed per request
	for k := range d.last {
		if strings.HasPrefix(k, "x_") && strings.HasSuffix(k, "_ns") {
			scratch = append(scratch, k)
		}
	}
	slices.Sort(scratch)
	for _, k := range scratch {
		row("  µs "+k+" (a scratch build's timer)", p.per(k)/1e3, d.per(k)/1e3)
	}
	row("allocations per request", p.allocsPer(), d.allocsPer())
	row("bytes allocated per request", p.per("total_alloc"), d.per("total_alloc"))
	row("GC cycles per 10k requests", 1e4*p.per("num_gc"), 1e4*d.per("num_gc"))
	row("GC pause µs per 10k requests", 1e4*p.per("pause_total_ns")/1e3, 1e4*d.per("pause_total_ns")/1e3)
	row("Envoy CPU µs/request of this build (separate runs)", p.run.cpuPerReq(), d.run.cpuPerReq())
	row("p50 µs of this build (separate runs)", p.run.p50, d.run.p50)
}
