//go:build wasip1

package abi

import (
	"slices"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// The module's entry points. Only the callbacks the filter uses are
// exported: the host (Envoy's proxy-wasm) skips a callback the module does not
// export, and each one it calls costs about 1 µs of Envoy's CPU per request
// (docs/performance.md). A request makes three: proxy_on_context_create,
// proxy_on_request_headers and proxy_on_done, where the SDK exports eight
// (also the response headers, the response body, called twice, proxy_on_log
// and proxy_on_delete) and finds the context in several maps in each.

var (
	vm types.VMContext
	// plugins are the plugin (root) contexts: one or a few per VM.
	plugins []*plugin
	// running is the plugin context whose callback runs, for the calls it
	// makes (DispatchHttpCall); nil in a request's callbacks.
	running *plugin
)

type plugin struct {
	id  uint32
	ctx types.PluginContext
	// calls are the callbacks of the HTTP calls under way, by callout ID.
	calls map[uint32]func(numHeaders, bodySize, numTrailers int)
}

// pluginByID is the plugin context id, nil when there is none.
func pluginByID(id uint32) *plugin {
	for _, p := range plugins {
		if p.id == id {
			return p
		}
	}
	return nil
}

// streams are the request contexts from their creation to proxy_on_done, in
// slots by ID (Envoy numbers contexts in sequence, so requests under way at
// once rarely share a slot), and in a map past that.
var (
	slots    [1024]slot
	overflow = map[uint32]types.HttpContext{}
)

type slot struct {
	id uint32
	h  types.HttpContext
}

func putStream(id uint32, h types.HttpContext) {
	if s := &slots[id%uint32(len(slots))]; s.h == nil || s.id == id {
		*s = slot{id, h}
		return
	}
	overflow[id] = h
}

func stream(id uint32) types.HttpContext {
	if s := &slots[id%uint32(len(slots))]; s.h != nil && s.id == id {
		return s.h
	}
	if len(overflow) == 0 {
		return nil
	}
	return overflow[id]
}

func dropStream(id uint32) {
	if s := &slots[id%uint32(len(slots))]; s.h != nil && s.id == id {
		*s = slot{}
		return
	}
	delete(overflow, id)
}

// SetVMContext sets the VM context whose contexts the host drives.
func SetVMContext(v types.VMContext) { vm = v }

//go:wasmexport proxy_abi_version_0_2_0
func abiVersion() {}

// The host asks for memory for every value it returns (a header, a
// property, shared data); the value belongs to the module from then on. A
// single header's value (GetHttpRequestHeader) of up to smallValue bytes is
// cut from a chunk instead of allocated on its own: a cache hit then
// allocates nothing. Chunks are never reused; the collector frees one when
// nothing points into it any more (the filter copies a token it keeps past
// its request's header callback).
//
//go:wasmexport proxy_on_memory_allocate
func onMemoryAllocate(size uint32) *byte {
	if headerValue && size <= smallValue {
		n := max((size+7)&^7, 8) // 8-byte aligned, never empty
		if uint32(len(chunk)) < n {
			chunk = make([]byte, chunkSize)
		}
		b := chunk[:n:n]
		chunk = chunk[n:]
		return &b[0]
	}
	b := make([]byte, max(size, 1))
	return &b[0]
}

const (
	smallValue = 512
	chunkSize  = 8 << 10
)

var (
	chunk []byte
	// headerValue is true while a single header's value is read.
	headerValue bool
)

//go:wasmexport proxy_on_vm_start
func onVMStart(_ uint32, size int32) bool {
	return bool(vm.OnVMStart(int(size)))
}

//go:wasmexport proxy_on_context_create
func onContextCreate(id, parent uint32) {
	if parent == 0 { // a context of an ID in use replaces it (Envoy never reuses one)
		plugins = slices.DeleteFunc(plugins, func(q *plugin) bool { return q.id == id })
		plugins = append(plugins, &plugin{id: id, ctx: vm.NewPluginContext(id), calls: map[uint32]func(int, int, int){}})
		return
	}
	if p := pluginByID(parent); p != nil {
		if h := p.ctx.NewHttpContext(id); h != nil {
			putStream(id, h)
		}
	}
}

//go:wasmexport proxy_on_configure
func onConfigure(id uint32, size int32) bool {
	p := pluginByID(id)
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
	h := stream(id)
	if h == nil {
		LogCritical("phantom-token: a request without a context: answering 500")
		SendHttpResponse(500, nil, nil, -1)
		return types.ActionPause
	}
	return h.OnHttpRequestHeaders(int(numHeaders), endOfStream)
}

// onDone is a request's last callback (Envoy calls it when the stream
// ends, whatever the outcome), and a plugin context's when its
// configuration goes away.
//
//go:wasmexport proxy_on_done
func onDone(id uint32) bool {
	if h := stream(id); h != nil {
		dropStream(id)
		h.OnHttpStreamDone()
		return true
	}
	p := pluginByID(id)
	if p == nil {
		return true
	}
	defer enter(p)()
	done := p.ctx.OnPluginDone()
	if done {
		plugins = slices.DeleteFunc(plugins, func(q *plugin) bool { return q == p })
	}
	return done
}

// onStreamEnded is the end of a request alone. Envoy does not know this
// export; the SDK's host emulator ends a request with proxy_on_log, not
// proxy_on_done, and the filter's tests in wasm mode give it this function
// under that name (its export name is as long, so that the tests rename it
// in place; see filter/harness_test.go).
//
//go:wasmexport stream_ended
func onStreamEnded(id uint32) {
	if h := stream(id); h != nil {
		dropStream(id)
		h.OnHttpStreamDone()
	}
}

//go:wasmexport proxy_on_tick
func onTick(id uint32) {
	if p := pluginByID(id); p != nil {
		defer enter(p)()
		p.ctx.OnTick()
	}
}

//go:wasmexport proxy_on_queue_ready
func onQueueReady(id, queue uint32) {
	if p := pluginByID(id); p != nil {
		defer enter(p)()
		p.ctx.OnQueueReady(queue)
	}
}

//go:wasmexport proxy_on_http_call_response
func onHttpCallResponse(id, callout uint32, numHeaders, bodySize, numTrailers int32) {
	p := pluginByID(id)
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

// enter marks p's callback as running, until the function it returns,
// which restores what ran before (a host may wake a plugin from inside
// another of its callbacks: the SDK's emulator does).
func enter(p *plugin) func() {
	prev := running
	running = p
	return func() { running = prev }
}
