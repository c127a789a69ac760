package main

import (
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

	"github.com/phantom-token/envoy-phantom-token/internal/reply"
)

// metrics are Envoy stats, shared by every VM that defines the same names.
// Envoy lists them under "wasmcustom." on the admin /stats endpoints.
type metrics struct {
	allowed, preflight proxywasm.MetricCounter
	denied             map[uint32]proxywasm.MetricCounter // by status
	cacheHits          proxywasm.MetricCounter
	cacheMisses        proxywasm.MetricCounter
	coalesced          proxywasm.MetricCounter
	evictions          proxywasm.MetricCounter
	calls              [6]proxywasm.MetricCounter // [0]: no response; [n]: status class nxx
	latency            proxywasm.MetricHistogram  // milliseconds
}

const metricPrefix = "phantom_token."

func defineMetrics() *metrics {
	c := func(name string) proxywasm.MetricCounter {
		return proxywasm.DefineCounterMetric(metricPrefix + name)
	}
	m := &metrics{
		allowed:     c("requests.allowed"),
		preflight:   c("requests.preflight"),
		denied:      map[uint32]proxywasm.MetricCounter{},
		cacheHits:   c("cache.hits"),
		cacheMisses: c("cache.misses"),
		coalesced:   c("cache.coalesced"),
		evictions:   c("cache.evictions"),
		latency:     proxywasm.DefineHistogramMetric(metricPrefix + "introspection.latency_ms"),
	}
	for _, k := range []reply.Kind{reply.InvalidRequest, reply.NoToken, reply.InsufficientScope, reply.ServerError, reply.BadGateway, reply.Unavailable} {
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
		m.calls[class].Increment(1)
		return
	}
	m.calls[0].Increment(1)
}
