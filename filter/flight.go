package main

import (
	"errors"
	"strings"
	"time"

	"github.com/phantom-token/envoy-phantom-token/filter/abi"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/phantom-token/envoy-phantom-token/internal/bearer"
	"github.com/phantom-token/envoy-phantom-token/internal/cache"
	"github.com/phantom-token/envoy-phantom-token/internal/claims"
	"github.com/phantom-token/envoy-phantom-token/internal/config"
	"github.com/phantom-token/envoy-phantom-token/internal/introspection"
	"github.com/phantom-token/envoy-phantom-token/internal/jwt"
	"github.com/phantom-token/envoy-phantom-token/internal/reply"
)

// flight is one introspection of a token that requests of this VM wait for.
// Requests that arrive while it is under way join it instead of calling the
// identity server again; other VMs see the Pending record it leaves in the
// token's cache set and wait for its answer there.
type flight struct {
	// cfg is the configuration of the request that started it: its identity
	// server is the one called (every request that joins has the same, as
	// the token's hash includes its namespace).
	cfg  *config.Config
	hash cache.TokenHash
	// keys are the token's two cache sets ("" without a cache); key is the
	// one its record is in, or goes to.
	keys    [2]string
	key     string
	token   string
	local   cache.LocalKey
	waiters []*httpContext
	state   flightState
	// claimed: this flight's Pending record stands in the set.
	claimed bool
	// refresh: a refresh ahead of the token's answer's end (refresh_ahead),
	// made whether or not any request waits on it.
	refresh bool
	// stale is the token's answer past its cache lifetime, found when the
	// flight looked (Kind None when none): it stands in when the call fails
	// for a reason that is not the identity server's verdict.
	stale cache.Record
	// since is when the flight started waiting on another VM, or calling,
	// on the monotonic clock: a wall clock stepped back never makes a wait
	// longer.
	since time.Duration
	// trace are the trace headers of the request that started it, which its
	// call carries (a coalesced call: its first request's).
	trace [][2]string
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
		h.keepToken()
		if p.calls >= cfg.MaxInFlight {
			return h.respond(reply.Overloaded, "max_in_flight introspections under way in this worker")
		}
		f := &flight{token: h.token, cfg: h.cfg}
		return p.start(h, f, cache.CallUnclaimed)
	}
	t := now()
	lk := p.local.Key(h.cfg.CacheNamespace, h.authorization)
	if e, ok := p.local.Get(lk, t); ok {
		if !e.RefreshAt.IsZero() && !t.Before(e.RefreshAt) {
			return p.hitDueForRefresh(h, lk, e, t)
		}
		p.metrics.cacheHits.inc()
		return h.admitted(h.admit(e, t))
	}
	return p.lookup(h, lk, t)
}

// serveHit serves h from this VM's copy of the cache before its
// Authorization value is parsed, when the copy holds an entry for the value
// that is not due for a refresh; served is false otherwise, and the request
// goes the whole way. The copy is keyed by the value itself (authenticate,
// which only a value that parsed as one well-formed Bearer token reaches;
// max_token_length is the plugin's, as the copy is), so a value found there
// is such a token, and its checks need not run again. The caller calls it
// only for a value of the Bearer scheme on a route without DPoP: "DPoP x"
// parsed on a DPoP route is another scheme here; and not under plain hits,
// where plainHit looked first (what it left, a refusal by the JWT's checks
// among it, authenticate finds and answers).
func (p *pluginContext) serveHit(h *httpContext) (action types.Action, served bool) {
	t := now()
	e := p.local.Hit(p.local.Key(h.cfg.CacheNamespace, h.authorization), t.UnixNano())
	if e == nil { // absent, expired or due for a refresh: the whole way
		return types.ActionContinue, false
	}
	p.metrics.cacheHits.inc()
	return h.admitted(h.admit(e, t)), true
}

// plainHit serves h from this VM's copy of the cache on its Authorization
// value alone, under a configuration where nothing else of the request is
// needed (config.PlainHits): the cache's Hit, the JWT's checks, the JWT in
// Authorization. served is false when it is no such hit (and then nothing
// was done), or a JWT the checks refuse: the whole way answers it.
func (p *pluginContext) plainHit(h *httpContext, authorization string) (action types.Action, served bool) {
	if !bearer.HasBearerScheme(authorization) {
		return types.ActionContinue, false
	}
	t := now()
	e := p.local.Hit(p.local.Key(h.cfg.CacheNamespace, authorization), t.UnixNano())
	if e == nil || e.Claims.Check(t, h.cfg.RequiredScopes) != jwt.Valid {
		return types.ActionContinue, false
	}
	if err := replaceHeader("authorization", e.Upstream); err != nil {
		h.authorization = authorization // for the log line's fingerprint
		return h.respond(reply.ServerError, "cannot set the authorization header: "+err.Error()), true
	}
	p.metrics.plainHit()
	h.done, h.plain = true, true // let through: last, so that a panic before it still answers
	return types.ActionContinue, true
}

// hitDueForRefresh serves a hit on this VM's copy in the last part of its
// entry's lifetime, and starts its refresh when this worker takes the lease
// (see refreshAhead); a token that lost its answer is looked up again.
func (p *pluginContext) hitDueForRefresh(h *httpContext, lk cache.LocalKey, e *cache.LocalEntry, t time.Time) types.Action {
	refresh, ok := p.refreshAhead(h, lk, e, t)
	if !ok {
		return p.lookup(h, lk, t)
	}
	p.metrics.cacheHits.inc()
	return p.admitThenRefresh(h, e, t, refresh)
}

// admitThenRefresh admits h, then starts the refresh it took (nil: none):
// after the request's own host calls, as a host may wake the plugin's
// context at once and leave it current (the SDK's emulator does). If
// admitting panics, the request's recovery ends the refresh (h.refresh).
func (p *pluginContext) admitThenRefresh(h *httpContext, e *cache.LocalEntry, t time.Time, refresh *flight) types.Action {
	h.refresh = refresh
	action := h.admitted(h.admit(e, t))
	if refresh != nil {
		h.refresh = nil
		p.startRefresh(refresh)
	}
	return action
}

// lookup finds the answer for h's token past this VM's copy of the cache:
// in a flight of this VM, in the shared cache, or from a new call.
func (p *pluginContext) lookup(h *httpContext, lk cache.LocalKey, t time.Time) types.Action {
	h.keepToken()
	cfg := p.cfg
	hash := h.tokenHash()
	if f := p.flights[hash]; f != nil {
		f.waiters = append(f.waiters, h)
		h.flight = f
		p.metrics.coalesced.inc()
		p.metrics.waited.inc()
		return types.ActionPause
	}
	f := &flight{hash: hash, keys: cache.Keys(p.table, hash, cfg.CacheMaxEntries), token: h.token, local: lk, cfg: h.cfg}
	step, a, rec := p.look(f, t, cache.NewRequest)
	switch step {
	case cache.Serve:
		e := p.entry(a, rec)
		p.local.Put(f.local, e)
		p.metrics.cacheHits.inc()
		if rec.RefreshDue(t) && p.lease(f, rec, nil, 0, t) {
			return p.admitThenRefresh(h, &e, t, f)
		}
		return h.admitted(h.admit(&e, t))
	case cache.ServeStale:
		p.metrics.cacheHits.inc()
		e := p.entry(a, rec)
		e.Stale = true
		p.logStale("the last introspection call for the token failed")
		return h.admitted(h.admit(&e, t))
	case cache.Refuse:
		p.metrics.cacheHits.inc()
		return h.respond(reply.InvalidToken, "token is not active (cached verdict)")
	}
	p.metrics.cacheMisses.inc()
	if step == refused {
		if a, e, ok := p.staleEntry(f.stale, t, "max_in_flight introspections under way in this worker"); ok {
			return h.admitted(h.finish(a, &e, t))
		}
		return h.respond(reply.Overloaded, "max_in_flight introspections under way in this worker")
	}
	return p.start(h, f, step)
}

// refreshAhead is the check of a hit in the last part of its entry's
// lifetime (refresh_ahead); this worker checks a token at most once per
// refreshRetry. It reads the token's record: while it is the answer the
// worker holds, it takes the refresh lease (see lease); when another
// worker's refresh replaced it, the worker keeps the new answer. When the
// token has no live answer any more (a refresh found it inactive, or it was
// displaced), the worker's copy goes and ok is false: the request looks
// again. refresh is the flight of a lease taken, whose call the caller
// queues (see lease).
func (p *pluginContext) refreshAhead(h *httpContext, lk cache.LocalKey, e *cache.LocalEntry, t time.Time) (refresh *flight, ok bool) {
	p.local.Postpone(lk, t.Add(refreshRetry))
	hash := h.tokenHash()
	if p.flights[hash] != nil { // a call for the token is under way here
		return nil, true
	}
	f := &flight{hash: hash, keys: cache.Keys(p.table, hash, p.cfg.CacheMaxEntries), token: strings.Clone(h.token), local: lk, cfg: h.cfg}
	step, _, raw, cas, rec, read := p.read(f, t, cache.NewRequest)
	switch {
	case !read, step == cache.Wait:
		return nil, true
	case step != cache.Serve:
		p.local.Delete(lk)
		return nil, false
	case rec.Expires.After(e.Expires):
		if a, ok := fromCache(rec.JWT); ok {
			p.local.Put(lk, p.entry(a, rec))
		}
		return nil, true
	}
	if p.lease(f, rec, raw, cas, t) {
		return f, true
	}
	return nil, true
}

// refreshRetry is how often a worker checks a token whose entry is due for
// a refresh that another worker makes, or that could not start.
const refreshRetry = time.Second

// lease makes f the refresh of the token's answer rec, found at t, when
// this VM has room for a call: it writes the lease (a Pending record beside
// the answer, see cache.Lease) with the compare-and-swap of the set read
// (raw nil: read again), so that one worker of all refreshes the token. The
// caller starts the call (startRefresh).
func (p *pluginContext) lease(f *flight, rec cache.Record, raw []byte, cas uint32, t time.Time) bool {
	if p.calls >= p.cfg.MaxInFlight || p.flights[f.hash] != nil {
		return false
	}
	f.claimed = p.updateSet(f.key, raw, cas, func(set []cache.Record) ([]cache.Record, bool) {
		return cache.Lease(set, f.hash, rec.Expires, t, t.Add(cache.PendingFor(f.cfg.Timeout)))
	})
	if !f.claimed {
		return false
	}
	f.refresh = true
	p.flights[f.hash] = f
	p.metrics.refreshStarted.inc()
	return true
}

// startRefresh queues the call of refresh f (see admitThenRefresh). A
// refresh that cannot start is ended and its lease released; it never
// panics, so the request's outcome stands whatever happens here.
func (p *pluginContext) startRefresh(f *flight) {
	defer func() {
		if r := recover(); r != nil {
			abi.LogCritical("phantom-token: panic while starting a refresh: " + panicText(r))
			p.abandon(f)
		}
	}()
	if a, ok := p.queueCall(f); !ok {
		p.settle(f, a, nil)
	}
}

// staleEntry is what a request gets in place of a failed call: the token's
// stale answer rec, while it may still be served at t. why the call failed
// is logged, at most once a second per worker.
func (p *pluginContext) staleEntry(rec cache.Record, t time.Time, why string) (introspection.Answer, cache.LocalEntry, bool) {
	if !rec.StandsIn(t) {
		return introspection.Answer{}, cache.LocalEntry{}, false
	}
	a, ok := fromCache(rec.JWT)
	if !ok {
		return a, cache.LocalEntry{}, false
	}
	e := p.entry(a, rec)
	e.Stale = true
	p.logStale(why)
	return a, e, true
}

// logStale logs that requests are served stale, at most once a second.
func (p *pluginContext) logStale(why string) {
	if m := monotonic(); p.staleLogged == 0 || m-p.staleLogged >= time.Second {
		p.staleLogged = m
		abi.LogWarn("phantom-token: serving a stale answer: " + why)
	}
}

// refused is the step of a request that would call when this VM already has
// max_in_flight introspections under way: it is answered 503 having written
// nothing to the cache.
const refused cache.Step = -1

// admitted marks a request let through from its header callback.
func (h *httpContext) admitted(a types.Action) types.Action {
	if a == types.ActionContinue {
		h.done = true
	}
	return a
}

// start makes h wait on the new flight f: for another VM's call (Wait), or
// for a call of this VM's (the caller checked max_in_flight).
func (p *pluginContext) start(h *httpContext, f *flight, step cache.Step) types.Action {
	f.waiters, h.flight = []*httpContext{h}, f
	p.metrics.waited.inc()
	if f.key != "" {
		p.flights[f.hash] = f
	}
	// Read here, with the flight in place: never on a hit, and a panic of
	// the read abandons the flight and its claim.
	f.trace = h.traceContext()
	if step == cache.Wait {
		f.state, f.since = watching, monotonic()
		p.metrics.coalesced.inc()
		p.updateTick()
		return types.ActionPause
	}
	if a, ok := p.queueCall(f); !ok {
		// Still in h's header callback: h is answered, or admitted with a
		// stale answer, by what it returns.
		f.waiters = nil
		p.end(f)
		a, e := p.substitute(f, a)
		return h.admitted(h.finish(a, e, now()))
	}
	if h.resumed { // served already: the host woke the plugin at once (the SDK's emulator does)
		return types.ActionContinue
	}
	return types.ActionPause
}

// queueCall has the plugin make f's call from its own context: the SDK
// delivers an answer only to the context that made the call, and a request's
// context can end before its answer comes, when the other requests still need
// it. A call that cannot be queued is not made: its claim is released, and
// the caller settles f with a (503, or a stale answer).
func (p *pluginContext) queueCall(f *flight) (a introspection.Answer, ok bool) {
	f.state = queued
	p.calls++
	p.queued = append(p.queued, f)
	if err := enqueue(p.queue, wakeup); err != nil {
		p.queued = p.queued[:len(p.queued)-1]
		p.release(f)
		return introspection.Answer{Outcome: introspection.Unavailable, Transient: true,
			Reason: "cannot queue the introspection call: " + err.Error()}, false
	}
	// Queued: the host wakes the plugin (at once, re-entrantly, in the
	// emulator).
	return a, true
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
	if len(f.waiters) == 0 && !f.refresh {
		p.end(f)
		p.release(f)
		return
	}
	headers, body := introspection.Request(f.cfg, f.token, f.trace)
	f.state, f.since = calling, monotonic()
	_, err := dispatchCall(f.cfg.Cluster, headers, body, nil, uint32(f.cfg.Timeout.Milliseconds()),
		func(numHeaders, bodySize, _ int) { p.onAnswer(f, numHeaders, bodySize) })
	if err != nil {
		p.release(f)
		p.settle(f, introspection.Answer{Outcome: introspection.BadGateway, Transient: true,
			Reason: "cannot dispatch the introspection call to cluster " + f.cfg.Cluster + ": " + err.Error()}, nil)
	}
}

// onAnswer receives the identity server's answer for f. It comes to the
// plugin's context, whether or not the requests that needed it are still
// there: the answer fills the cache either way.
func (p *pluginContext) onAnswer(f *flight, numHeaders, bodySize int) {
	defer func() {
		if r := recover(); r != nil {
			abi.LogCritical("phantom-token: panic on the introspection answer: " + panicText(r))
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
		body, _ = callBody(0, min(bodySize, introspection.BodyLimit(f.cfg)))
	}
	t := now()
	answer := introspection.Classify(f.cfg, headers, body, t)
	p.metrics.call(answer.Status)
	if err := recordMetric(p.metrics.latency, uint64(max((monotonic()-f.since).Milliseconds(), 0))); err != nil {
		abi.LogWarn("phantom-token: cannot record the introspection latency: " + err.Error())
	}
	var e *cache.LocalEntry
	rec, _ := cache.ToStore(f.hash, answer, t, p.policy(), true)
	if answer.Outcome == introspection.Active {
		entry := p.entry(answer, rec)
		e = &entry
	}
	if f.key != "" {
		p.store(f, answer, t)
		p.release(f) // a claim the answer could not replace: nobody waits on it
		switch {
		case e != nil && answer.CacheTTL > 0:
			// Kept by this worker even where the table had no place for it.
			p.local.Put(f.local, *e)
		case answer.Outcome == introspection.Inactive:
			p.local.Delete(f.local)
		}
	}
	if f.refresh {
		p.metrics.refreshed(answer)
	}
	p.settle(f, answer, e)
	letCollectorRun() // an answer is where the filter allocates most
}

// settle ends f with answer a, given to every request still waiting on it.
// e is what an active answer gives a request (nil: made here).
func (p *pluginContext) settle(f *flight, a introspection.Answer, e *cache.LocalEntry) {
	p.end(f)
	if len(f.waiters) > 0 {
		a, e = p.substitute(f, a)
	}
	var t time.Time
	if a.Outcome == introspection.Active {
		if e == nil {
			entry := p.entry(a, cache.Record{})
			e = &entry
		}
		t = now()
	}
	// A waiter leaves the list only once served, so that after a panic the
	// recovery (abandon) can still answer the rest.
	for len(f.waiters) > 0 {
		w := f.waiters[0]
		if !w.done && setEffective(w.id) == nil {
			if w.finish(a, e, t) == types.ActionContinue {
				if err := resume(); err != nil {
					abi.LogError("phantom-token: cannot resume the request: " + err.Error())
				}
				w.done, w.resumed = true, true
			}
		}
		f.waiters = f.waiters[1:]
	}
	p.updateTick()
}

// substitute is what f's requests get for a, when f's call failed for a
// reason that is not the identity server's verdict: the token's stale answer,
// while it may be served; else a itself (e nil).
func (p *pluginContext) substitute(f *flight, a introspection.Answer) (introspection.Answer, *cache.LocalEntry) {
	if a.Transient && f.stale.Kind == cache.Active {
		if sa, se, ok := p.staleEntry(f.stale, now(), a.Reason); ok {
			return sa, &se
		}
	}
	return a, nil
}

// end takes f out of the flight table; its call, if any, is no longer awaited.
func (p *pluginContext) end(f *flight) {
	if f.state == over {
		return
	}
	if f.state == queued || f.state == calling {
		p.calls--
	}
	f.state = over
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
			abi.LogCritical("phantom-token: panic while abandoning a flight: " + panicText(r))
		}
	}()
	p.answerAll(f, reply.ServerError, "internal error")
}

// answerAll ends f and answers every request still waiting on it with k.
func (p *pluginContext) answerAll(f *flight, k reply.Kind, why string) {
	p.end(f)
	for len(f.waiters) > 0 {
		w := f.waiters[0]
		f.waiters = f.waiters[1:]
		if !w.done && setEffective(w.id) == nil {
			w.respond(k, why)
		}
		w.done = true
	}
	p.release(f)
	p.updateTick()
}

// leaveRecovering is leave for a request's stream end, where a panic is
// logged and goes no further.
func (p *pluginContext) leaveRecovering(h *httpContext) {
	defer func() {
		if r := recover(); r != nil {
			abi.LogCritical("phantom-token: panic at stream end: " + panicText(r))
		}
	}()
	p.leave(h)
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
func (p *pluginContext) poll(f *flight, t time.Time, mono time.Duration) {
	who := cache.Waiter
	if mono-f.since >= cache.PendingFor(f.cfg.Timeout) {
		who = cache.WaitOver
	}
	step, a, rec := p.look(f, t, who)
	switch step {
	case cache.Wait:
	case cache.Serve:
		e := p.entry(a, rec)
		p.local.Put(f.local, e)
		p.settle(f, a, &e)
	case cache.ServeStale:
		e := p.entry(a, rec)
		e.Stale = true
		p.logStale("another worker's introspection call for the token failed")
		p.settle(f, a, &e)
	case cache.Refuse:
		p.settle(f, introspection.Answer{Outcome: introspection.Inactive, Reason: "token is not active (cached verdict)"}, nil)
	case cache.Deliver:
		p.settle(f, a, nil)
	case refused:
		p.answerAll(f, reply.Overloaded, "max_in_flight introspections under way in this worker")
	default:
		if a, ok := p.queueCall(f); !ok {
			p.settle(f, a, nil)
		}
	}
}

// claimAttempts bounds the compare-and-swap retries on one set.
const claimAttempts = 3

// updateSet is the one read-compare-and-swap of the cache: it applies change
// to the set at key and writes the result with the CAS of what it read, and
// reads again when another VM wrote in between, at most claimAttempts times.
// raw and cas are a value already read (raw nil: read first). change returns
// false to write nothing. It reports whether a write was made.
func (p *pluginContext) updateSet(key string, raw []byte, cas uint32, change func(set []cache.Record) ([]cache.Record, bool)) bool {
	for range claimAttempts {
		if raw == nil {
			var err error
			if raw, cas, err = getShared(key); err != nil {
				return false
			}
		}
		set, ok := change(cache.Decode(raw))
		if !ok {
			return false
		}
		err := setShared(key, cache.Encode(set), cas)
		if err == nil {
			return true
		}
		if !errors.Is(err, types.ErrorStatusCasMismatch) {
			abi.LogWarn("phantom-token: cannot write the cache: " + err.Error())
			return false
		}
		raw = nil // another VM wrote the set in between: read again
	}
	return false
}

// look reads the token's sets and decides what f's requests do (see
// cache.Lookup): the first set, and the second only when the first holds no
// record of the token's. A Call step has written its Pending claim
// (f.claimed), unless this VM already has max_in_flight calls under way: then
// the step is refused and nothing is written. A record that cannot be used (a
// JWT that does not parse) counts as absent. For Serve, ServeStale and
// Deliver, a is the answer found and rec its record. For a call, the token's
// stale answer, if any, is kept in f.stale. A flight that waits on another
// VM's claim (f.key set) reads only that set.
func (p *pluginContext) look(f *flight, t time.Time, who cache.Asker) (step cache.Step, a introspection.Answer, rec cache.Record) {
	for range claimAttempts {
		raw, cas, ok := []byte(nil), uint32(0), false
		if step, _, raw, cas, rec, ok = p.read(f, t, who); !ok {
			step, rec = cache.CallUnclaimed, cache.Record{} // no set to claim in (see createSets)
		}
		switch step {
		case cache.Serve, cache.ServeStale:
			if a, ok := fromCache(rec.JWT); ok {
				return step, a, rec
			}
			// unreadable: as absent, and its place is the token's own
			step, rec = cache.Call, cache.Record{}
		case cache.Deliver:
			a = introspection.Answer{Outcome: rec.Settled(), Reason: "answer of another worker's call"}
			if a.Outcome != introspection.Active {
				return step, a, rec
			}
			if a, ok := fromCache(rec.JWT); ok {
				return step, a, rec
			}
			step, rec = cache.Call, cache.Record{}
		case cache.Refuse:
			p.updateSet(f.key, raw, cas, func(set []cache.Record) ([]cache.Record, bool) { return cache.MarkSeen(set, f.hash, t) })
			return step, a, rec
		case cache.Wait:
			return step, a, rec
		}
		f.stale = rec // the token's stale answer, or none
		if p.calls >= p.cfg.MaxInFlight {
			return refused, a, rec
		}
		if step == cache.CallUnclaimed {
			return step, a, rec
		}
		var evicted, changed bool
		f.claimed = p.updateSet(f.key, raw, cas, func(set []cache.Record) ([]cache.Record, bool) {
			// Another VM may have written a record of the token's since read:
			// then look again.
			if s, r := cache.Next(set, f.hash, t, who); s == cache.Wait || s == cache.Refuse || s == cache.Deliver ||
				s == cache.ServeStale || s == cache.Serve && r.Expires != rec.Expires {
				changed = true
				return nil, false
			}
			out, ev, ok := cache.Claim(set, f.hash, t, t.Add(cache.PendingFor(f.cfg.Timeout)))
			evicted = ev
			return out, ok
		})
		if changed {
			continue
		}
		if f.claimed && evicted {
			p.metrics.evictions.inc()
		}
		if !f.claimed {
			return cache.CallUnclaimed, a, rec
		}
		return cache.Call, a, rec
	}
	if p.calls >= p.cfg.MaxInFlight {
		return refused, a, rec
	}
	return cache.CallUnclaimed, a, rec
}

// read reads the set look decides on, sets f.key to it and returns the step
// cache.Lookup gives with its record, the set as DecodeFor reads it (only
// the token's own JWT copied) and its raw value, for a writer to decode
// whole. ok is false when a set cannot be read.
func (p *pluginContext) read(f *flight, t time.Time, who cache.Asker) (step cache.Step, set []cache.Record, raw []byte, cas uint32, rec cache.Record, ok bool) {
	if f.key != "" && who != cache.NewRequest { // a waiter: the set of the claim it waits on
		raw, cas, err := getShared(f.key)
		if err != nil {
			return 0, nil, nil, 0, rec, false
		}
		set = cache.DecodeFor(raw, f.hash)
		step, rec = cache.Next(set, f.hash, t, who)
		return step, set, raw, cas, rec, true
	}
	f.key = f.keys[0]
	raw, cas, err := getShared(f.keys[0])
	if err != nil {
		return 0, nil, nil, 0, rec, false
	}
	set = cache.DecodeFor(raw, f.hash)
	if step, rec = cache.Next(set, f.hash, t, who); cache.Here(step, rec) || f.keys[1] == f.keys[0] {
		return step, set, raw, cas, rec, true
	}
	raw2, cas2, err := getShared(f.keys[1])
	if err != nil {
		return step, set, raw, cas, rec, true // the first set alone
	}
	second := cache.DecodeFor(raw2, f.hash)
	which, step, rec := cache.Lookup(set, second, f.hash, t, who)
	if which == 1 {
		f.key, set, raw, cas = f.keys[1], second, raw2, cas2
	}
	return step, set, raw, cas, rec, true
}

// store writes what f's answer leaves in the set (see cache.ToStore).
func (p *pluginContext) store(f *flight, a introspection.Answer, t time.Time) {
	rec, ok := cache.ToStore(f.hash, a, t, p.policy(), f.claimed)
	if !ok {
		return
	}
	evicted := false
	if p.updateSet(f.key, nil, 0, func(set []cache.Record) ([]cache.Record, bool) {
		out, ev, ok := cache.Store(set, rec, t)
		evicted = ev
		return out, ok
	}) {
		f.claimed = false
		if evicted {
			p.metrics.evictions.inc()
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
	p.updateSet(f.key, nil, 0, func(set []cache.Record) ([]cache.Record, bool) { return cache.Release(set, f.hash) })
}

// entry is what an active answer gives the requests it admits, ready to
// keep in this VM's copy of the cache as its record rec says (until its
// expiry, refreshed from its refresh time): the upstream value and the claim
// headers' values, made once.
func (p *pluginContext) entry(a introspection.Answer, rec cache.Record) cache.LocalEntry {
	return cache.LocalEntry{Claims: a.Claims, Upstream: bearerPrefix + a.JWT,
		Headers: claims.FromJWT(a.JWT, p.cfg.ClaimPaths), Expires: rec.Expires, RefreshAt: rec.RefreshAt}
}

// policy is what the configuration says of the records answers leave.
func (p *pluginContext) policy() cache.Policy {
	return cache.Policy{NegativeTTL: p.cfg.CacheNegativeTTL, RefreshAhead: p.cfg.RefreshAhead}
}

const bearerPrefix = "Bearer "

// fromCache turns a stored JWT into an active answer.
func fromCache(jwtText string) (introspection.Answer, bool) {
	claims, err := jwt.Parse(jwtText)
	return introspection.Answer{Outcome: introspection.Active, JWT: jwtText, Claims: claims}, err == nil
}
