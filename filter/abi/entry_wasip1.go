//go:build wasip1

package abi

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// The module's entry points. Only the callbacks the filter uses are
// exported: the host (Envoy's proxy-wasm) skips a callback the module does not
// export, and each one it calls costs about 1 µs of Envoy's CPU per request
// (docs/performance.md). A request makes four: proxy_on_context_create,
// proxy_on_request_headers, proxy_on_done and proxy_on_log, where the SDK
// exports eight (also the response headers, the response body, called
// twice, and proxy_on_delete) and finds the context in several maps in each.

var (
	vm types.VMContext
	// plugins are the plugin (root) contexts by ID; streams the request
	// contexts, from their creation to proxy_on_log.
	plugins = map[uint32]*plugin{}
	streams = map[uint32]types.HttpContext{}
	// running is the plugin context whose callback runs, for the calls it
	// makes (DispatchHttpCall); nil in a request's callbacks.
	running *plugin
)

type plugin struct {
	ctx types.PluginContext
	// calls are the callbacks of the HTTP calls under way, by callout ID.
	calls map[uint32]func(numHeaders, bodySize, numTrailers int)
}

// SetVMContext sets the VM context whose contexts the host drives.
func SetVMContext(v types.VMContext) { vm = v }

//go:wasmexport proxy_abi_version_0_2_0
func abiVersion() {}

// The host asks for memory for every value it returns (a header, a
// property, shared data); the value belongs to the module from then on.
//
//go:wasmexport proxy_on_memory_allocate
func onMemoryAllocate(size uint32) *byte {
	b := make([]byte, max(size, 1))
	return &b[0]
}

//go:wasmexport proxy_on_vm_start
func onVMStart(_ uint32, size int32) bool {
	return bool(vm.OnVMStart(int(size)))
}

//go:wasmexport proxy_on_context_create
func onContextCreate(id, parent uint32) {
	if parent == 0 {
		plugins[id] = &plugin{ctx: vm.NewPluginContext(id), calls: map[uint32]func(int, int, int){}}
		return
	}
	if p := plugins[parent]; p != nil {
		if h := p.ctx.NewHttpContext(id); h != nil {
			streams[id] = h
		}
	}
}

//go:wasmexport proxy_on_configure
func onConfigure(id uint32, size int32) bool {
	p := plugins[id]
	if p == nil {
		return false
	}
	defer enter(p)()
	return bool(p.ctx.OnPluginStart(int(size)))
}

// onRequestHeaders answers 500 to a request whose context the module does
// not have (which the host never sends): no request passes unseen.
//
//go:wasmexport proxy_on_request_headers
func onRequestHeaders(id uint32, numHeaders int32, endOfStream bool) types.Action {
	h := streams[id]
	if h == nil {
		LogCritical("phantom-token: a request without a context: answering 500")
		SendHttpResponse(500, nil, nil, -1)
		return types.ActionPause
	}
	return h.OnHttpRequestHeaders(int(numHeaders), endOfStream)
}

// onLog is a request's last callback: its stream ended, whatever the
// outcome (Envoy calls it from the access log, for every stream).
//
//go:wasmexport proxy_on_log
func onLog(id uint32) {
	if h := streams[id]; h != nil {
		delete(streams, id)
		h.OnHttpStreamDone()
	}
}

// onDone is a plugin context's last callback, when its configuration goes
// away. Envoy calls it for every request too, before proxy_on_log; a
// request's is ignored.
//
//go:wasmexport proxy_on_done
func onDone(id uint32) bool {
	p := plugins[id]
	if p == nil {
		return true
	}
	defer enter(p)()
	done := p.ctx.OnPluginDone()
	if done {
		delete(plugins, id)
	}
	return done
}

//go:wasmexport proxy_on_tick
func onTick(id uint32) {
	if p := plugins[id]; p != nil {
		defer enter(p)()
		p.ctx.OnTick()
	}
}

//go:wasmexport proxy_on_queue_ready
func onQueueReady(id, queue uint32) {
	if p := plugins[id]; p != nil {
		defer enter(p)()
		p.ctx.OnQueueReady(queue)
	}
}

//go:wasmexport proxy_on_http_call_response
func onHttpCallResponse(id, callout uint32, numHeaders, bodySize, numTrailers int32) {
	p := plugins[id]
	if p == nil {
		return
	}
	done := p.calls[callout]
	if done == nil {
		return
	}
	delete(p.calls, callout)
	defer enter(p)()
	done(int(numHeaders), int(bodySize), int(numTrailers))
}

// enter marks p's callback as running, until the function it returns.
func enter(p *plugin) func() {
	running = p
	return func() { running = nil }
}
