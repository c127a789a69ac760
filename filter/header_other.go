//go:build !wasip1

package main

import "github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

// requestHeader is the SDK's header read outside wasm (the tests in Go mode;
// the compiled module reads through the ABI, see header_wasip1.go).
var requestHeader = proxywasm.GetHttpRequestHeader
