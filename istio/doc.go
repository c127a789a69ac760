// Package istio holds what Istio needs to run the filter, and the tests that
// prove it with Istio's own code: the image (wasmimage, cmd/wasm-image), the
// WasmPlugin and TrafficExtension manifests, their validation against the
// CRDs of istio.io/api, and a pull through istio-agent's Wasm cache into a
// real Envoy. It is a module of its own so that the filter's go.mod stays
// small; `make istio-test` runs its tests.
package istio
