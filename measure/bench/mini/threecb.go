//go:build wasip1 && mini_3cb

package main

// With mini_hit, the two other callbacks the filter exports for a request
// (issue 19): proxy_on_context_create, which tells a request's plugin, and
// proxy_on_done, its end; here each returns at once.

//go:wasmexport proxy_on_context_create
func contextCreate(id, parent uint32) {}

//go:wasmexport proxy_on_done
func done(id uint32) uint32 { return 1 }
