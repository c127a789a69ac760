// Command noop is a proxy-wasm filter that does nothing, built the same way as
// the phantom token filter (Go, wasip1, the same SDK). The benchmark runs it
// beside the real filter: what it costs is the floor for any Go wasip1 filter
// in Envoy, the share of the overhead the filter's own code cannot remove.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetVMContext(&vm{})
}

type vm struct{ types.DefaultVMContext }

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct{ types.DefaultPluginContext }

func (*plugin) NewHttpContext(uint32) types.HttpContext { return &types.DefaultHttpContext{} }
