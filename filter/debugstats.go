//go:build debugstats

// Debug statistics for profiling the compiled module in a real Envoy; only in
// a build with `-tags debugstats`, never in the released module.
//
// It wraps the contexts that main.go's init registers, counts the callbacks
// Envoy makes into them, and every debugStatsEvery request-header callbacks
// logs (info) one line with those counts and the Go runtime's MemStats:
//
//	debugstats: vm=… requests=… created=… rq_headers=… … mallocs=… frees=… num_gc=… heap_alloc=… heap_sys=… sys=…
//
// The benchmark (measure/bench) reads two such lines of one VM and divides:
// allocations per request, GC cycles per 10k requests, callbacks per request.
// Counting and reading MemStats at that rate cost next to nothing; the line
// itself allocates once, so a window of debugStatsEvery requests carries one
// allocation that is not the filter's. Each HTTP context's wrapper is one
// allocation per request, and the probes' allocations are logged
// (a_probes): readers take both out.
//
// It also counts the filter's host calls on a request's path by wrapping the
// variables of host.go (and the clock, now).
//
// It hooks in through main.go's wrapVM, which a package variable's
// initialiser here sets: package variables are initialised before any init
// function runs, so main.go's init registers the wrapped VM context, and the
// host-call variables it wraps are initialised before it (the initialiser
// refers to them). Nothing else in the package knows about it.
package main

import (
	"math/rand/v2"
	"runtime"
	"strconv"
	"time"

	"github.com/phantom-token/envoy-phantom-token/filter/abi"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// debugStatsEvery is how many request-header callbacks separate two lines.
const debugStatsEvery = 1000

var _ = hookStats()

// hookStats makes main.go's init register the VM context wrapped and wraps
// the host calls; it runs while the package's variables are initialised.
func hookStats() bool {
	wrapVM = func(vm types.VMContext) types.VMContext {
		return &statsVM{VMContext: vm, tag: strconv.FormatUint(rand.Uint64()%1e6, 10)}
	}
	countHostCalls()
	return true
}

// hostCalls counts the filter's calls through host.go's variables (and its
// clock, a WASI clock_time_get each). Metric increments go to the SDK
// directly and are not counted here.
var hostCalls struct {
	getHeader, replaceHeader, removeHeader, addHeader, sendReply, getShared, setShared, clock, getProperty uint64
}

// countHostCalls wraps the host calls of a request's path with counters and,
// on the sampled requests, timers or allocation counters.
func countHostCalls() {
	gh, rh, rmh, ah, sr, gs, ss, clock, gp := getHeader, replaceHeader, removeHeader, addHeader, sendReply, getShared, setShared, now, getProperty
	getProperty = func(path string) ([]byte, error) {
		hostCalls.getProperty++
		defer begin().end(&timing.getPropertyNs, &allocs.getProperty)
		return gp(path)
	}
	getHeader = func(k string) (string, error) {
		hostCalls.getHeader++
		defer begin().end(&timing.getHeaderNs, &allocs.getHeader)
		return gh(k)
	}
	replaceHeader = func(k, v string) error {
		hostCalls.replaceHeader++
		defer begin().end(&timing.replaceHeaderNs, &allocs.replaceHeader)
		return rh(k, v)
	}
	removeHeader = func(k string) error {
		hostCalls.removeHeader++
		defer begin().end(&timing.otherNs, &allocs.other)
		return rmh(k)
	}
	addHeader = func(k, v string) error {
		hostCalls.addHeader++
		defer begin().end(&timing.otherNs, &allocs.other)
		return ah(k, v)
	}
	sendReply = func(s uint32, h [][2]string, b []byte, g int32) error {
		hostCalls.sendReply++
		defer begin().end(&timing.otherNs, &allocs.other)
		return sr(s, h, b, g)
	}
	getShared = func(k string) ([]byte, uint32, error) {
		hostCalls.getShared++
		defer begin().end(&timing.otherNs, &allocs.other)
		return gs(k)
	}
	setShared = func(k string, v []byte, cas uint32) error {
		hostCalls.setShared++
		defer begin().end(&timing.otherNs, &allocs.other)
		return ss(k, v, cas)
	}
	now = func() time.Time {
		hostCalls.clock++
		defer begin().end(&timing.clockNs, &allocs.clock)
		return clock()
	}
}

// sampleEvery: of every sampleEvery request-header callbacks, one (n % 16 ==
// 0) is timed from inside the VM with the host calls it makes, and another
// (n % 16 == 8) has the allocations of each host call counted. A timer costs
// a clock read at each end (three clock_time_get calls); the bench subtracts
// what an empty timed section measures (emptyNs, once per sample).
const sampleEvery = 16

var timing struct {
	on                                             bool
	samples, nested                                uint64
	headersNs, emptyNs                             uint64
	getHeaderNs, replaceHeaderNs, clockNs, otherNs uint64
	getPropertyNs                                  uint64
	// Probes after the timed callback: one read of a header the request does
	// not have, one of Authorization (which the host returns through
	// proxy_on_memory_allocate), one increment of a metric of this file's own.
	probeAbsentNs, probePresentNs, probeMetricNs uint64
	// The filter's NewHttpContext and OnHttpStreamDone (proxy_on_context_create
	// and proxy_on_log), on samples of their own.
	createNs, createSamples, doneNs, doneSamples uint64
}

// allocs counts allocations (MemStats.Mallocs) on the allocation samples;
// the probe's are counted on the timed samples, and the bench takes them out
// of the allocations per request.
var allocs struct {
	on                                        bool
	samples, headers                          uint64
	getHeader, replaceHeader, clock, other    uint64
	getProperty                               uint64
	probes, probeAbsent, probePresent, metric uint64
}

func mallocs() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs
}

// mark is the start of a timed or allocation-counted host call.
type mark struct {
	t       time.Time
	mallocs uint64
	counted bool
}

// begin marks the start of a host call; neither it nor end allocates.
func begin() mark {
	switch {
	case timing.on:
		timing.nested++
		return mark{t: time.Now()}
	case allocs.on:
		return mark{mallocs: mallocs(), counted: true}
	}
	return mark{}
}

func (k mark) end(ns, n *uint64) {
	if !k.t.IsZero() {
		*ns += uint64(time.Since(k.t))
	}
	if k.counted {
		*n += mallocs() - k.mallocs
	}
}

// probeHeader is the host's GetHttpRequestHeader, unwrapped; probeMetric is
// the probes' counter, defined at the first probe.
var (
	probeHeader = abi.GetHttpRequestHeader
	probeMetric uint32
	probeReady  bool
)

func probe() {
	if !probeReady {
		probeMetric, _ = defineMetric(metricCounter, "phantom_token.debugstats.probes")
		probeReady = true
	}
	m0 := mallocs()
	header := func(name string, ns, n *uint64) {
		m := mallocs()
		t := time.Now()
		_, _ = probeHeader(name)
		*ns += uint64(time.Since(t))
		*n += mallocs() - m
	}
	// In turn one order and the other: the first host call after the
	// callback may pay for what the callback left behind.
	if timing.samples%2 == 0 {
		header("x-debugstats-absent", &timing.probeAbsentNs, &allocs.probeAbsent)
		header("authorization", &timing.probePresentNs, &allocs.probePresent)
	} else {
		header("authorization", &timing.probePresentNs, &allocs.probePresent)
		header("x-debugstats-absent", &timing.probeAbsentNs, &allocs.probeAbsent)
	}
	m := mallocs()
	t := time.Now()
	_ = addToMetric(probeMetric, 1)
	timing.probeMetricNs += uint64(time.Since(t))
	allocs.metric += mallocs() - m
	allocs.probes += mallocs() - m0
}

// callbacks counts the callbacks of one VM into its HTTP contexts.
type callbacks struct {
	created, reqHeaders, reqBody, reqTrailers, respHeaders, respBody, respTrailers, streamDone uint64
}

type statsVM struct {
	types.VMContext
	tag string
	n   callbacks
	buf []byte
}

func (v *statsVM) NewPluginContext(id uint32) types.PluginContext {
	return &statsPlugin{PluginContext: v.VMContext.NewPluginContext(id), vm: v}
}

type statsPlugin struct {
	types.PluginContext
	vm *statsVM
}

func (p *statsPlugin) NewHttpContext(id uint32) types.HttpContext {
	var t time.Time
	sampled := p.vm.n.created%sampleEvery == sampleEvery/4
	if sampled {
		t = time.Now()
	}
	h := p.PluginContext.NewHttpContext(id)
	if sampled {
		timing.createNs += uint64(time.Since(t))
		timing.createSamples++
	}
	if h == nil {
		return nil
	}
	p.vm.n.created++
	return &statsHTTP{HttpContext: h, vm: p.vm}
}

type statsHTTP struct {
	types.HttpContext
	vm *statsVM
}

func (h *statsHTTP) OnHttpRequestHeaders(n int, end bool) types.Action {
	v := h.vm
	v.n.reqHeaders++
	if v.n.reqHeaders%debugStatsEvery == 0 {
		v.log()
	}
	switch v.n.reqHeaders % sampleEvery {
	case 0:
	case sampleEvery / 2:
		allocs.on = true
		m := mallocs()
		a := h.HttpContext.OnHttpRequestHeaders(n, end)
		allocs.headers += mallocs() - m
		allocs.on = false
		allocs.samples++
		return a
	default:
		return h.HttpContext.OnHttpRequestHeaders(n, end)
	}
	e := time.Now()
	timing.emptyNs += uint64(time.Since(e))
	timing.on = true
	t := time.Now()
	a := h.HttpContext.OnHttpRequestHeaders(n, end)
	timing.headersNs += uint64(time.Since(t))
	timing.on = false
	timing.samples++
	probe()
	return a
}

func (h *statsHTTP) OnHttpRequestBody(n int, end bool) types.Action {
	h.vm.n.reqBody++
	return h.HttpContext.OnHttpRequestBody(n, end)
}

func (h *statsHTTP) OnHttpRequestTrailers(n int) types.Action {
	h.vm.n.reqTrailers++
	return h.HttpContext.OnHttpRequestTrailers(n)
}

func (h *statsHTTP) OnHttpResponseHeaders(n int, end bool) types.Action {
	h.vm.n.respHeaders++
	return h.HttpContext.OnHttpResponseHeaders(n, end)
}

func (h *statsHTTP) OnHttpResponseBody(n int, end bool) types.Action {
	h.vm.n.respBody++
	return h.HttpContext.OnHttpResponseBody(n, end)
}

func (h *statsHTTP) OnHttpResponseTrailers(n int) types.Action {
	h.vm.n.respTrailers++
	return h.HttpContext.OnHttpResponseTrailers(n)
}

func (h *statsHTTP) OnHttpStreamDone() {
	h.vm.n.streamDone++
	if h.vm.n.streamDone%sampleEvery != 3*sampleEvery/4 {
		h.HttpContext.OnHttpStreamDone()
		return
	}
	t := time.Now()
	h.HttpContext.OnHttpStreamDone()
	timing.doneNs += uint64(time.Since(t))
	timing.doneSamples++
}

// log writes one line; MemStats are read before anything of the line is
// built, into a reused buffer.
func (v *statsVM) log() {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	b := append(v.buf[:0], "debugstats: vm="...)
	b = append(b, v.tag...)
	field := func(name string, x uint64) {
		b = append(b, ' ')
		b = append(b, name...)
		b = append(b, '=')
		b = strconv.AppendUint(b, x, 10)
	}
	field("requests", v.n.reqHeaders)
	field("created", v.n.created)
	field("rq_headers", v.n.reqHeaders)
	field("rq_body", v.n.reqBody)
	field("rq_trailers", v.n.reqTrailers)
	field("rs_headers", v.n.respHeaders)
	field("rs_body", v.n.respBody)
	field("rs_trailers", v.n.respTrailers)
	field("stream_done", v.n.streamDone)
	field("get_header", hostCalls.getHeader)
	field("replace_header", hostCalls.replaceHeader)
	field("remove_header", hostCalls.removeHeader)
	field("add_header", hostCalls.addHeader)
	field("send_reply", hostCalls.sendReply)
	field("get_shared", hostCalls.getShared)
	field("set_shared", hostCalls.setShared)
	field("clock", hostCalls.clock)
	field("get_property", hostCalls.getProperty)
	field("t_get_property_ns", timing.getPropertyNs)
	field("a_get_property", allocs.getProperty)
	field("t_samples", timing.samples)
	field("t_nested", timing.nested)
	field("t_empty_ns", timing.emptyNs)
	field("t_headers_ns", timing.headersNs)
	field("t_get_header_ns", timing.getHeaderNs)
	field("t_replace_header_ns", timing.replaceHeaderNs)
	field("t_clock_ns", timing.clockNs)
	field("t_other_ns", timing.otherNs)
	field("t_probe_absent_ns", timing.probeAbsentNs)
	field("t_probe_present_ns", timing.probePresentNs)
	field("t_probe_metric_ns", timing.probeMetricNs)
	field("t_create_ns", timing.createNs)
	field("t_create_samples", timing.createSamples)
	field("t_done_ns", timing.doneNs)
	field("t_done_samples", timing.doneSamples)
	field("a_samples", allocs.samples)
	field("a_headers", allocs.headers)
	field("a_get_header", allocs.getHeader)
	field("a_replace_header", allocs.replaceHeader)
	field("a_clock", allocs.clock)
	field("a_other", allocs.other)
	field("a_probes", allocs.probes)
	field("a_probe_absent", allocs.probeAbsent)
	field("a_probe_present", allocs.probePresent)
	field("a_probe_metric", allocs.metric)
	field("mallocs", m.Mallocs)
	field("total_alloc", m.TotalAlloc)
	field("frees", m.Frees)
	field("num_gc", uint64(m.NumGC))
	field("pause_total_ns", m.PauseTotalNs)
	field("heap_alloc", m.HeapAlloc)
	field("heap_inuse", m.HeapInuse)
	field("heap_sys", m.HeapSys)
	field("stack_sys", m.StackSys)
	field("sys", m.Sys)
	field("next_gc", m.NextGC)
	v.buf = b
	abi.LogInfo(string(b))
}
