// Command filter is the phantom token filter: a proxy-wasm HTTP filter for
// Envoy and Istio, built with GOOS=wasip1. This package is the thin shell that
// moves bytes between the host and the decisions in internal/.
package main

import (
	"os"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/phantom-token/envoy-phantom-token/internal/cache"
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

func (*vmContext) NewPluginContext(id uint32) types.PluginContext {
	return &pluginContext{id: id}
}

// pluginContext is one plugin configuration in one VM (one per worker).
type pluginContext struct {
	types.DefaultPluginContext
	id      uint32
	cfg     *config.Config
	metrics *metrics
	// flights are the introspections this VM waits for, by token.
	flights map[cache.TokenHash]*flight
	ticking bool
	local   *localCache
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
	p.cfg, p.metrics, p.flights = cfg, defineMetrics(), map[cache.TokenHash]*flight{}
	p.local = newLocalCache(cfg.CacheMaxEntries)
	if cfg.CacheEnabled {
		p.createSlots()
	}
	proxywasm.LogInfof("phantom-token: started: cluster %q, response type %s, cache %v", cfg.Cluster, cfg.ResponseType, cfg.CacheEnabled)
	return types.OnPluginStartStatusOK
}

func (p *pluginContext) NewHttpContext(id uint32) types.HttpContext {
	return &httpContext{plugin: p, cfg: p.cfg, id: id}
}

// tickPeriod is how often a VM looks at the cache for answers another VM is
// fetching. It ticks only while some request waits on one.
const tickPeriod = 5 // ms

// OnTick serves the requests that wait on another VM's introspection, and
// calls the identity server itself for those whose wait is over.
func (p *pluginContext) OnTick() {
	defer func() {
		if r := recover(); r != nil {
			proxywasm.LogCriticalf("phantom-token: panic on tick: %v", r)
		}
	}()
	t := now()
	for _, f := range p.flights {
		if f.caller == 0 {
			p.poll(f, t)
		}
	}
	p.updateTick()
}

// updateTick runs the tick only while a flight waits without a call of ours.
func (p *pluginContext) updateTick() {
	need := false
	for _, f := range p.flights {
		if f.caller == 0 {
			need = true
			break
		}
	}
	if need == p.ticking {
		return
	}
	period := uint32(0)
	if need {
		period = tickPeriod
	}
	if err := proxywasm.SetTickPeriodMilliSeconds(period); err != nil {
		proxywasm.LogErrorf("phantom-token: cannot set the tick period: %v", err)
		return
	}
	p.ticking = need
}
