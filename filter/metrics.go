package main

import (
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

	"github.com/phantom-token/envoy-phantom-token/internal/reply"
)

// metrics are Envoy stats, shared by every VM that defines the same names.
// Envoy lists them under "wasmcustom." on the admin /stats endpoints.
//
// Counters are kept in the VM and added to Envoy's on the plugin's tick (at
// least once a second, see flushPeriod): a host call per count would be most
// of what a cache hit costs. Stats lag by at most that period.
type metrics struct {
	allowed, preflight *counter
	denied             map[uint32]*counter // by status
	cacheHits          *counter
	cacheMisses        *counter
	coalesced          *counter
	evictions          *counter
	calls              [6]*counter               // [0]: no response; [n]: status class nxx
	latency            proxywasm.MetricHistogram // milliseconds
	all                []*counter
	// direct: no tick to flush on (it could not be set); every count goes
	// to Envoy at once.
	direct bool
}

// counter is one Envoy counter and what this VM counted since its last flush.
type counter struct {
	stat    proxywasm.MetricCounter
	pending uint64
	m       *metrics
}

func (c *counter) inc() {
	c.pending++
	if c.m.direct {
		c.flush()
	}
}

func (c *counter) flush() {
	if c.pending > 0 { // Increment(0) panics
		c.stat.Increment(c.pending)
		c.pending = 0
	}
}

// flush adds every pending count to Envoy's counters.
func (m *metrics) flush() {
	for _, c := range m.all {
		c.flush()
	}
}

const metricPrefix = "phantom_token."

func defineMetrics() *metrics {
	m := &metrics{}
	c := func(name string) *counter {
		k := &counter{stat: proxywasm.DefineCounterMetric(metricPrefix + name), m: m}
		m.all = append(m.all, k)
		return k
	}
	m.allowed, m.preflight = c("requests.allowed"), c("requests.preflight")
	m.denied = map[uint32]*counter{}
	m.cacheHits, m.cacheMisses = c("cache.hits"), c("cache.misses")
	m.coalesced, m.evictions = c("cache.coalesced"), c("cache.evictions")
	m.latency = proxywasm.DefineHistogramMetric(metricPrefix + "introspection.latency_ms")
	for _, k := range []reply.Kind{reply.InvalidRequest, reply.NoToken, reply.InsufficientScope, reply.ServerError, reply.BadGateway, reply.Unavailable, reply.Overloaded} {
		s := reply.Status(k)
		if _, ok := m.denied[s]; !ok {
			m.denied[s] = c("requests." + strconv.Itoa(int(s)))
		}
	}
	m.calls[0] = c("introspection.failed")
	for i := 1; i < len(m.calls); i++ {
		m.calls[i] = c("introspection." + strconv.Itoa(i) + "xx")
	}
	return m
}

// call counts an introspection answer by status class; 0 is no response.
func (m *metrics) call(status int) {
	if class := status / 100; class >= 1 && class < len(m.calls) {
		m.calls[class].inc()
		return
	}
	m.calls[0].inc()
}
