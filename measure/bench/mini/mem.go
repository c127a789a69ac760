//go:build wasip1 && mini_mem && !mini_hit

package main

// With -tags mini_mem, proxy_on_request_headers clears and copies a buffer
// memOps times: Go compiles each to one wasm memory.fill and one
// memory.copy (runtime.memclrNoHeapPointers and runtime.memmove), so the
// listener's cost over mini-jwt, divided by 2 × memOps, is what one such
// instruction costs under V8.
const memOps = 100

var (
	src, dst [256]byte
	memLen   = 200 // a variable: the length is not known at compile time
)

func hit() {
	for range memOps {
		clear(dst[:memLen])
		copy(dst[:memLen], src[:memLen])
	}
}
