// Package abi is the filter's link to the proxy-wasm host: the host calls it
// makes and, in the compiled module, the entry points the host calls.
//
// In the module (GOOS=wasip1) both are this package's own, written against
// the proxy-wasm ABI 0.2 and WASI: the module exports only the callbacks the
// filter uses (see entry_wasip1.go), and a request's context is found with one
// map lookup. Elsewhere (the tests in Go mode) every function is the SDK's,
// so that the SDK's host emulator (proxytest) drives the filter; the two sides
// have the same signatures and the same errors (types.ErrorStatus*).
package abi
