//go:build wasip1 && mini_all

package main

// The per-stream callbacks a filter that acts on request headers alone does
// not need; the SDK exports them all, and Envoy calls those that are
// exported.

//go:wasmexport proxy_on_context_create
func contextCreate(id, parent uint32) {}

//go:wasmexport proxy_on_request_body
func requestBody(id, size, end uint32) uint32 { return 0 }

//go:wasmexport proxy_on_request_trailers
func requestTrailers(id, n uint32) uint32 { return 0 }

//go:wasmexport proxy_on_response_headers
func responseHeaders(id, n, end uint32) uint32 { return 0 }

//go:wasmexport proxy_on_response_body
func responseBody(id, size, end uint32) uint32 { return 0 }

//go:wasmexport proxy_on_response_trailers
func responseTrailers(id, n uint32) uint32 { return 0 }

//go:wasmexport proxy_on_log
func onLog(id uint32) {}

//go:wasmexport proxy_on_done
func done(id uint32) uint32 { return 1 }

//go:wasmexport proxy_on_delete
func onDelete(id uint32) {}
