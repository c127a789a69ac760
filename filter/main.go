// Command filter is the phantom token filter: a proxy-wasm HTTP filter for
// Envoy and Istio, built with GOOS=wasip1. This package is the thin shell that
// moves bytes between the host and the decisions in internal/.
package main

import (
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/phantom-token/envoy-phantom-token/filter/abi"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/phantom-token/envoy-phantom-token/internal/cache"
	"github.com/phantom-token/envoy-phantom-token/internal/config"
	"github.com/phantom-token/envoy-phantom-token/internal/dpop"
	"github.com/phantom-token/envoy-phantom-token/internal/routemeta"
)

// main is never called: the module is a reactor and the host drives it.
func main() {}

func init() {
	abi.SetVMContext(wrapVM(&vmContext{}))
}

// wrapVM wraps the VM context init registers: the identity, except in a
// build with -tags debugstats (debugstats.go).
var wrapVM = func(vm types.VMContext) types.VMContext { return vm }

// now is the wall clock, for expiries (shared with other VMs); monotonic
// bounds waits. Tests in Go mode replace them.
var (
	now       = wallClock
	monotonic = monotonicClock
)

type vmContext struct {
	types.DefaultVMContext
}

// NewPluginContext implements types.VMContext.
func (*vmContext) NewPluginContext(id uint32) types.PluginContext {
	return &pluginContext{id: id}
}

// pluginContext is one plugin configuration in one VM (one per worker).
type pluginContext struct {
	types.DefaultPluginContext
	// The fields a cache hit reads come first (see httpContext).
	cfg     *config.Config
	local   *cache.Local
	metrics *metrics
	// spare are contexts of ended requests, for new ones.
	spare []*httpContext
	// resolver finds a request's configuration from its route; nil
	// without routes and route_metadata (nothing of the route is read).
	resolver *config.Resolver
	id       uint32
	// dpopNonceKey is the proxy's key for DPoP nonces, once read (see
	// nonceKey).
	dpopNonceKey []byte
	// proofHeaders are the DPoP proof headers this worker verified (nil
	// without DPoP): a client's header, its key, is parsed once.
	proofHeaders *dpop.HeaderCache
	// flights are the introspections this VM waits for, by token; without
	// a cache each request has its own, outside this map.
	flights map[cache.TokenHash]*flight
	// calls counts the flights whose call this VM makes (queued or under
	// way): the bound of max_in_flight. Flights that wait on another VM's
	// call do not count.
	calls int
	// queued are the flights whose call the plugin makes next, from its own
	// context, so that the call outlives the request that needed it.
	queued []*flight
	// queue wakes this VM's plugin context to make the queued calls.
	queue uint32
	// tick is the tick period set (ms): flushPeriod, or tickPeriod while a
	// flight waits on another VM; 0 when none could be set.
	tick uint32
	// table names the cache's table in its set keys (cache.SetKey):
	// tables.ID(tableNumber), or the namespace when the plugin has no table
	// in the registry (tableNumber -1; see startTable).
	table       string
	tableNumber int64
	// holder names this plugin context in the registry.
	holder uint64
	// nextVisit and nextRenew are when the tick next reads the registry and
	// renews the lease (see visitTables).
	nextVisit, nextRenew time.Time
	// staleLogged is when a stale answer was last logged (monotonic).
	staleLogged time.Duration
}

// OnPluginStart implements types.PluginContext: it validates the
// configuration. A failure makes Envoy reject the configuration before any
// request reaches it.
func (p *pluginContext) OnPluginStart(int) (status types.OnPluginStartStatus) {
	defer func() {
		if r := recover(); r != nil {
			abi.LogCritical("phantom-token: panic while reading the configuration: " + panicText(r))
			status = types.OnPluginStartStatusFailed
		}
	}()
	data, err := abi.GetPluginConfiguration()
	if err != nil && err != types.ErrorStatusNotFound {
		abi.LogCritical("phantom-token: cannot read the plugin configuration: " + err.Error())
		return types.OnPluginStartStatusFailed
	}
	cfg, err := config.Parse(data, os.Getenv)
	if err != nil {
		abi.LogCritical("phantom-token: " + err.Error())
		return types.OnPluginStartStatusFailed
	}
	m, err := defineMetrics()
	if err != nil {
		abi.LogCritical("phantom-token: " + err.Error())
		return types.OnPluginStartStatusFailed
	}
	p.cfg, p.metrics, p.flights = cfg, m, map[cache.TokenHash]*flight{}
	p.resolver = config.NewResolver(cfg, phantomTokenMetadata)
	p.local = cache.NewLocal(cfg.CacheMaxEntries)
	p.tableNumber = -1
	if cfg.CacheEnabled {
		p.startTable(now())
	}
	if dpopPossible(cfg) {
		p.createReplaySets()
		p.proofHeaders = dpop.NewHeaderCache()
	}
	// Each VM has a queue of its own: a shared queue wakes only the VM that
	// registered its name last.
	name := "phantom-token/" + cache.Version + "/dispatch/" + strconv.FormatUint(rand.Uint64(), 36)
	// Without one, a call would belong to the request that needed it, and
	// its answer would be lost if that request went away: no start.
	if p.queue, err = registerQueue(name); err != nil {
		abi.LogCritical("phantom-token: cannot register the shared queue that makes introspection calls: " + err.Error())
		return types.OnPluginStartStatusFailed
	}
	p.updateTick()
	abi.LogInfo("phantom-token: started: cluster " + strconv.Quote(cfg.Cluster) + ", response type " + cfg.ResponseType + ", cache " + strconv.FormatBool(cfg.CacheEnabled) +
		", " + strconv.Itoa(len(cfg.Routes)) + " route rules, route metadata " + strconv.FormatBool(cfg.RouteMetadata))
	return types.OnPluginStartStatusOK
}

// NewHttpContext implements types.PluginContext. Contexts are reused (see
// httpContext.OnHttpStreamDone): an allocation costs a cache hit more in a Go
// wasm module than most of its work.
func (p *pluginContext) NewHttpContext(id uint32) types.HttpContext {
	var h *httpContext
	if n := len(p.spare); n > 0 { // zeroed when it was put there
		h, p.spare = p.spare[n-1], p.spare[:n-1]
	} else {
		h = &httpContext{}
	}
	h.plugin, h.cfg, h.id = p, p.cfg, id
	return h
}

// phantomTokenMetadata reads filter_metadata.phantom_token out of a route's
// or virtual host's metadata, as JSON.
func phantomTokenMetadata(raw []byte) ([]byte, bool, error) {
	return routemeta.JSON(raw, "phantom_token")
}

// maxSpare bounds the contexts a plugin keeps for reuse.
const maxSpare = 256

// createSets makes every set of the cache exist, empty, unless it does
// already (those in [emptied, emptiedTo) do: see emptySets). Shared data
// treats a write with CAS 0 as unconditional, and a key that does not exist
// has no other CAS to give, so only sets that exist make claims atomic; a set
// that could not be created is never claimed (its tokens' calls are not shared
// across workers). It costs one lookup per set when a VM starts.
func (p *pluginContext) createSets(emptied, emptiedTo uint32) {
	failed := 0
	var last error
	for n := range uint32(cache.Sets(p.cfg.CacheMaxEntries)) {
		if n >= emptied && n < emptiedTo {
			continue
		}
		key := cache.SetKey(p.table, uint64(n))
		if _, _, err := getShared(key); err == types.ErrorStatusNotFound {
			if err := setShared(key, nil, 0); err != nil {
				failed, last = failed+1, err
			}
		}
	}
	if failed > 0 {
		abi.LogWarn("phantom-token: cannot create " + strconv.Itoa(failed) + " cache sets (" + last.Error() + "): their tokens are introspected by each worker alone")
	}
}

// tickPeriod is how often a VM looks at the cache for answers another VM is
// fetching, while some request waits on one; otherwise it ticks every
// flushPeriod, to add its counts to Envoy's stats.
const (
	tickPeriod  = 5    // ms
	flushPeriod = 1000 // ms
)

// OnTick implements types.PluginContext: it serves the requests that wait on
// another VM's introspection, and calls the identity server itself for those
// whose wait is over.
func (p *pluginContext) OnTick() {
	var current *flight
	defer func() {
		if r := recover(); r != nil {
			abi.LogCritical("phantom-token: panic on tick: " + panicText(r))
			p.abandon(current)
			p.updateTick()
		}
	}()
	t, mono := now(), monotonic()
	for _, f := range p.flights {
		if f.state == watching {
			current = f
			p.poll(f, t, mono)
		}
	}
	current = nil
	p.updateTick()
	p.metrics.flush()
	if p.cfg != nil && p.cfg.CacheEnabled {
		p.visitTables(t)
	}
	letCollectorRun()
}

// letCollectorRun gives the Go runtime's background mark worker its turn. In
// a wasm VM the module's one goroutine runs only inside callbacks, and the
// scheduler, which runs that worker, is entered only when the goroutine
// yields: without a yield a collection advances only through the assists of
// allocations, so it lasts long, everything allocated meanwhile counts as
// live, and the heap goal climbs. A wasm VM's memory never shrinks, so each
// such peak stays in Envoy's RSS: measured in Envoy 1.40 (e2e
// TestReconfigurationKeepsMemoryFlat, 20 configuration changes each filling
// the cache), the VMs' linear memories grew by 45 to 140 MiB without it and by
// about 1 MiB with a yield on every tick and after every introspection answer.
// Neither is on a cache hit's path. When no collection is under way it costs
// next to nothing; when one is, the worker marks its share and yields back.
func letCollectorRun() { runtime.Gosched() }

// OnPluginDone implements types.PluginContext: Envoy is done with this
// configuration (it was replaced or removed), so its cache table may be
// emptied and reused.
func (p *pluginContext) OnPluginDone() bool {
	defer func() {
		if r := recover(); r != nil {
			abi.LogCritical("phantom-token: panic while stopping: " + panicText(r))
		}
	}()
	abi.LogInfo("phantom-token: done")
	p.releaseTable()
	// The worker's copy of the cache goes too: with Envoy 1.40, the copies
	// of replaced configurations were measured to stay in the VM's memory
	// (a Go module's linear memory never shrinks), 3-5 MiB per worker per
	// configuration change.
	if p.cfg != nil {
		p.local = cache.NewLocal(p.cfg.CacheMaxEntries)
	}
	p.spare = nil
	if p.proofHeaders != nil {
		p.proofHeaders = dpop.NewHeaderCache()
	}
	return true
}

// OnQueueReady implements types.PluginContext: the VM's own queue says that
// calls wait to be made.
func (p *pluginContext) OnQueueReady(queue uint32) {
	defer func() {
		if r := recover(); r != nil {
			abi.LogCritical("phantom-token: panic while making calls: " + panicText(r))
			for len(p.queued) > 0 {
				f := p.queued[0]
				p.queued = p.queued[1:]
				p.abandon(f)
			}
		}
	}()
	// Drain the wake-ups (one per queued flight at most); the calls are in
	// p.queued.
	for range maxWakeups {
		if _, err := dequeue(queue); err != nil {
			break
		}
	}
	p.dispatchQueued()
}

// maxWakeups bounds the queue reads of one OnQueueReady.
const maxWakeups = 1024

// updateTick ticks fast only while a flight waits on another VM's call.
func (p *pluginContext) updateTick() {
	need := false
	for _, f := range p.flights {
		if f.state == watching {
			need = true
			break
		}
	}
	period := uint32(flushPeriod)
	if need {
		period = tickPeriod
	}
	if period == p.tick {
		return
	}
	if err := setTick(period); err != nil {
		abi.LogError("phantom-token: cannot set the tick period: " + err.Error())
		if need { // nothing would ever look at their answer: no wait without a bound
			for _, f := range p.flights {
				if f.state == watching {
					p.abandon(f)
				}
			}
		}
		if p.tick == 0 && p.metrics != nil { // no tick to flush counters on
			p.metrics.direct = true
			p.metrics.flush()
		}
		return
	}
	p.tick = period
}
