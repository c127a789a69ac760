//go:build wasip1

// Command mini is a proxy-wasm HTTP filter in Go without the SDK, written
// for the benchmark's attribution listeners (issue 19): it exports to Envoy
// only what a build's tags ask for, so that what each exported callback and
// each host call of a cache hit costs can be measured against nothing.
//
//	(no tags)  proxy_on_request_headers only, which returns Continue
//	mini_all   also every other per-stream callback the SDK exports
//	           (proxy_on_context_create, _request_body, _request_trailers,
//	           _response_headers, _response_body, _response_trailers, _log,
//	           _done, _delete), each returning at once
//	mini_hit   proxy_on_request_headers makes a cache hit's host calls and
//	           nothing else: it reads Authorization (the host copies the
//	           value into memory it asks for with proxy_on_memory_allocate,
//	           here a static buffer), replaces it with a fixed value as long
//	           as "Bearer " and the bench's JWT, and reads the clock once
//
// Every build exports what the host needs to run a module at all: the ABI
// version, proxy_on_memory_allocate, proxy_on_vm_start and
// proxy_on_configure. Build it like the filter: GOOS=wasip1 GOARCH=wasm go
// build -buildmode=c-shared.
package main

import "unsafe"

func main() {}

//go:wasmexport proxy_abi_version_0_2_0
func abiVersion() {}

// arena holds what the host copies into the module; a value longer than it
// gets memory of its own.
var arena [4096]byte

//go:wasmexport proxy_on_memory_allocate
func memoryAllocate(size uint32) unsafe.Pointer {
	if size <= uint32(len(arena)) {
		return unsafe.Pointer(&arena[0])
	}
	return unsafe.Pointer(unsafe.SliceData(make([]byte, size)))
}

//go:wasmexport proxy_on_vm_start
func vmStart(rootID uint32, size uint32) uint32 { return 1 }

//go:wasmexport proxy_on_configure
func configure(rootID uint32, size uint32) uint32 { return 1 }

//go:wasmexport proxy_on_request_headers
func requestHeaders(id uint32, headers uint32, end uint32) uint32 {
	hit()
	return 0 // Continue
}
