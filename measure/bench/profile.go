package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/phantom-token/envoy-phantom-token/measure/routeset"
)

// profile is what the debugstats module said over the profile run: the
// difference between two of its lines, of one VM.
type profile struct {
	vm       string
	requests uint64
	delta    map[string]uint64 // field → increase over the window
	last     map[string]uint64 // the later line, as is
	run      sample
}

func (p profile) per(field string) float64 {
	return float64(p.delta[field]) / float64(max(p.requests, 1))
}

// debugLines parses the "debugstats:" lines of an Envoy log, by VM, in order.
func debugLines(log string) map[string][]map[string]uint64 {
	out := map[string][]map[string]uint64{}
	for _, line := range strings.Split(log, "\n") {
		_, rest, ok := strings.Cut(line, "debugstats: ")
		if !ok {
			continue
		}
		vm := ""
		fields := map[string]uint64{}
		for _, kv := range strings.Fields(rest) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			if k == "vm" {
				vm = v
				continue
			}
			if n, err := strconv.ParseUint(v, 10, 64); err == nil {
				fields[k] = n
			}
		}
		if vm != "" {
			out[vm] = append(out[vm], fields)
		}
	}
	return out
}

// profile is phase 2: cache hits at one connection on the debugstats build.
func (b *bench) profile() error {
	if b.debugPath != "" {
		var err error
		if b.prof, err = b.profileInEnvoy(debugHit); err != nil {
			return err
		}
		b.printProfile()
		if b.profRoutes, err = b.profileInEnvoy(debugRoutes); err != nil {
			return err
		}
		b.printRoutedProfile()
	}
	return b.hostcount()
}

// profileInEnvoy drives the debugstats build with cache hits on a listener
// of its own Envoy and returns what its VM counted.
func (b *bench) profileInEnvoy(listener string) (profile, error) {
	envoy, pid, err := b.start(1, listener)
	if err != nil {
		return profile{}, err
	}
	defer func() { _ = envoy.Stop() }()
	u := url(envoy, listener)
	if err := b.fill(u); err != nil {
		return profile{}, err
	}
	if _, err := load(u+"/warmup", b.tok, *warmup, 1, 0); err != nil {
		return profile{}, err
	}
	before, err := envoy.Log()
	if err != nil {
		return profile{}, err
	}
	introspections := b.ids.Introspections()
	run, err := load(u+"/profile", b.tok, *profileDur, 1, pid)
	if err != nil {
		return profile{}, err
	}
	if n := b.ids.Introspections() - introspections; n != 0 {
		return profile{}, fmt.Errorf("profile of %s: %d introspections during the run: not all cache hits", listener, n)
	}
	time.Sleep(200 * time.Millisecond)
	after, err := envoy.Log()
	if err != nil {
		return profile{}, err
	}
	if err := stop(envoy); err != nil {
		return profile{}, err
	}
	lines := debugLines(after[len(before):])
	var vm string
	for k, v := range lines {
		if len(v) > len(lines[vm]) {
			vm = k
		}
	}
	if len(lines[vm]) < 2 {
		return profile{}, fmt.Errorf("profile of %s: %d debugstats lines in Envoy's log over %d requests (is filter/debugstats.go built in?)", listener, len(lines[vm]), run.count)
	}
	first, last := lines[vm][0], lines[vm][len(lines[vm])-1]
	p := profile{vm: vm, requests: last["requests"] - first["requests"], delta: map[string]uint64{}, last: last, run: run}
	for k, v := range last {
		p.delta[k] = v - first[k]
	}
	return p, nil
}

// hostcount prints measure/hostcount's counts for the module under test.
func (b *bench) hostcount() error {
	// The same counts, exact, for the module under test: a counting host
	// under wazero (measure/hostcount) sees every host call, WASI included,
	// and every proxy_on_memory_allocate. It is a command of this module,
	// run from its directory like the no-op's build.
	wasm, err := filepath.Abs(b.wasmPath)
	if err != nil {
		return err
	}
	count := func(args ...string) (string, bool) {
		out, err := exec.Command("go", append([]string{"run", "./hostcount", "-wasm", wasm}, args...)...).CombinedOutput()
		if err != nil { // a report, not a target: the bench goes on
			fmt.Printf("\nmeasure/hostcount %s failed: %v\n%s", strings.Join(args, " "), err, out)
			return "", false
		}
		return string(out), true
	}
	plain, ok := count()
	if !ok {
		return nil
	}
	fmt.Printf("\n%s", plain)
	routed, ok := count("-routes", strconv.Itoa(routeCount))
	if !ok {
		return nil
	}
	fmt.Printf("a cache hit on route %q of %s (%d route rules), against the plain hit above, under wazero:\n", routeset.Target(routeCount).Name, hitRoutes, routeCount)
	a, c := hostcountFigures(plain), hostcountFigures(routed)
	for _, k := range c.order {
		if c.v[k] != a.v[k] {
			fmt.Printf("  %-64s %6.3f → %6.3f (%+.3f)\n", k, a.v[k], c.v[k], c.v[k]-a.v[k])
		}
	}
	return nil
}

// figures is hostcount's per-request counts, by section and name
// ("host calls per request: proxy_get_property"), in the order printed.
type figures struct {
	v     map[string]float64
	order []string
}

// hostcountFigures reads the two tables of measure/hostcount's output: a
// section's title, then "  name  value" rows.
func hostcountFigures(out string) figures {
	f := figures{v: map[string]float64{}}
	section := ""
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, " ") {
			section = strings.TrimSpace(line)
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 || (section != "host calls per request" && section != "entries into the Go runtime per request") {
			continue
		}
		v, err := strconv.ParseFloat(fields[1], 64)
		if err != nil {
			continue
		}
		k := section + ": " + fields[0]
		f.v[k] = v
		f.order = append(f.order, k)
	}
	return f
}

func (b *bench) printProfile() {
	p := b.prof
	fmt.Printf("\n== Profile of a cache hit in the compiled module (filter built with -tags debugstats; 1 worker, 1 connection, %s)\n", *profileDur)
	fmt.Printf("window: %d requests in VM %s, between two of its debugstats lines (Envoy CPU %.1f µs/request for this build, p50 %.0f µs)\n",
		p.requests, p.vm, p.run.cpuPerReq(), p.run.p50)
	row := func(what string, v float64, how string) { fmt.Printf("  %-52s %8.3f   %s\n", what, v, how) }
	fmt.Printf("callbacks Envoy makes into the filter's contexts, per request (counted in the VM)\n")
	row("proxy_on_context_create (NewHttpContext)", p.per("created"), "counted")
	row("proxy_on_request_headers", p.per("rq_headers"), "counted")
	row("proxy_on_request_body", p.per("rq_body"), "counted")
	row("proxy_on_request_trailers", p.per("rq_trailers"), "counted")
	row("proxy_on_response_headers", p.per("rs_headers"), "counted")
	row("proxy_on_response_body", p.per("rs_body"), "counted")
	row("proxy_on_response_trailers", p.per("rs_trailers"), "counted")
	row("proxy_on_log (OnHttpStreamDone)", p.per("stream_done"), "counted")
	fmt.Printf("  %-52s %8s   %s\n", "proxy_on_done, proxy_on_delete", "1 + 1", "not visible to contexts: the SDK answers them itself (Envoy calls both per stream)")
	counted := p.callbacks()
	fmt.Printf("host calls of the filter per request (through host.go and its clock)\n")
	for _, f := range []struct{ field, name string }{
		{"get_header", "proxy_get_header_map_value"},
		{"replace_header", "proxy_replace_header_map_value"},
		{"remove_header", "proxy_remove_header_map_value"},
		{"add_header", "proxy_add_header_map_value"},
		{"send_reply", "proxy_send_local_response"},
		{"get_shared", "proxy_get_shared_data"},
		{"set_shared", "proxy_set_shared_data"},
		{"clock", "the filter's clock (now: WASI clock_time_get)"},
	} {
		row(f.name, p.per(f.field), "counted")
	}
	fmt.Printf("  %-52s %8s   %s\n", "proxy_increment_metric and every other host call", "", "not wrapped here: see the count under wazero below")
	allocEntries := p.per("get_header") + p.per("get_shared") // each value returned is one proxy_on_memory_allocate
	fmt.Printf("entries into the Go runtime per request (callbacks counted, the rest from the host calls)\n")
	row("callbacks (counted above, + on_done + on_delete)", counted+2, "")
	row("proxy_on_memory_allocate", allocEntries, "one per value the host returns: each header read and shared-data read that finds one")
	row("total", counted+2+allocEntries, "")
	if n := float64(p.delta["t_samples"]); n > 0 {
		us := func(field string) float64 { return float64(p.delta[field]) / n / 1e3 }
		empty := us("t_empty_ns")
		headers, _ := p.headersUs()
		host := func(field, count string) float64 { return us(field) - p.per(count)*empty/2 }
		gh, rh, ck, other := host("t_get_header_ns", "get_header"), host("t_replace_header_ns", "replace_header"), host("t_clock_ns", "clock"), us("t_other_ns")
		fmt.Printf("time inside proxy_on_request_headers, timed in the VM on 1 request in 16 (%d samples; µs; an empty timer reads %.2f µs and is subtracted)\n", p.delta["t_samples"], empty)
		row("the filter's OnHttpRequestHeaders, in all", headers, "excludes V8's entry into Go and the SDK's context lookup")
		row("  proxy_get_header_map_value (+ its on_memory_allocate)", gh, "")
		row("  proxy_replace_header_map_value", rh, "")
		row("  the filter's clock", ck, "")
		if other > 0 {
			row("  other host calls", other, "")
		}
		row("  the rest: Go code (and metric increments, if any)", headers-gh-rh-ck-other, "")
		perSample := func(ns, n string) float64 { // less one empty timer
			return float64(p.delta[ns])/float64(max(p.delta[n], 1))/1e3 - empty
		}
		create, done := perSample("t_create_ns", "t_create_samples"), perSample("t_done_ns", "t_done_samples")
		row("the filter's NewHttpContext (proxy_on_context_create)", create, "timed on samples of its own")
		row("the filter's OnHttpStreamDone (proxy_on_log)", done, "timed on samples of its own")
		inVM := headers + create + done
		row("the filter's Go code and host calls on a hit, in all", inVM, "the no-op filter's methods do nothing (about 0)")
		if one := b.sideOne; len(one[hit]) > 0 {
			d := paired(one[hit], one[noop], cpuOf, minus)
			j := paired(one[noopJWT], one[noop], cpuOf, minus)
			fmt.Printf("  of hit's %+.1f µs Envoy CPU/request over noop (side by side): %.1f in the filter's callbacks, %+.1f the JWT's bytes (noop-jwt),\n"+
				"  %+.1f elsewhere (Envoy and V8 around the callbacks, and measurement noise)\n", d, inVM, j, d-inVM-j)
		}
		fmt.Printf("  probes after the callback (µs, each less one empty timer): header absent %.3f, header present %.3f (the difference: one\n"+
			"  proxy_on_memory_allocate entry, its allocation and copy), one metric increment %.3f\n",
			us("t_probe_absent_ns")-empty, us("t_probe_present_ns")-empty, us("t_probe_metric_ns")-empty)
	}
	fmt.Printf("Go runtime in the VM\n")
	allocsPer := p.allocsPer()
	row("allocations per request", allocsPer, "MemStats.Mallocs, less the probes' and the debug wrapper's (1 per request)")
	if n := float64(p.delta["a_samples"]); n > 0 {
		a := func(f string) float64 { return float64(p.delta[f]) / n }
		row("  in proxy_on_request_headers", a("a_headers"), fmt.Sprintf("get header %.2f, replace header %.2f, clock %.2f, other host calls %.2f",
			a("a_get_header"), a("a_replace_header"), a("a_clock"), a("a_other")))
		row("  elsewhere (context create, the other callbacks)", allocsPer-a("a_headers"), "")
	}
	if n := float64(p.delta["t_samples"]); n > 0 {
		a := func(f string) float64 { return float64(p.delta[f]) / n }
		fmt.Printf("  allocations of one GetHttpRequestHeader: header absent %.2f, present %.2f; one metric increment %.2f\n",
			a("a_probe_absent"), a("a_probe_present"), a("a_probe_metric"))
	}
	row("bytes allocated per request", p.per("total_alloc"), "MemStats.TotalAlloc, with the probes' and the wrapper's")
	row("GC cycles per 10k requests", 1e4*p.per("num_gc"), "MemStats.NumGC")
	row("GC pause µs per 10k requests", 1e4*p.per("pause_total_ns")/1e3, "MemStats.PauseTotalNs")
	fmt.Printf("  heap at the end: HeapAlloc %.2f MiB, HeapInuse %.2f MiB, HeapSys %.2f MiB, StackSys %.2f MiB, Sys %.2f MiB (what the Go runtime holds of linear memory), NextGC %.2f MiB\n",
		mib(p.last["heap_alloc"]), mib(p.last["heap_inuse"]), mib(p.last["heap_sys"]), mib(p.last["stack_sys"]), mib(p.last["sys"]), mib(p.last["next_gc"]))
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// headersUs is the time of the filter's OnHttpRequestHeaders on the timed
// samples, in µs, less the timers' own (ok is false without samples).
func (p profile) headersUs() (us float64, ok bool) {
	n := float64(p.delta["t_samples"])
	if n == 0 {
		return 0, false
	}
	empty := float64(p.delta["t_empty_ns"]) / n / 1e3
	nested := float64(p.delta["t_nested"]) / n
	return float64(p.delta["t_headers_ns"])/n/1e3 - (1+nested)*empty, true
}

// allocsPer is the filter's allocations per request: MemStats.Mallocs less
// the probes' and the debug wrapper's (one per request).
func (p profile) allocsPer() float64 { return p.per("mallocs") - p.per("a_probes") - p.per("created") }

// callbacks is the callbacks into the filter's contexts per request.
func (p profile) callbacks() float64 {
	var n float64
	for _, f := range []string{"created", "rq_headers", "rq_body", "rq_trailers", "rs_headers", "rs_body", "rs_trailers", "stream_done"} {
		n += p.per(f)
	}
	return n
}

// hostCalls is the host calls the debugstats build counts per request.
func (p profile) hostCalls() float64 {
	var n float64
	for _, f := range []string{"get_header", "replace_header", "remove_header", "add_header", "send_reply", "get_shared", "set_shared", "clock", "get_property"} {
		n += p.per(f)
	}
	return n
}

// printRoutedProfile sets a hit on hit-routes' target route beside the plain
// hit, both in the debugstats build (two Envoys, one after the other: the
// CPU and p50 are not same-round figures).
func (b *bench) printRoutedProfile() {
	p, r := b.prof, b.profRoutes
	fmt.Printf("\n== Profile of a hit on a named route (%s: %d Envoy routes, %d rules, route %q), beside the plain hit above\n",
		hitRoutes, routeCount, routeCount, routeset.Target(routeCount).Name)
	fmt.Printf("  %-52s %8s %8s %8s\n", "", "hit", "routed", "Δ")
	row := func(what string, a, c float64) { fmt.Printf("  %-52s %8.3f %8.3f %+8.3f\n", what, a, c, c-a) }
	row("requests in the window", float64(p.requests), float64(r.requests))
	row("callbacks into the filter's contexts per request", p.callbacks(), r.callbacks())
	row("host calls per request counted in the VM", p.hostCalls(), r.hostCalls())
	_, property := r.last["get_property"] // in a debugstats build that wraps getProperty
	if property {
		row("  of which proxy_get_property", p.per("get_property"), r.per("get_property"))
	}
	if a, ok := p.headersUs(); ok {
		if c, ok := r.headersUs(); ok {
			row("µs in the filter's OnHttpRequestHeaders (timed)", a, c)
			if property {
				row("  of which proxy_get_property (+ its on_memory_allocate)", p.hostUs("t_get_property_ns", "get_property"), r.hostUs("t_get_property_ns", "get_property"))
			}
		}
	}
	row("allocations per request", p.allocsPer(), r.allocsPer())
	if n, m := float64(p.delta["a_samples"]), float64(r.delta["a_samples"]); property && n > 0 && m > 0 {
		row("  of which in proxy_get_property", float64(p.delta["a_get_property"])/n, float64(r.delta["a_get_property"])/m)
	}
	row("GC cycles per 10k requests", 1e4*p.per("num_gc"), 1e4*r.per("num_gc"))
	row("Envoy CPU µs/request of this build (separate runs)", p.run.cpuPerReq(), r.run.cpuPerReq())
	row("p50 µs of this build (separate runs)", p.run.p50, r.run.p50)
	if !property {
		fmt.Printf("  (this debugstats build does not wrap proxy_get_property: the route name's read is in the timed callback, not in the\n" +
			"  counted host calls; measure/hostcount counts it below)\n")
	}
}

// hostUs is the time of one kind of host call per timed sample, in µs, less
// the half of an empty timer each of its calls carries.
func (p profile) hostUs(ns, count string) float64 {
	n := float64(p.delta["t_samples"])
	if n == 0 {
		return 0
	}
	empty := float64(p.delta["t_empty_ns"]) / n / 1e3
	return float64(p.delta[ns])/n/1e3 - p.per(count)*empty/2
}
