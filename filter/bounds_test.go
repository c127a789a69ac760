package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/phantom-token/envoy-phantom-token/internal/cache"
	"github.com/phantom-token/envoy-phantom-token/internal/config"
)

// setMonotonic replaces the filter's monotonic clock (Go mode only).
func setMonotonic(t *testing.T, f func() time.Duration) {
	old := monotonic
	monotonic = f
	t.Cleanup(func() { monotonic = old })
}

// sharedSnapshot is every set of the configuration's table, as bytes.
func sharedSnapshot(t *testing.T, cfgJSON string) map[string]string {
	t.Helper()
	c, err := config.Parse([]byte(cfgJSON), nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for n := range cache.Sets(c.CacheMaxEntries) {
		k := cache.SetKey(c.CacheNamespace, uint64(n))
		raw, _, _ := proxywasm.GetSharedData(k)
		out[k] = string(raw)
	}
	return out
}

// Without its shared queue a VM would make calls from requests' contexts,
// whose answers are lost when those requests go: it does not start.
func TestPluginStartFailsWithoutAQueue(t *testing.T) {
	old := registerQueue
	registerQueue = func(string) (uint32, error) { return 0, errHost }
	defer func() { registerQueue = old }()
	h, st := startHost(t, modes[0], withConfig(""))
	if st != types.OnPluginStartStatusFailed {
		t.Fatalf("started without a queue: %v", st)
	}
	if !strings.Contains(strings.Join(h.allLogs(), "\n"), "cannot register the shared queue") {
		t.Errorf("no log line names the queue: %q", h.allLogs())
	}
}

// A call that cannot be queued is not made: its request gets 503 and its
// claim goes, so that other VMs do not wait for it.
func TestUnqueuedCallAnswers503(t *testing.T) {
	cfg := withConfig("")
	h := started(t, modes[0], cfg)
	old := enqueue
	enqueue = func(uint32, []byte) error { return errHost }
	defer func() { enqueue = old }()
	e := h.request(req(authBearer(token))...)
	if len(e.callouts()) != 0 || e.local() == nil || e.local().StatusCode != 503 {
		t.Fatalf("%d calls, reply %v", len(e.callouts()), e.local())
	}
	if got := slotOf(t, cfg, token).read(); got.Kind != cache.None {
		t.Errorf("the claim was left in the set: %v", got.Kind)
	}
	settledState(t, h, modes[0])
}

// A request waiting on another VM's call waits at most as long as a call may
// take, on the monotonic clock: a wall clock stepped back an hour does not
// make it wait an hour longer.
func TestWaitsAreBoundedOnTheMonotonicClock(t *testing.T) {
	cfg := withConfig("") // timeout 3s
	wall, mono := time.Now(), time.Duration(0)
	setClock(t, func() time.Time { return wall })
	setMonotonic(t, func() time.Duration { return mono })
	h := started(t, modes[0], cfg)
	s := slotOf(t, cfg, token)
	s.write(cache.Record{Kind: cache.Pending, Expires: wall.Add(4 * time.Second)}) // another VM calls
	e := h.request(req(authBearer(token))...)
	if len(e.callouts()) != 0 || e.action != types.ActionPause {
		t.Fatal("did not wait for the other VM")
	}
	wall = wall.Add(-time.Hour) // the wall clock steps back: the claim looks live for an hour more
	mono += cache.PendingFor(3*time.Second) - time.Millisecond
	h.Tick()
	if len(h.rootCallouts()) != 0 {
		t.Fatal("called before the wait's bound")
	}
	mono += time.Millisecond
	h.Tick()
	calls := h.rootCallouts()
	if len(calls) != 1 {
		t.Fatalf("%d calls once the bound passed, want 1", len(calls))
	}
	h.CallOnHttpCallResponse(calls[0].CalloutID, idsOK(""), nil, []byte(phantomJWT("")))
	wantForwarded(t, e, req(authBearer(token)), "authorization", "Bearer "+phantomJWT(""))
	settledState(t, h, modes[0])
}

// max_in_flight counts this VM's own calls: a request waiting on another VM's
// call takes none of them, and a request refused at the bound writes nothing
// to shared data.
func TestMaxInFlightCountsOwnCalls(t *testing.T) {
	cfg := withConfig(`,"max_in_flight":1`)
	h := started(t, modes[0], cfg)
	slotOf(t, cfg, token+"-elsewhere").write(cache.Record{Kind: cache.Pending, Expires: farFuture})
	waiting := h.request(req(authBearer(token + "-elsewhere"))...) // waits on another VM
	own := h.request(req(authBearer(token + "-a"))...)
	if len(waiting.callouts()) != 0 || len(own.callouts()) != 1 {
		t.Fatalf("a wait on another VM took the only place: %d and %d calls", len(waiting.callouts()), len(own.callouts()))
	}
	before := sharedSnapshot(t, cfg)
	writes := 0
	old := setShared
	setShared = func(k string, v []byte, cas uint32) error { writes++; return old(k, v, cas) }
	defer func() { setShared = old }()
	over := h.request(req(authBearer(token + "-b"))...)
	if over.local() == nil || over.local().StatusCode != 503 {
		t.Fatalf("beyond the bound: %v", over.local())
	}
	if after := sharedSnapshot(t, cfg); writes != 0 || len(after) != len(before) {
		t.Errorf("a refused request wrote to shared data: %d writes", writes)
	} else {
		for k, v := range before {
			if after[k] != v {
				t.Errorf("set %s changed", k)
			}
		}
	}
	setShared = old
	own.answer(idsOK(""), phantomJWT(""))
	slotOf(t, cfg, token+"-elsewhere").write(cache.Record{Kind: cache.Active, Expires: farFuture, JWT: phantomJWT("")})
	h.Tick()
	wantForwarded(t, waiting, req(authBearer(token+"-elsewhere")), "authorization", "Bearer "+phantomJWT(""))
	settledState(t, h, modes[0])
}

// A token that finds its first set full of live answers is looked for, and
// placed, in its second.
func TestSecondSetTakesWhatTheFirstCannot(t *testing.T) {
	cfg := withConfig(`,"cache_max_entries":40`)
	forEachMode(t, func(t *testing.T, m mode) {
		h := started(t, m, cfg)
		s := slotOf(t, cfg, token)
		// Fill the token's first set with other tokens' live answers.
		raw, cas, _ := proxywasm.GetSharedData(s.keys[0])
		set := cache.Decode(raw)
		for i := 0; len(set) < cache.Ways; i++ {
			set = append(set, cache.Record{Kind: cache.Active, Hash: cache.Hash("other", strings.Repeat("x", i+1)), Expires: farFuture, JWT: phantomJWT("")})
		}
		if err := proxywasm.SetSharedData(s.keys[0], cache.Encode(set), cas); err != nil {
			t.Fatal(err)
		}
		h.request(req(authBearer(token))...).answer(idsOK(""), phantomJWT(""))
		raw, _, _ = proxywasm.GetSharedData(s.keys[1])
		if got := cache.Find(cache.Decode(raw), s.hash, longAgo); got.Kind != cache.Active {
			t.Fatalf("the answer is not in the second set: %v", got.Kind)
		}
		raw, _, _ = proxywasm.GetSharedData(s.keys[0])
		if n := len(cache.Decode(raw)); n != cache.Ways {
			t.Errorf("the first set changed: %d records", n)
		}
		settledState(t, h, m)
	})
}

var _ = errors.New
