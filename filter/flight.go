package main

import (
	"errors"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/phantom-token/envoy-phantom-token/internal/cache"
	"github.com/phantom-token/envoy-phantom-token/internal/introspection"
	"github.com/phantom-token/envoy-phantom-token/internal/jwt"
	"github.com/phantom-token/envoy-phantom-token/internal/reply"
)

// flight is one introspection of a token that requests of this VM wait for.
// Requests that arrive while it is under way join it instead of calling the
// identity server again; other VMs see the Pending record it leaves in the
// token's cache set and wait for its answer there.
type flight struct {
	hash    cache.TokenHash
	key     string // the token's cache set; "" without a cache
	token   string
	local   cache.LocalKey
	waiters []*httpContext
	state   flightState
	// claimed: this flight's Pending record stands in the set.
	claimed bool
	// since is when the flight started waiting on another VM, or calling.
	since time.Time
}

type flightState int

const (
	queued   flightState = iota + 1 // its call is made next, from the plugin's context
	calling                         // its call is under way
	watching                        // another VM calls; the tick looks at the set
	over                            // answered or abandoned
)

func (s flightState) String() string {
	switch s {
	case queued:
		return "queued"
	case calling:
		return "calling"
	case watching:
		return "watching"
	case over:
		return "over"
	}
	return "flightState(?)"
}

// authenticate finds the answer for h's token: in this VM's copy of the
// cache, in a flight of this VM, in the shared cache, or from a new call.
func (p *pluginContext) authenticate(h *httpContext) types.Action {
	cfg := p.cfg
	if !cfg.CacheEnabled { // no cache, no sharing: every request calls
		f := &flight{token: h.token}
		return p.start(h, f, cache.CallUnclaimed)
	}
	t := now()
	lk := p.local.Key(h.token)
	if e, ok := p.local.Get(lk, t); ok {
		p.metrics.cacheHits.inc()
		return h.admitted(h.admit(e.Claims, e.Upstream, t))
	}
	hash := h.tokenHash()
	if f := p.flights[hash]; f != nil {
		f.waiters = append(f.waiters, h)
		h.flight = f
		p.metrics.coalesced.inc()
		return types.ActionPause
	}
	f := &flight{hash: hash, key: cache.Key(p.table, hash, cfg.CacheMaxEntries), token: h.token, local: lk}
	step, a, expires := p.look(f, t, cache.NewRequest)
	switch step {
	case cache.Serve:
		e := p.remember(f.local, a, expires)
		p.metrics.cacheHits.inc()
		return h.admitted(h.admit(e.Claims, e.Upstream, t))
	case cache.Refuse:
		p.metrics.cacheHits.inc()
		return h.respond(reply.InvalidToken, "token is not active (cached verdict)")
	}
	p.metrics.cacheMisses.inc()
	return p.start(h, f, step)
}

// admitted marks a request let through from its header callback.
func (h *httpContext) admitted(a types.Action) types.Action {
	if a == types.ActionContinue {
		h.done = true
	}
	return a
}

// start makes h wait on the new flight f: for another VM's call (Wait), or
// for a call of this VM's.
func (p *pluginContext) start(h *httpContext, f *flight, step cache.Step) types.Action {
	if p.nflights >= p.cfg.MaxInFlight {
		p.release(f)
		return h.respond(reply.Overloaded, "max_in_flight introspections under way in this worker")
	}
	p.nflights++
	f.waiters, h.flight = []*httpContext{h}, f
	if f.key != "" {
		p.flights[f.hash] = f
	}
	if step == cache.Wait {
		f.state, f.since = watching, now()
		p.metrics.coalesced.inc()
		p.updateTick()
		return types.ActionPause
	}
	p.queue1(f)
	return types.ActionPause
}

// queue1 has the plugin make f's call from its own context: the SDK delivers
// an answer only to the context that made the call, and a request's context
// can end before its answer comes, when the other requests still need it.
// Without a queue the call is made at once, from the current context.
func (p *pluginContext) queue1(f *flight) {
	f.state = queued
	p.queued = append(p.queued, f)
	if p.hasQueue && enqueue(p.queue, wakeup) == nil {
		return // the host wakes the plugin (at once, re-entrantly, in the emulator)
	}
	p.queued = p.queued[:len(p.queued)-1]
	p.dispatch(f)
}

var wakeup = []byte{1}

// dispatchQueued makes the queued calls. A flight leaves the queue only once
// its call is made, so that after a panic the recovery abandons it too.
func (p *pluginContext) dispatchQueued() {
	for len(p.queued) > 0 {
		if f := p.queued[0]; f.state == queued {
			p.dispatch(f)
		}
		p.queued = p.queued[1:]
	}
}

// dispatch calls the identity server for f, unless every request that needed
// it went away.
func (p *pluginContext) dispatch(f *flight) {
	if len(f.waiters) == 0 {
		p.end(f)
		p.release(f)
		return
	}
	headers, body := introspection.Request(p.cfg, f.token)
	f.state, f.since = calling, now()
	_, err := dispatchCall(p.cfg.Cluster, headers, body, nil, uint32(p.cfg.Timeout.Milliseconds()),
		func(numHeaders, bodySize, _ int) { p.onAnswer(f, numHeaders, bodySize) })
	if err != nil {
		p.release(f)
		p.settle(f, introspection.Answer{Outcome: introspection.BadGateway,
			Reason: "cannot dispatch the introspection call to cluster " + p.cfg.Cluster + ": " + err.Error()})
	}
}

// onAnswer receives the identity server's answer for f. It comes to the
// plugin's context, whether or not the requests that needed it are still
// there: the answer fills the cache either way.
func (p *pluginContext) onAnswer(f *flight, numHeaders, bodySize int) {
	defer func() {
		if r := recover(); r != nil {
			proxywasm.LogCritical("phantom-token: panic on the introspection answer: " + panicText(r))
			p.abandon(f)
		}
	}()
	if f.state != calling { // abandoned after a panic
		return
	}
	var headers [][2]string
	if numHeaders > 0 {
		var err error
		if headers, err = callHeaders(); err != nil {
			headers = nil // read as no response: 502
		}
	}
	var body []byte
	if bodySize > 0 {
		// Read at most one byte past the limit: enough to know it is too big
		// (BodyLimit includes that byte).
		body, _ = callBody(0, min(bodySize, introspection.BodyLimit(p.cfg)))
	}
	t := now()
	answer := introspection.Classify(p.cfg, headers, body, t)
	p.metrics.call(answer.Status)
	if err := recordMetric(p.metrics.latency, uint64(max(t.Sub(f.since).Milliseconds(), 0))); err != nil {
		proxywasm.LogWarn("phantom-token: cannot record the introspection latency: " + err.Error())
	}
	if f.key != "" {
		p.store(f, answer, t)
		p.release(f) // a claim the answer could not replace: nobody waits on it
	}
	p.settle(f, answer)
}

// settle ends f with answer a, given to every request still waiting on it.
func (p *pluginContext) settle(f *flight, a introspection.Answer) {
	p.end(f)
	var upstream string
	var t time.Time
	if a.Outcome == introspection.Active {
		upstream, t = p.upstreamValue(a.JWT), now()
	}
	// A waiter leaves the list only once served, so that after a panic the
	// recovery (abandon) can still answer the rest.
	for len(f.waiters) > 0 {
		w := f.waiters[0]
		if !w.done && setEffective(w.id) == nil {
			if w.finish(a, upstream, t) == types.ActionContinue {
				if err := resume(); err != nil {
					proxywasm.LogError("phantom-token: cannot resume the request: " + err.Error())
				}
				w.done = true
			}
		}
		f.waiters = f.waiters[1:]
	}
	p.updateTick()
}

// end takes f out of the flight table; its call, if any, is no longer awaited.
func (p *pluginContext) end(f *flight) {
	if f.state == over {
		return
	}
	f.state = over
	p.nflights--
	if f.key != "" && p.flights[f.hash] == f {
		delete(p.flights, f.hash)
	}
}

// abandon answers every request still waiting on f with 500 and ends it.
// It is the recovery after a panic; f may be nil.
func (p *pluginContext) abandon(f *flight) {
	if f == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			proxywasm.LogCritical("phantom-token: panic while abandoning a flight: " + panicText(r))
		}
	}()
	p.end(f)
	for len(f.waiters) > 0 {
		w := f.waiters[0]
		f.waiters = f.waiters[1:]
		if !w.done && setEffective(w.id) == nil {
			w.respond(reply.ServerError, "internal error")
		}
		w.done = true
	}
	p.release(f)
}

// leave forgets a request whose stream ended before it was answered. A call
// under way goes on: its answer still fills the cache. A queued call with no
// requests left is not made.
func (p *pluginContext) leave(h *httpContext) {
	f := h.flight
	if f == nil || h.done {
		return
	}
	h.done = true
	if f.state == over {
		// The flight is being settled (the host may end a stream while
		// the filter answers it): its loop skips requests that are done.
		return
	}
	for i, w := range f.waiters {
		if w == h {
			f.waiters = append(f.waiters[:i], f.waiters[i+1:]...)
			break
		}
	}
	if len(f.waiters) == 0 && f.state == watching {
		p.end(f)
		p.updateTick()
	}
}

// poll looks at the set of a flight that waits on another VM's call: that
// call's answer is served; when there is none to wait for any more, this VM
// calls.
func (p *pluginContext) poll(f *flight, t time.Time) {
	who := cache.Waiter
	if !t.Before(f.since.Add(cache.PendingFor(p.cfg.Timeout))) {
		who = cache.WaitOver
	}
	step, a, expires := p.look(f, t, who)
	switch step {
	case cache.Wait:
	case cache.Serve:
		p.remember(f.local, a, expires)
		p.settle(f, a)
	case cache.Refuse:
		p.settle(f, introspection.Answer{Outcome: introspection.Inactive, Reason: "token is not active (cached verdict)"})
	case cache.Deliver:
		p.settle(f, a)
	default:
		p.queue1(f)
	}
}

// claimAttempts bounds the compare-and-swap retries on one set.
const claimAttempts = 3

// look reads the token's set and decides what f's requests do (see
// cache.Next). A Call step has written its Pending claim (f.claimed); a record
// that cannot be used (a JWT that does not parse) counts as absent. For Serve
// and Deliver, a is the answer found and expires the record's expiry.
func (p *pluginContext) look(f *flight, t time.Time, who cache.Asker) (step cache.Step, a introspection.Answer, expires time.Time) {
	for range claimAttempts {
		raw, cas, err := getShared(f.key)
		if err != nil {
			return cache.CallUnclaimed, a, expires // no set to claim in (see createSets)
		}
		set := cache.Decode(raw)
		step, rec := cache.Next(set, f.hash, t, who)
		switch step {
		case cache.Serve:
			if a, ok := fromCache(rec.JWT); ok {
				return step, a, rec.Expires
			}
			step = cache.Call // unreadable: as absent, and its place is the token's own
		case cache.Deliver:
			a = introspection.Answer{Outcome: rec.Settled(), Reason: "answer of another worker's call"}
			if a.Outcome != introspection.Active {
				return step, a, rec.Expires
			}
			if a, ok := fromCache(rec.JWT); ok {
				return step, a, rec.Expires
			}
			step = cache.Call
		case cache.Refuse, cache.Wait, cache.CallUnclaimed:
			return step, a, expires
		}
		claim, evicted, ok := cache.Claim(set, f.hash, t, t.Add(cache.PendingFor(p.cfg.Timeout)))
		if !ok {
			return cache.CallUnclaimed, a, expires
		}
		switch err := setShared(f.key, cache.Encode(claim), cas); {
		case err == nil:
			f.claimed = true
			if evicted {
				p.metrics.evictions.inc()
			}
			return cache.Call, a, expires
		case !errors.Is(err, types.ErrorStatusCasMismatch):
			proxywasm.LogWarn("phantom-token: cannot write the cache: " + err.Error())
			return cache.CallUnclaimed, a, expires
		}
		// Another VM wrote the set in between: look again.
	}
	return cache.CallUnclaimed, a, expires
}

// store writes what f's answer leaves in the set (see cache.ToStore), and
// keeps an active answer in this VM's copy once the set holds it.
func (p *pluginContext) store(f *flight, a introspection.Answer, t time.Time) {
	rec, ok := cache.ToStore(f.hash, a, t, p.cfg.CacheNegativeTTL, f.claimed)
	if !ok {
		return
	}
	for range claimAttempts {
		raw, cas, err := getShared(f.key)
		if err != nil {
			return
		}
		set, evicted, ok := cache.Store(cache.Decode(raw), rec, t)
		if !ok {
			return
		}
		switch err := setShared(f.key, cache.Encode(set), cas); {
		case err == nil:
			f.claimed = false
			if evicted {
				p.metrics.evictions.inc()
			}
			if rec.Kind == cache.Active {
				p.remember(f.local, a, rec.Expires)
			}
			return
		case !errors.Is(err, types.ErrorStatusCasMismatch):
			proxywasm.LogWarn("phantom-token: cannot write the cache: " + err.Error())
			return
		}
	}
}

// release takes f's Pending claim out of its set, so that other VMs stop
// waiting for a call that will not answer.
func (p *pluginContext) release(f *flight) {
	if !f.claimed {
		return
	}
	f.claimed = false
	for range claimAttempts {
		raw, cas, err := getShared(f.key)
		if err != nil {
			return
		}
		set, ok := cache.Release(cache.Decode(raw), f.hash)
		if !ok {
			return
		}
		if err := setShared(f.key, cache.Encode(set), cas); !errors.Is(err, types.ErrorStatusCasMismatch) {
			return
		}
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
func (p *pluginContext) remember(k cache.LocalKey, a introspection.Answer, expires time.Time) cache.LocalEntry {
	e := cache.LocalEntry{Claims: a.Claims, Upstream: p.upstreamValue(a.JWT), Expires: expires}
	p.local.Put(k, e)
	return e
}

// fromCache turns a stored JWT into an active answer.
func fromCache(jwtText string) (introspection.Answer, bool) {
	claims, err := jwt.Parse(jwtText)
	return introspection.Answer{Outcome: introspection.Active, JWT: jwtText, Claims: claims}, err == nil
}
