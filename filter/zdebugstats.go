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
// The benchmark (e2e/cmd/bench) reads two such lines of one VM and divides:
// allocations per request, GC cycles per 10k requests, callbacks per request.
// Counting and reading MemStats at that rate cost next to nothing; the line
// itself allocates once, so a window of debugStatsEvery requests carries one
// allocation that is not the filter's.
//
// The file is named to sort after main.go: the go command runs a package's
// init functions in file-name order, and this one must replace the VM context
// main.go's init registers. Nothing else in the package knows about it.
package main

import (
	"math/rand/v2"
	"runtime"
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// debugStatsEvery is how many request-header callbacks separate two lines.
const debugStatsEvery = 1000

func init() {
	proxywasm.SetVMContext(&statsVM{VMContext: &vmContext{}, tag: strconv.FormatUint(rand.Uint64()%1e6, 10)})
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
	h := p.PluginContext.NewHttpContext(id)
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
	return h.HttpContext.OnHttpRequestHeaders(n, end)
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
	h.HttpContext.OnHttpStreamDone()
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
	field("mallocs", m.Mallocs)
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
	proxywasm.LogInfo(string(b))
}
