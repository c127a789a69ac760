package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/phantom-token/envoy-phantom-token/internal/cache"
	"github.com/phantom-token/envoy-phantom-token/internal/config"
)

// slot is a token's record in its cache set, as another VM of the same plugin
// sees it. The test writes it directly through the emulated host, playing
// that other VM.
type slot struct {
	t    *testing.T
	key  string // the first of the token's sets, where the filter looks first
	keys [2]string
	hash cache.TokenHash
}

func slotOf(t *testing.T, cfgJSON, tok string) slot {
	c, err := config.Parse([]byte(cfgJSON), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := cache.Hash(c.CacheNamespace, tok)
	keys := cache.Keys(firstTable, h, c.CacheMaxEntries)
	return slot{t: t, key: keys[0], keys: keys, hash: h}
}

// write puts r (for this slot's token) into the set, as another VM would.
func (s slot) write(r cache.Record) {
	s.t.Helper()
	r.Hash = s.hash
	raw, cas, _ := proxywasm.GetSharedData(s.key)
	set, _, ok := cache.Put(cache.Decode(raw), r, longAgo)
	if !ok {
		s.t.Fatal("no place in the set")
	}
	if err := proxywasm.SetSharedData(s.key, cache.Encode(set), cas); err != nil {
		s.t.Fatal(err)
	}
}

// writeRaw replaces the whole set.
func (s slot) writeRaw(raw []byte) {
	_, cas, _ := proxywasm.GetSharedData(s.key)
	if err := proxywasm.SetSharedData(s.key, raw, cas); err != nil {
		s.t.Fatal(err)
	}
}

// read finds the token's record in either of its sets as of long ago, so that
// records written under the wasm runner's fake clock count as unexpired.
func (s slot) read() cache.Record {
	for _, k := range s.keys {
		raw, _, _ := proxywasm.GetSharedData(k)
		if r := cache.Find(cache.Decode(raw), s.hash, longAgo); r.Kind != cache.None {
			r.JWT = strings.Clone(r.JWT)
			return r
		}
	}
	return cache.Record{}
}

var longAgo = time.Unix(1, 0)

// farFuture is unexpired for both clocks: the real one and the fake one that
// proxytest's wasm runner gives the module.
var farFuture = time.Now().Add(time.Hour)

func (h *host) rootCallouts() []proxytest.HttpCalloutAttribute {
	return h.GetCalloutAttributesFromContext(proxytest.PluginContextID)
}

// stat reads an Envoy counter after a tick has flushed the VM's counts.
func stat(t *testing.T, h *host, name string) uint64 {
	t.Helper()
	h.Tick()
	v, err := h.GetCounterMetric("phantom_token." + name)
	if err != nil {
		t.Fatalf("counter %s: %v", name, err)
	}
	return v
}

// settledState checks, at the end of a coalescing test, that no flight is
// left (Go mode: the plugin's table) and that the tick is back to its slow
// period (both modes).
func settledState(t *testing.T, h *host, m mode) {
	t.Helper()
	if m.native && lastPlugin != nil {
		if n := len(lastPlugin.flights); n != 0 || lastPlugin.calls != 0 || len(lastPlugin.queued) != 0 {
			t.Errorf("flights left: %d in the table, %d calls counted, %d queued", n, lastPlugin.calls, len(lastPlugin.queued))
		}
	}
	if p := h.GetTickPeriod(); p != flushPeriod {
		t.Errorf("tick period %d ms, want %d", p, flushPeriod)
	}
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
			if n := stat(t, h, "cache.coalesced"); n != 2 {
				t.Errorf("coalesced = %d, want 2", n)
			}
			settledState(t, h, m)
		})
		t.Run("waiters share an error", func(t *testing.T) {
			h := started(t, m, withConfig(""))
			first := h.request(req(authBearer(token))...)
			second := h.request(req(authBearer(token))...)
			first.answer(status(503), "")
			wantReply(t, first, 503, "", serverErrorBody)
			wantReply(t, second, 503, "", serverErrorBody)
			settledState(t, h, m)
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
			settledState(t, h, m)
		})
		t.Run("the call outlives the request that made it", func(t *testing.T) {
			h := started(t, m, withConfig(""))
			caller := h.request(req(authBearer(token))...)
			waiter := h.request(req(authBearer(token))...)
			h.CompleteHttpContext(caller.id)
			h.Tick()
			if n := len(h.rootCallouts()); n != 1 {
				t.Fatalf("%d calls, want the first one only", n)
			}
			caller.answer(idsOK(""), jwt)
			wantForwarded(t, waiter, req(authBearer(token)), "authorization", "Bearer "+jwt)
			if e := h.request(req(authBearer(token))...); len(e.callouts()) != 0 || e.local() != nil {
				t.Error("the answer was not cached")
			}
			settledState(t, h, m)
		})
		t.Run("the last request leaving: the answer still fills the cache", func(t *testing.T) {
			h := started(t, m, withConfig(""))
			caller := h.request(req(authBearer(token))...)
			h.CompleteHttpContext(caller.id)
			caller.answer(idsOK(""), jwt)
			if e := h.request(req(authBearer(token))...); len(e.callouts()) != 0 || e.local() != nil {
				t.Error("the answer was not cached")
			}
			settledState(t, h, m)
		})
		t.Run("no sharing when the cache is off", func(t *testing.T) {
			h := started(t, m, withConfig(`,"cache":false`))
			a, b := h.request(req(authBearer(token))...), h.request(req(authBearer(token))...)
			if len(a.callouts()) != 1 || len(b.callouts()) != 1 {
				t.Errorf("calls %d and %d, want one each", len(a.callouts()), len(b.callouts()))
			}
			a.answer(idsOK(""), jwt)
			b.answer(status(204), "")
			wantForwarded(t, a, req(authBearer(token)), "authorization", "Bearer "+jwt)
			wantReply(t, b, 401, `Bearer realm="api", error="invalid_token"`, unauthorizedBody)
			settledState(t, h, m)
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
				t.Fatalf("record during the call: %v", got.Kind)
			}
			e.answer(idsOK(""), jwt)
			if got := s.read(); got.Kind != cache.Active || got.JWT != jwt {
				t.Fatalf("record after the call: %v", got.Kind)
			}
			settledState(t, h, m)
		})
		t.Run("an answer that may not be cached is settled for the waiters of other VMs", func(t *testing.T) {
			h := started(t, m, cfg)
			s := slotOf(t, cfg, token)
			h.request(req(authBearer(token))...).answer(status(204), "")
			if got := s.read(); got.Kind != cache.Settled || got.Outcome != cache.OutcomeInactive {
				t.Fatalf("record: %v %d", got.Kind, got.Outcome)
			}
			// New requests do not take a settled answer: they call.
			e := h.request(req(authBearer(token))...)
			if len(e.callouts()) != 1 {
				t.Fatal("a new request used a settled answer")
			}
			e.answer(status(204), "")
			settledState(t, h, m)
		})
		t.Run("a Settled record carrying an active answer serves the waiters", func(t *testing.T) {
			h := started(t, m, cfg)
			s := slotOf(t, cfg, token)
			s.write(cache.Record{Kind: cache.Pending, Expires: farFuture})
			e := h.request(req(authBearer(token))...)
			s.write(cache.Record{Kind: cache.Settled, Outcome: cache.OutcomeActive, Expires: farFuture, JWT: jwt})
			h.Tick()
			wantForwarded(t, e, req(authBearer(token)), "authorization", "Bearer "+jwt)
			if len(h.rootCallouts()) != 0 {
				t.Error("called although the other VM answered")
			}
			settledState(t, h, m)
		})
		t.Run("a request waits for another VM's call and takes its answer", func(t *testing.T) {
			h := started(t, m, cfg)
			s := slotOf(t, cfg, token)
			s.write(cache.Record{Kind: cache.Pending, Expires: farFuture})
			e := h.request(req(authBearer(token))...)
			if e.action != types.ActionPause || len(e.callouts()) != 0 {
				t.Fatalf("did not wait: %v, %d calls", e.action, len(e.callouts()))
			}
			if h.GetTickPeriod() != tickPeriod {
				t.Fatal("waits without the fast tick")
			}
			h.Tick() // still pending
			if e.finalAction() != types.ActionPause || len(h.rootCallouts()) != 0 {
				t.Fatal("stopped waiting while the other VM was still calling")
			}
			s.write(cache.Record{Kind: cache.Active, Expires: farFuture, JWT: jwt})
			h.Tick()
			wantForwarded(t, e, req(authBearer(token)), "authorization", "Bearer "+jwt)
			if len(h.rootCallouts()) != 0 {
				t.Error("called although the other VM answered")
			}
			settledState(t, h, m)
		})
		t.Run("another VM's settled error reaches the waiters", func(t *testing.T) {
			h := started(t, m, cfg)
			s := slotOf(t, cfg, token)
			s.write(cache.Record{Kind: cache.Pending, Expires: farFuture})
			e := h.request(req(authBearer(token))...)
			s.write(cache.Record{Kind: cache.Settled, Expires: farFuture, Outcome: cache.OutcomeInactive})
			h.Tick()
			wantReply(t, e, 401, `Bearer realm="api", error="invalid_token"`, unauthorizedBody)
			settledState(t, h, m)
		})
		t.Run("the wait is bounded: an expired Pending record means calling", func(t *testing.T) {
			h := started(t, m, cfg)
			s := slotOf(t, cfg, token)
			s.write(cache.Record{Kind: cache.Pending, Expires: farFuture})
			e := h.request(req(authBearer(token))...)
			s.write(cache.Record{Kind: cache.Pending, Expires: time.Unix(1000, 0)}) // the other VM's deadline passed
			h.Tick()
			c := h.rootCallouts()
			if len(c) != 1 {
				t.Fatalf("%d calls after the deadline, want 1", len(c))
			}
			h.CallOnHttpCallResponse(c[0].CalloutID, idsOK(""), nil, []byte(jwt))
			wantForwarded(t, e, req(authBearer(token)), "authorization", "Bearer "+jwt)
			settledState(t, h, m)
		})
		t.Run("a shared hit still checks the required scopes", func(t *testing.T) {
			cfg := withConfig(`,"required_scopes":"write"`)
			h := started(t, m, cfg)
			s := slotOf(t, cfg, token)
			s.write(cache.Record{Kind: cache.Active, Expires: farFuture, JWT: phantomJWT(`"scope":"read"`)})
			e := h.request(req(authBearer(token))...)
			if len(e.callouts()) != 0 {
				t.Fatal("called although the answer is cached")
			}
			wantReply(t, e, 403, `Bearer realm="api", scope="write", error="insufficient_scope"`, forbiddenBody)
			settledState(t, h, m)
		})
		t.Run("a record that cannot be used is absent: one call, no wait", func(t *testing.T) {
			for name, write := range map[string]func(s slot){
				"an active JWT that does not parse": func(s slot) {
					s.write(cache.Record{Kind: cache.Active, Expires: farFuture, JWT: "not-a-jwt"})
				},
				"a record of another format": func(s slot) { s.writeRaw([]byte("v1 record\x00\x01")) },
				"a settled outcome of another version": func(s slot) {
					rec := cache.Encode([]cache.Record{{Kind: cache.Settled, Outcome: 99, Hash: s.hash, Expires: farFuture}})
					s.writeRaw(rec)
				},
			} {
				t.Run(name, func(t *testing.T) {
					h := started(t, m, cfg)
					s := slotOf(t, cfg, token)
					write(s)
					e := h.request(req(authBearer(token))...)
					if len(e.callouts()) != 1 {
						t.Fatalf("%d calls, want 1 (action %v, tick %d)", len(e.callouts()), e.action, h.GetTickPeriod())
					}
					e.answer(idsOK(""), jwt)
					wantForwarded(t, e, req(authBearer(token)), "authorization", "Bearer "+jwt)
					if got := s.read(); got.Kind != cache.Active || got.JWT != jwt {
						t.Errorf("record after the call: %v", got.Kind)
					}
					settledState(t, h, m)
				})
			}
		})
	})
}

// A miss never evicts a live answer: a flood of new tokens at a full table
// costs calls, never the hits of the tokens already cached.
func TestMissesNeverEvictLiveAnswers(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		for _, negative := range []string{"", `,"cache_negative_ttl":"10s"`} {
			t.Run("negative cache "+strconv.FormatBool(negative != ""), func(t *testing.T) {
				cfg := withConfig(`,"cache_max_entries":3` + negative) // one set of four places
				h := started(t, m, cfg)
				valid := []string{}
				for i := range cache.Ways {
					tok := fmt.Sprintf("%s-valid-%d", token, i)
					valid = append(valid, tok)
					h.request(req(authBearer(tok))...).answer(idsOK(""), phantomJWT(""))
				}
				for i := range 200 {
					e := h.request(req(authBearer(fmt.Sprintf("%s-junk-%d", token, i)))...)
					if len(e.callouts()) != 1 {
						t.Fatalf("junk %d: %d calls", i, len(e.callouts()))
					}
					e.answer(status(204), "")
				}
				for _, tok := range valid {
					s := slotOf(t, cfg, tok)
					if got := s.read(); got.Kind != cache.Active {
						t.Errorf("a valid token's answer was evicted: %v", got.Kind)
					}
				}
				// A new VM (no copy of its own) still hits every valid token.
				lastPlugin.local = cache.NewLocal(4) // Go mode; in wasm mode the local copy serves them
				for _, tok := range valid {
					if e := h.request(req(authBearer(tok))...); len(e.callouts()) != 0 || e.local() != nil {
						t.Errorf("a valid token missed after the flood")
					}
				}
				if n := stat(t, h, "cache.evictions"); n != 0 {
					t.Errorf("evictions = %d, want 0", n)
				}
				settledState(t, h, m)
			})
		}
	})
}

func TestNegativeCache(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		t.Run("off by default: every replay calls", func(t *testing.T) {
			h := started(t, m, withConfig(""))
			for range 3 {
				e := h.request(req(authBearer(token))...)
				if len(e.callouts()) != 1 {
					t.Fatal("a replayed invalid token was not introspected")
				}
				e.answer(status(204), "")
				wantReply(t, e, 401, `Bearer realm="api", error="invalid_token"`, unauthorizedBody)
			}
		})
		t.Run("on: one call, then the verdict until its TTL", func(t *testing.T) {
			cfg := withConfig(`,"cache_negative_ttl":"10s"`)
			h := started(t, m, cfg)
			h.request(req(authBearer(token))...).answer(status(204), "")
			for range 3 {
				e := h.request(req(authBearer(token))...)
				if len(e.callouts()) != 0 {
					t.Fatal("a cached inactive verdict was not used")
				}
				wantReply(t, e, 401, `Bearer realm="api", error="invalid_token"`, unauthorizedBody)
			}
			if got := slotOf(t, cfg, token).read(); got.Kind != cache.Inactive {
				t.Errorf("record %v", got.Kind)
			}
			settledState(t, h, m)
		})
	})
}

func TestMaxInFlight(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		h := started(t, m, withConfig(`,"max_in_flight":2`))
		a := h.request(req(authBearer(token + "-a"))...)
		b := h.request(req(authBearer(token + "-b"))...)
		joined := h.request(req(authBearer(token + "-a"))...) // joins a: no new call
		over := h.request(req(authBearer(token + "-c"))...)
		if len(over.callouts()) != 0 || over.local() == nil || over.local().StatusCode != 503 {
			t.Fatalf("beyond the bound: %d calls, reply %v", len(over.callouts()), over.local())
		}
		if got := header(over.local().Headers, "retry-after"); len(got) != 1 || got[0] != "1" {
			t.Errorf("Retry-After = %q", got)
		}
		if joined.local() != nil {
			t.Error("a request joining a flight was refused")
		}
		a.answer(idsOK(""), phantomJWT(""))
		b.answer(status(204), "")
		// A place is free again.
		c := h.request(req(authBearer(token + "-c"))...)
		if len(c.callouts()) != 1 {
			t.Fatal("the bound did not free its place")
		}
		c.answer(status(204), "")
		settledState(t, h, m)
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
			if got := stat(t, h, name); got != want {
				t.Errorf("%s = %d, want %d", name, got, want)
			}
		}
		if _, err := h.GetHistogramMetric("phantom_token.introspection.latency_ms"); err != nil {
			t.Errorf("latency histogram: %v", err)
		}
		settledState(t, h, m)
	})
}

// An eviction is counted only when a live cached verdict of another token is
// replaced: with the negative cache, a full set gives up an inactive verdict
// for a new token's answer.
func TestEvictionIsCounted(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		cfg := withConfig(`,"cache_max_entries":3,"cache_negative_ttl":"10s"`) // one set of four places
		h := started(t, m, cfg)
		for i := range cache.Ways {
			h.request(req(authBearer(fmt.Sprintf("%s-bad-%d", token, i)))...).answer(status(204), "")
		}
		if n := stat(t, h, "cache.evictions"); n != 0 {
			t.Fatalf("evictions = %d before the set was full", n)
		}
		h.request(req(authBearer(token))...).answer(idsOK(""), phantomJWT(""))
		if n := stat(t, h, "cache.evictions"); n != 1 {
			t.Errorf("evictions = %d, want 1", n)
		}
		if got := slotOf(t, cfg, token).read(); got.Kind != cache.Active {
			t.Errorf("the new answer was not stored: %v", got.Kind)
		}
		settledState(t, h, m)
	})
}

// Every set exists from the start, so that claims are compare-and-swap
// writes (shared data takes a write with CAS 0 unconditionally, and a missing
// key has no other CAS).
func TestSetsExistFromTheStart(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		cfg := withConfig(`,"cache_max_entries":32`)
		started(t, m, cfg)
		sets := cache.Sets(32)
		for i := range sets {
			if _, _, err := proxywasm.GetSharedData(cache.SetKey(firstTable, uint64(i))); err != nil {
				t.Errorf("set %d: %v", i, err)
			}
		}
		if _, _, err := proxywasm.GetSharedData(cache.SetKey(firstTable, uint64(sets))); err == nil {
			t.Error("a set beyond the budget exists")
		}
	})
}

// errHost is what a failing host call returns in the fault tests.
var errHost = errors.New("injected host failure")

// A cached inactive verdict is never served beyond its TTL (moves the clock:
// Go mode).
func TestNegativeCacheNeverBeyondItsTTL(t *testing.T) {
	m := modes[0]
	clock := time.Now()
	setClock(t, func() time.Time { return clock })
	h := started(t, m, withConfig(`,"cache_negative_ttl":"10s"`))
	h.request(req(authBearer(token))...).answer(status(204), "")
	clock = clock.Add(10 * time.Second)
	e := h.request(req(authBearer(token))...)
	if len(e.callouts()) != 1 {
		t.Fatal("an expired inactive verdict was served")
	}
	e.answer(idsOK(""), phantomJWT(""))
	wantForwarded(t, e, req(authBearer(token)), "authorization", "Bearer "+phantomJWT(""))
}

// TestAHitsContextIsReusedOnlyOnce: a hit's context is reused once its
// stream ends, and only then. Were it reused while its stream went on, or
// ended twice, a request that took it over would be ended with the hit's
// stream, and would never get its answer.
func TestAHitsContextIsReusedOnlyOnce(t *testing.T) {
	const other, third = "opaque-other-4f1b", "opaque-third-9c2e"
	forEachMode(t, func(t *testing.T, m mode) {
		h := started(t, m, withConfig(""))
		first := h.request(req(authBearer(token))...)
		first.answer(idsOK(""), phantomJWT(""))
		hits := []*exchange{h.request(req(authBearer(token))...), h.request(req(authBearer(token))...)}
		for _, e := range hits {
			if e.action != types.ActionContinue || len(e.callouts()) != 0 {
				t.Fatalf("not a hit: %v, %d calls", e.action, len(e.callouts()))
			}
		}
		// Two requests that wait, in the contexts the hits had; then the
		// hits' streams end.
		b := h.request(req(authBearer(other))...)
		d := h.request(req(authBearer(third))...)
		for _, e := range hits {
			h.CompleteHttpContext(e.id)
		}
		jb, jd := phantomJWT(`"sub":"bob"`), phantomJWT(`"sub":"dora"`)
		b.answer(idsOK(""), jb)
		d.answer(idsOK(""), jd)
		wantForwarded(t, b, req(authBearer(other)), "authorization", "Bearer "+jb)
		wantForwarded(t, d, req(authBearer(third)), "authorization", "Bearer "+jd)
		for _, e := range []*exchange{b, d} {
			h.CompleteHttpContext(e.id)
		}
		settledState(t, h, m)
	})
}
