package main

import (
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/phantom-token/envoy-phantom-token/internal/cache"
	"github.com/phantom-token/envoy-phantom-token/internal/introspection"
	"github.com/phantom-token/envoy-phantom-token/internal/jwt"
)

// flight is one introspection of a token that requests of this VM wait for.
// Requests that arrive while it is under way join it instead of calling the
// identity server again; other VMs see the Pending record it leaves in the
// token's cache slot and wait for its answer there.
type flight struct {
	hash    cache.TokenHash
	key     string
	token   string
	local   localKey
	waiters []*httpContext
	// caller is the context whose call is in flight: a request's, or the
	// plugin's own (made from the tick). 0 while the flight waits on another
	// VM's call, or after its caller went away.
	caller uint32
	// claimed: this flight wrote the Pending record in the slot.
	claimed bool
	started time.Time
}

// settledFor is how long the outcome of a call stays in the slot for the
// requests of other VMs that waited on it (they look every tickPeriod).
const settledFor = time.Second

// introspect makes h wait for an introspection of its token: one already
// under way in this VM or another, or a new call.
func (p *pluginContext) introspect(h *httpContext, otherVMCalling bool) types.Action {
	if !p.cfg.CacheEnabled { // no cache, no sharing: every request calls
		f := &flight{token: h.token, waiters: []*httpContext{h}}
		h.flight = f
		p.dispatch(f, h.id)
		return types.ActionPause
	}
	hash := h.tokenHash()
	if f := p.flights[hash]; f != nil {
		f.waiters = append(f.waiters, h)
		h.flight = f
		p.metrics.coalesced.Increment(1)
		return types.ActionPause
	}
	f := &flight{hash: hash, key: h.key(), token: h.token, local: p.local.key(h.token), waiters: []*httpContext{h}}
	h.flight = f
	p.flights[f.hash] = f
	if otherVMCalling || !p.claim(f) {
		p.metrics.coalesced.Increment(1)
		p.updateTick()
		return types.ActionPause
	}
	p.dispatch(f, h.id)
	return types.ActionPause
}

// dispatch calls the identity server for f on behalf of context caller.
func (p *pluginContext) dispatch(f *flight, caller uint32) {
	headers, body := introspection.Request(p.cfg, f.token)
	f.started = now()
	_, err := proxywasm.DispatchHttpCall(p.cfg.Cluster, headers, body, nil, uint32(p.cfg.Timeout.Milliseconds()),
		func(numHeaders, bodySize, _ int) { p.onAnswer(f, caller, numHeaders, bodySize) })
	if err != nil {
		p.release(f)
		p.deliver(f, introspection.Answer{Outcome: introspection.BadGateway,
			Reason: "cannot dispatch the introspection call to cluster " + p.cfg.Cluster + ": " + err.Error()})
		return
	}
	f.caller = caller
}

// onAnswer receives the identity server's answer for f.
func (p *pluginContext) onAnswer(f *flight, caller uint32, numHeaders, bodySize int) {
	defer func() {
		if r := recover(); r != nil {
			proxywasm.LogCriticalf("phantom-token: panic: %v", r)
			p.deliver(f, introspection.Answer{Outcome: introspection.ServerError, Reason: "internal error"})
		}
	}()
	if f.caller != caller { // superseded: its caller went away and another call was made
		return
	}
	var headers [][2]string
	if numHeaders > 0 {
		var err error
		if headers, err = proxywasm.GetHttpCallResponseHeaders(); err != nil {
			headers = nil // read as no response: 502
		}
	}
	var body []byte
	if bodySize > 0 {
		// Read at most one byte past the limit: enough to know it is too big.
		body, _ = proxywasm.GetHttpCallResponseBody(0, min(bodySize, introspection.BodyLimit(p.cfg)))
	}
	t := now()
	answer := introspection.Classify(p.cfg, headers, body, t)
	p.metrics.call(answer.Status)
	p.metrics.latency.Record(uint64(max(t.Sub(f.started).Milliseconds(), 0)))
	if p.cfg.CacheEnabled {
		p.record(f, answer, t)
	}
	p.deliver(f, answer)
}

// deliver gives the answer to every request still waiting on f.
func (p *pluginContext) deliver(f *flight, a introspection.Answer) {
	if p.flights[f.hash] == f {
		delete(p.flights, f.hash)
	}
	f.caller = 0
	// A waiter leaves the list only once served, so that after a panic the
	// recovery can still answer the rest.
	var t time.Time // the clock is read only when needed: the panic recovery comes here too
	if a.Outcome == introspection.Active {
		t = now()
	}
	for len(f.waiters) > 0 {
		if w := f.waiters[0]; !w.done && proxywasm.SetEffectiveContext(w.id) == nil {
			if w.finish(a, t) == types.ActionContinue {
				if err := proxywasm.ResumeHttpRequest(); err != nil {
					proxywasm.LogErrorf("phantom-token: cannot resume the request: %v", err)
				}
			}
		}
		f.waiters = f.waiters[1:]
	}
}

// record stores the answer in the token's slot: an active answer for as
// long as it may be cached; any other outcome briefly, for the requests of
// other VMs that wait on this call (only while the slot still says Pending
// for this token, so no other entry is evicted for it).
func (p *pluginContext) record(f *flight, a introspection.Answer, t time.Time) {
	rec, cas, _ := proxywasm.GetSharedData(f.key)
	var e cache.Entry
	switch {
	case a.Outcome == introspection.Active && a.CacheTTL > 0:
		e = cache.Entry{Kind: cache.Active, Expires: t.Add(a.CacheTTL), JWT: a.JWT}
		p.remember(f.local, a, e.Expires)
	case cache.Decode(rec, f.hash, t).Kind == cache.Pending:
		e = cache.Entry{Kind: cache.Settled, Expires: t.Add(settledFor), Outcome: byte(a.Outcome), JWT: a.JWT}
	default:
		return
	}
	p.store(f, rec, cas, e, t)
}

// claim writes the Pending record that tells other VMs this one is calling.
//
// It reports false when another VM is calling for the token, or has just
// stored its answer: the flight then waits, and the tick finds the answer.
// The write is a compare-and-swap on the slot (every slot exists from the
// start, see createSlots), so of two VMs that race for a token only one
// calls.
func (p *pluginContext) claim(f *flight) bool {
	t := now()
	busy := func(rec []byte) bool {
		k := cache.Decode(rec, f.hash, t).Kind
		return k == cache.Pending || k == cache.Active
	}
	rec, cas, _ := proxywasm.GetSharedData(f.key)
	if busy(rec) {
		return false
	}
	f.claimed = p.store(f, rec, cas, cache.Entry{Kind: cache.Pending, Expires: t.Add(p.cfg.Timeout + time.Second)}, t)
	if !f.claimed {
		// Another VM wrote the slot in between: for this token, or another.
		rec, _, _ = proxywasm.GetSharedData(f.key)
		return !busy(rec)
	}
	return true
}

// createSlots makes every slot of the cache exist, empty, unless it does
// already. Shared data treats a write with CAS 0 as unconditional, and a key
// that does not exist has no other CAS to give, so only slots that exist make
// claims atomic. It costs one lookup per slot when a VM starts.
func (p *pluginContext) createSlots() {
	for slot := range p.cfg.CacheMaxEntries {
		key := cache.SlotKey(p.cfg.CacheNamespace, uint64(slot))
		if _, _, err := proxywasm.GetSharedData(key); err == types.ErrorStatusNotFound {
			_ = proxywasm.SetSharedData(key, nil, 0)
		}
	}
}

// release clears f's Pending record, so that other VMs stop waiting for a
// call that will not answer.
func (p *pluginContext) release(f *flight) {
	if !f.claimed {
		return
	}
	f.claimed = false
	rec, cas, err := proxywasm.GetSharedData(f.key)
	if err == nil && cache.Decode(rec, f.hash, now()).Kind == cache.Pending {
		// Shared data has no delete; an empty value frees the record.
		_ = proxywasm.SetSharedData(f.key, nil, cas)
	}
}

// store writes e over rec (read with cas). It reports false when another
// VM wrote the slot in between; that VM's record is as good as ours.
func (p *pluginContext) store(f *flight, rec []byte, cas uint32, e cache.Entry, t time.Time) bool {
	if cache.Live(rec, t) && cache.Decode(rec, f.hash, t).Kind != cache.Active {
		p.metrics.evictions.Increment(1)
	}
	err := proxywasm.SetSharedData(f.key, cache.Encode(f.hash, e), cas)
	if err != nil && err != types.ErrorStatusCasMismatch {
		proxywasm.LogWarnf("phantom-token: cannot write the cache: %v", err)
	}
	return err == nil
}

// poll looks at the slot of a flight that waits without a call of its own:
// another VM's answer is served; when there is none to wait for any more,
// this VM calls, from the plugin's own context so that the call outlives any
// one request.
func (p *pluginContext) poll(f *flight, t time.Time) {
	rec, _, _ := proxywasm.GetSharedData(f.key)
	switch e := cache.Decode(rec, f.hash, t); e.Kind {
	case cache.Pending:
		return
	case cache.Active:
		if a, ok := fromCache(e.JWT); ok {
			p.remember(f.local, a, e.Expires)
			p.deliver(f, a)
			return
		}
	case cache.Settled:
		a := introspection.Answer{Outcome: introspection.Outcome(e.Outcome), Reason: "answer of another worker's call"}
		if a.Outcome != introspection.Active {
			p.deliver(f, a)
			return
		}
		if a, ok := fromCache(e.JWT); ok {
			p.deliver(f, a)
			return
		}
	}
	if p.claim(f) {
		p.dispatch(f, p.id)
	}
}

// leave forgets a request whose stream ended before it was answered.
func (p *pluginContext) leave(h *httpContext) {
	f := h.flight
	if f == nil || h.done {
		return
	}
	for i, w := range f.waiters {
		if w == h {
			f.waiters = append(f.waiters[:i], f.waiters[i+1:]...)
			break
		}
	}
	if f.caller == h.id {
		// Its call ends with its stream: the tick calls again for the rest.
		f.caller = 0
		p.release(f)
	}
	if len(f.waiters) == 0 && f.caller == 0 {
		if p.flights[f.hash] == f {
			delete(p.flights, f.hash)
		}
		p.release(f)
	}
	if p.cfg.CacheEnabled {
		p.updateTick()
	}
}

// upstreamValue is the upstream header's value for a JWT.
func (p *pluginContext) upstreamValue(jwtText string) string {
	if p.cfg.UpstreamHeader == "authorization" {
		return "Bearer " + jwtText
	}
	return jwtText
}

// remember keeps an active answer in this VM's copy of the cache until
// expires, and returns the entry.
func (p *pluginContext) remember(k localKey, a introspection.Answer, expires time.Time) localEntry {
	e := localEntry{answer: a, upstream: p.upstreamValue(a.JWT), expires: expires}
	p.local.put(k, e)
	return e
}

// fromCache turns a stored JWT into an active answer.
func fromCache(jwtText string) (introspection.Answer, bool) {
	claims, err := jwt.Parse(jwtText)
	return introspection.Answer{Outcome: introspection.Active, JWT: jwtText, Claims: claims}, err == nil
}
