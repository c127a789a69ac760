package main

import (
	"testing"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/phantom-token/envoy-phantom-token/internal/cache"
	"github.com/phantom-token/envoy-phantom-token/internal/config"
	"github.com/phantom-token/envoy-phantom-token/internal/introspection"
)

// slot is the shared-data slot of a token under a configuration, as another
// VM of the same plugin sees it. The test writes it directly through the
// emulated host, playing that other VM.
type slot struct {
	t    *testing.T
	key  string
	hash cache.TokenHash
}

func slotOf(t *testing.T, cfgJSON, tok string) slot {
	c, err := config.Parse([]byte(cfgJSON), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := cache.Hash(c.CacheNamespace, tok)
	return slot{t: t, key: cache.Key(c.CacheNamespace, h, c.CacheMaxEntries), hash: h}
}

func (s slot) write(e cache.Entry) {
	_, cas, _ := proxywasm.GetSharedData(s.key)
	if err := proxywasm.SetSharedData(s.key, cache.Encode(s.hash, e), cas); err != nil {
		s.t.Fatal(err)
	}
}

// read decodes the slot as of long ago, so that records written under the
// wasm runner's fake clock count as unexpired.
func (s slot) read() cache.Entry {
	rec, _, _ := proxywasm.GetSharedData(s.key)
	return cache.Decode(rec, s.hash, time.Unix(1, 0))
}

// farFuture is unexpired for both clocks: the real one and the fake one that
// proxytest's wasm runner gives the module.
var farFuture = time.Now().Add(time.Hour)

func (h *host) rootCallouts() []proxytest.HttpCalloutAttribute {
	return h.GetCalloutAttributesFromContext(proxytest.PluginContextID)
}

func counter(t *testing.T, h *host, name string) uint64 {
	t.Helper()
	v, err := h.GetCounterMetric("phantom_token." + name)
	if err != nil {
		t.Fatalf("counter %s: %v", name, err)
	}
	return v
}

func TestOneCallPerTokenWithinAVM(t *testing.T) {
	jwt := phantomJWT("")
	forEachMode(t, func(t *testing.T, m mode) {
		t.Run("waiters share the answer", func(t *testing.T) {
			h := started(t, m, withConfig(""))
			first := h.request(req(authBearer(token))...)
			waiters := []*exchange{h.request(req(authBearer(token))...), h.request(req(authBearer(token))...)}
			for _, w := range waiters {
				if w.action != types.ActionPause || len(w.callouts()) != 0 {
					t.Fatalf("a waiter made its own call or went on: %v %d", w.action, len(w.callouts()))
				}
			}
			first.answer(idsOK(""), jwt)
			for _, e := range append(waiters, first) {
				wantForwarded(t, e, req(authBearer(token)), "authorization", "Bearer "+jwt)
			}
			if n := counter(t, h, "cache.coalesced"); n != 2 {
				t.Errorf("coalesced = %d, want 2", n)
			}
		})
		t.Run("waiters share an error", func(t *testing.T) {
			h := started(t, m, withConfig(""))
			first := h.request(req(authBearer(token))...)
			second := h.request(req(authBearer(token))...)
			first.answer(status(503), "")
			wantReply(t, first, 503, "", serverErrorBody)
			wantReply(t, second, 503, "", serverErrorBody)
		})
		t.Run("a waiter that goes away is forgotten", func(t *testing.T) {
			h := started(t, m, withConfig(""))
			first := h.request(req(authBearer(token))...)
			gone := h.request(req(authBearer(token))...)
			h.CompleteHttpContext(gone.id)
			first.answer(idsOK(""), jwt)
			wantForwarded(t, first, req(authBearer(token)), "authorization", "Bearer "+jwt)
			if gone.local() != nil {
				t.Errorf("answered a request that went away: %d", gone.local().StatusCode)
			}
		})
		t.Run("when the caller goes away the others get a call of their own", func(t *testing.T) {
			h := started(t, m, withConfig(""))
			caller := h.request(req(authBearer(token))...)
			waiter := h.request(req(authBearer(token))...)
			h.CompleteHttpContext(caller.id)
			if len(h.rootCallouts()) != 0 {
				t.Fatal("called before the tick")
			}
			h.Tick()
			c := h.rootCallouts()
			if len(c) != 1 || string(c[0].Body) != "token="+token {
				t.Fatalf("after the tick: %d calls from the plugin", len(c))
			}
			h.CallOnHttpCallResponse(c[0].CalloutID, idsOK(""), nil, []byte(jwt))
			wantForwarded(t, waiter, req(authBearer(token)), "authorization", "Bearer "+jwt)
			// The answer was cached: the next request is a hit.
			if e := h.request(req(authBearer(token))...); len(e.callouts()) != 0 || e.local() != nil {
				t.Error("the plugin's answer was not cached")
			}
		})
		t.Run("no sharing when the cache is off", func(t *testing.T) {
			h := started(t, m, withConfig(`,"cache":false`))
			a, b := h.request(req(authBearer(token))...), h.request(req(authBearer(token))...)
			if len(a.callouts()) != 1 || len(b.callouts()) != 1 {
				t.Errorf("calls %d and %d, want one each", len(a.callouts()), len(b.callouts()))
			}
		})
	})
}

func TestOneCallPerTokenAcrossVMs(t *testing.T) {
	jwt := phantomJWT("")
	cfg := withConfig("")
	forEachMode(t, func(t *testing.T, m mode) {
		t.Run("the caller leaves a Pending record, then the answer", func(t *testing.T) {
			h := started(t, m, cfg)
			s := slotOf(t, cfg, token)
			e := h.request(req(authBearer(token))...)
			if got := s.read(); got.Kind != cache.Pending {
				t.Fatalf("slot during the call: %+v", got)
			}
			e.answer(idsOK(""), jwt)
			if got := s.read(); got.Kind != cache.Active || got.JWT != jwt {
				t.Fatalf("slot after the call: %+v", got)
			}
		})
		t.Run("an answer that may not be cached is settled for the waiters of other VMs", func(t *testing.T) {
			h := started(t, m, cfg)
			s := slotOf(t, cfg, token)
			h.request(req(authBearer(token))...).answer(status(204), "")
			if got := s.read(); got.Kind != cache.Settled || introspection.Outcome(got.Outcome) != introspection.Inactive {
				t.Fatalf("slot: %+v", got)
			}
			// New requests do not take a settled answer: they call.
			if e := h.request(req(authBearer(token))...); len(e.callouts()) != 1 {
				t.Error("a new request used a settled answer")
			}
		})
		t.Run("a request waits for another VM's call and takes its answer", func(t *testing.T) {
			h := started(t, m, cfg)
			s := slotOf(t, cfg, token)
			s.write(cache.Entry{Kind: cache.Pending, Expires: farFuture})
			e := h.request(req(authBearer(token))...)
			if e.action != types.ActionPause || len(e.callouts()) != 0 {
				t.Fatalf("did not wait: %v, %d calls", e.action, len(e.callouts()))
			}
			h.Tick() // still pending
			if e.finalAction() != types.ActionPause || len(h.rootCallouts()) != 0 {
				t.Fatal("stopped waiting while the other VM was still calling")
			}
			s.write(cache.Entry{Kind: cache.Active, Expires: farFuture, JWT: jwt})
			h.Tick()
			wantForwarded(t, e, req(authBearer(token)), "authorization", "Bearer "+jwt)
			if len(h.rootCallouts()) != 0 {
				t.Error("called although the other VM answered")
			}
		})
		t.Run("another VM's settled error reaches the waiters", func(t *testing.T) {
			h := started(t, m, cfg)
			s := slotOf(t, cfg, token)
			s.write(cache.Entry{Kind: cache.Pending, Expires: farFuture})
			e := h.request(req(authBearer(token))...)
			s.write(cache.Entry{Kind: cache.Settled, Expires: farFuture, Outcome: byte(introspection.Inactive)})
			h.Tick()
			wantReply(t, e, 401, `Bearer realm="api", error="invalid_token"`, unauthorizedBody)
		})
		t.Run("the wait is bounded: an expired Pending record means calling", func(t *testing.T) {
			h := started(t, m, cfg)
			s := slotOf(t, cfg, token)
			s.write(cache.Entry{Kind: cache.Pending, Expires: farFuture})
			e := h.request(req(authBearer(token))...)
			s.write(cache.Entry{Kind: cache.Pending, Expires: time.Unix(1000, 0)}) // the other VM's deadline passed
			h.Tick()
			c := h.rootCallouts()
			if len(c) != 1 {
				t.Fatalf("%d calls after the deadline, want 1", len(c))
			}
			h.CallOnHttpCallResponse(c[0].CalloutID, idsOK(""), nil, []byte(jwt))
			wantForwarded(t, e, req(authBearer(token)), "authorization", "Bearer "+jwt)
		})
	})
}

func TestMetrics(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		h := started(t, m, withConfig(`,"required_scopes":"read"`))
		jwt := phantomJWT(`"scope":"read"`)
		h.request(req(authBearer(token))...).answer(idsOK(""), jwt)                 // miss, 2xx, allowed
		h.request(req(authBearer(token))...)                                        // hit, allowed
		h.request(req()...)                                                         // 401
		h.request(req([2]string{"authorization", "Bearer a,Bearer b"})...)          // 400
		h.request(req(authBearer(token+"-b"))...).answer(idsOK(""), phantomJWT("")) // 403
		h.request(req(authBearer(token+"-c"))...).answer(status(500), "")           // 502
		h.request(req(authBearer(token+"-d"))...).answer(status(503), "")           // 503
		h.request(req(authBearer(token+"-e"))...).answer(status(429), "")           // 500
		h.request(req(authBearer(token+"-f"))...).answer(nil, "")                   // no response: 502
		h.request([2]string{":method", "OPTIONS"}, [2]string{"origin", "o"}, [2]string{"access-control-request-method", "GET"})
		for name, want := range map[string]uint64{
			"requests.allowed": 2, "requests.preflight": 1, "requests.400": 1, "requests.401": 1, "requests.403": 1,
			"requests.500": 1, "requests.502": 2, "requests.503": 1,
			"cache.hits": 1, "cache.misses": 6, "cache.coalesced": 0, "cache.evictions": 0,
			"introspection.2xx": 2, "introspection.4xx": 1, "introspection.5xx": 2, "introspection.failed": 1,
		} {
			if got := counter(t, h, name); got != want {
				t.Errorf("%s = %d, want %d", name, got, want)
			}
		}
		if _, err := h.GetHistogramMetric("phantom_token.introspection.latency_ms"); err != nil {
			t.Errorf("latency histogram: %v", err)
		}
	})
}

func TestEvictionIsCounted(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		h := started(t, m, withConfig(`,"cache_max_entries":1`)) // every token shares one slot
		h.request(req(authBearer(token+"-1"))...).answer(idsOK(""), phantomJWT(""))
		h.request(req(authBearer(token+"-2"))...).answer(idsOK(""), phantomJWT(""))
		if n := counter(t, h, "cache.evictions"); n != 1 {
			t.Errorf("evictions = %d, want 1", n)
		}
		// The first token's entry is gone; it is introspected again.
		if e := h.request(req(authBearer(token + "-1"))...); len(e.callouts()) != 1 {
			t.Error("evicted entry still served")
		}
	})
}

// Every slot exists from the start, so that claims are compare-and-swap
// writes (shared data takes a write with CAS 0 unconditionally, and a missing
// key has no other CAS).
func TestSlotsExistFromTheStart(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		cfg := withConfig(`,"cache_max_entries":8`)
		started(t, m, cfg)
		c, _ := config.Parse([]byte(cfg), nil)
		for i := range 8 {
			if _, _, err := proxywasm.GetSharedData(cache.SlotKey(c.CacheNamespace, uint64(i))); err != nil {
				t.Errorf("slot %d: %v", i, err)
			}
		}
		if _, _, err := proxywasm.GetSharedData(cache.SlotKey(c.CacheNamespace, 8)); err == nil {
			t.Error("a slot beyond the budget exists")
		}
	})
}
