// Command filter is the phantom token filter: a proxy-wasm HTTP filter for
// Envoy and Istio, built with GOOS=wasip1. This package is the thin shell that
// moves bytes between the host and the decisions in internal/.
package main

import (
	"os"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/phantom-token/envoy-phantom-token/internal/config"
)

// main is never called: the module is a reactor and the host drives it.
func main() {}

func init() {
	proxywasm.SetVMContext(&vmContext{})
}

// now is the clock; tests in Go mode replace it.
var now = time.Now

type vmContext struct {
	types.DefaultVMContext
}

func (*vmContext) NewPluginContext(uint32) types.PluginContext {
	return &pluginContext{}
}

type pluginContext struct {
	types.DefaultPluginContext
	cfg *config.Config
}

// OnPluginStart validates the configuration. A failure makes Envoy reject the
// configuration before any request reaches it.
func (p *pluginContext) OnPluginStart(int) (status types.OnPluginStartStatus) {
	defer func() {
		if r := recover(); r != nil {
			proxywasm.LogCriticalf("phantom-token: panic while reading the configuration: %v", r)
			status = types.OnPluginStartStatusFailed
		}
	}()
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil && err != types.ErrorStatusNotFound {
		proxywasm.LogCriticalf("phantom-token: cannot read the plugin configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	cfg, err := config.Parse(data, os.Getenv)
	if err != nil {
		proxywasm.LogCriticalf("phantom-token: %v", err)
		return types.OnPluginStartStatusFailed
	}
	p.cfg = cfg
	proxywasm.LogInfof("phantom-token: started: cluster %q, response type %s, cache %v", cfg.Cluster, cfg.ResponseType, cfg.CacheEnabled)
	return types.OnPluginStartStatusOK
}

func (p *pluginContext) NewHttpContext(uint32) types.HttpContext {
	return &httpContext{cfg: p.cfg}
}
