package main

import (
	"errors"
	"strconv"

	"github.com/phantom-token/envoy-phantom-token/filter/abi"

	"github.com/phantom-token/envoy-phantom-token/internal/introspection"
	"github.com/phantom-token/envoy-phantom-token/internal/reply"
)

// metrics are Envoy stats, shared by every VM that defines the same names.
// Envoy lists them under "wasmcustom." on the admin /stats endpoints.
//
// Counters are kept in the VM and added to Envoy's on the plugin's tick (at
// least once a second, see flushPeriod): a host call per count would be most
// of what a cache hit costs. Stats lag by at most that period.
type metrics struct {
	// plainHits are the plain hits (plainHit) since the last flush: each is
	// one of allowed and one of cacheHits, counted here so that a hit
	// touches one cache line of the metrics, not three.
	plainHits uint64
	// direct: no tick to flush on (it could not be set); every count goes
	// to Envoy at once.
	direct             bool
	allowed, preflight *counter
	denied             map[uint32]*counter // by status
	cacheHits          *counter
	cacheMisses        *counter
	coalesced          *counter
	evictions          *counter
	claimOmitted       *counter
	staleServed        *counter
	waited             *counter
	// refreshes started, and how they ended: renewed, revoked, failed.
	refreshStarted, refreshRenewed, refreshRevoked, refreshFailed *counter
	calls                                                         [6]*counter // [0]: no response; [n]: status class nxx
	latency                                                       uint32      // histogram, milliseconds
	all                                                           []*counter
}

// counter is one Envoy counter and what this VM counted since its last flush.
type counter struct {
	name    string
	stat    uint32
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
	if c.pending > 0 {
		if err := addToMetric(c.stat, c.pending); err != nil {
			abi.LogWarn("phantom-token: cannot count " + c.name + ": " + err.Error())
		}
		c.pending = 0
	}
}

// plainHit counts a plain hit.
func (m *metrics) plainHit() {
	m.plainHits++
	if m.direct {
		m.flush()
	}
}

// flush adds every pending count to Envoy's counters.
func (m *metrics) flush() {
	if n := m.plainHits; n > 0 {
		m.plainHits = 0
		m.allowed.pending += n
		m.cacheHits.pending += n
	}
	for _, c := range m.all {
		c.flush()
	}
}

const (
	metricPrefix = "phantom_token."
	// latencyMetric is a constant: its bytes stay where proxytest's wasm
	// mode keeps a view of them (see defineMetrics).
	latencyMetric = metricPrefix + "introspection.latency_ms"
)

// metricKind is the ABI's metric type.
type metricKind uint32

const (
	metricCounter   metricKind = 0
	metricHistogram metricKind = 2
)

// defineMetrics defines every metric, or says which one it could not.
func defineMetrics() (*metrics, error) {
	m := &metrics{}
	var failed error
	// The names stay referenced by the metrics: proxytest's wasm mode keeps
	// a view of the module's memory as each name, not a copy.
	define := func(kind metricKind, name string) uint32 {
		id, err := defineMetric(kind, name)
		if err != nil && failed == nil {
			failed = errors.New("cannot define the metric " + name + ": " + err.Error())
		}
		return id
	}
	c := func(name string) *counter {
		k := &counter{name: metricPrefix + name, m: m}
		k.stat = define(metricCounter, k.name)
		m.all = append(m.all, k)
		return k
	}
	m.allowed, m.preflight = c("requests.allowed"), c("requests.preflight")
	m.denied = map[uint32]*counter{}
	m.cacheHits, m.cacheMisses = c("cache.hits"), c("cache.misses")
	m.coalesced, m.evictions = c("cache.coalesced"), c("cache.evictions")
	m.claimOmitted = c("claim_header_omitted")
	m.staleServed, m.waited = c("cache.stale_served"), c("requests.waited")
	m.refreshStarted, m.refreshRenewed = c("refresh.started"), c("refresh.renewed")
	m.refreshRevoked, m.refreshFailed = c("refresh.revoked"), c("refresh.failed")
	m.latency = define(metricHistogram, latencyMetric)
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
	return m, failed
}

// refreshed counts how a refresh ended: its answer replaced the entry
// (renewed), found the token inactive and removed it (revoked), or neither
// (failed: the entry stays).
func (m *metrics) refreshed(a introspection.Answer) {
	switch {
	case a.Outcome == introspection.Active && a.CacheTTL > 0:
		m.refreshRenewed.inc()
	case a.Outcome == introspection.Inactive:
		m.refreshRevoked.inc()
	default:
		m.refreshFailed.inc()
	}
}

// call counts an introspection answer by status class; 0 is no response.
func (m *metrics) call(status int) {
	if class := status / 100; class >= 1 && class < len(m.calls) {
		m.calls[class].inc()
		return
	}
	m.calls[0].inc()
}
