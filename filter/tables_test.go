package main

import (
	"bytes"
	"log"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/phantom-token/envoy-phantom-token/internal/cache"
	"github.com/phantom-token/envoy-phantom-token/internal/config"
	"github.com/phantom-token/envoy-phantom-token/internal/tables"
)

// firstTable is the table the first plugin of a fresh host gets.
var firstTable = tables.ID(0)

// sharedData is shared data carried from one emulated host to the next, as
// Envoy keeps it for the vm_id across plugins.
type sharedData map[string][]byte

// onHost runs f with plugin cfg started on a host whose shared data starts as
// in, and returns the keys of shared data among keys as f left them. The
// host is released before onHost returns, so that another can start.
func onHost(t *testing.T, m mode, cfg string, in sharedData, keys []string, f func(h *host)) sharedData {
	t.Helper()
	buf := &bytes.Buffer{}
	log.SetOutput(buf)
	defer log.SetOutput(os.Stderr)
	opt := proxytest.NewEmulatorOption().WithVMContext(m.vm(t)).WithPluginConfiguration([]byte(cfg))
	emu, reset := proxytest.NewHostEmulator(opt)
	defer reset()
	for k, v := range in {
		if err := proxywasm.SetSharedData(k, v, 0); err != nil {
			t.Fatal(err)
		}
	}
	emu.StartVM()
	h := &host{HostEmulator: emu, t: t, stdlog: buf}
	if st := emu.StartPlugin(); st != types.OnPluginStartStatusOK {
		t.Fatalf("plugin did not start: %q", h.allLogs())
	}
	f(h)
	out := sharedData{}
	for _, k := range keys {
		if v, _, err := proxywasm.GetSharedData(k); err == nil {
			out[k] = v
		}
	}
	return out
}

// tableKeys are the registry and every set of tables 0 to 2 up to sets.
func tableKeys(sets int) []string {
	keys := []string{tables.Key}
	for n := range uint32(3) {
		for i := range sets {
			keys = append(keys, cache.SetKey(tables.ID(n), uint64(i)))
		}
	}
	return keys
}

func namespaceOf(t *testing.T, cfg string) string {
	t.Helper()
	c, err := config.Parse([]byte(cfg), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c.CacheNamespace
}

func registryOf(t *testing.T, raw []byte) tables.Registry {
	t.Helper()
	r, ok := tables.Decode(raw)
	if !ok {
		t.Fatalf("the registry does not decode: %x", raw)
	}
	return r
}

func logged(h *host, s string) bool {
	for _, line := range h.allLogs() {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// After plugin A is done (OnPluginDone), plugin B of another namespace
// reuses A's table number, and finds it empty: every set A had, including
// those beyond B's smaller size.
func TestTableReusedAfterPluginDone(t *testing.T) {
	cfgA := withConfig(`,"cache_max_entries":64`)
	cfgB := withConfig(`,"cache_max_entries":32,"cache_max_ttl":"60s"`)
	setsA, setsB := cache.Sets(64), cache.Sets(32)
	forEachMode(t, func(t *testing.T, m mode) {
		keys := tableKeys(setsA)
		var cachedKey string
		shared := onHost(t, m, cfgA, nil, keys, func(h *host) {
			e := h.request(req(authBearer(token))...)
			e.answer(idsOK(""), phantomJWT(""))
			cachedKey = cache.Keys(firstTable, cache.Hash(namespaceOf(t, cfgA), token), 64)[0]
			if raw, _, _ := proxywasm.GetSharedData(cachedKey); len(raw) == 0 {
				t.Fatal("A's answer is not in its table")
			}
			if !h.FinishVM() {
				t.Error("OnPluginDone returned false")
			}
			if !logged(h, "phantom-token: done") || !logged(h, "released cache table t0") {
				t.Errorf("no release logged: %q", h.allLogs())
			}
		})
		r := registryOf(t, shared[tables.Key])
		if len(r.Tables) != 1 || r.Tables[0].Namespace != namespaceOf(t, cfgA) || len(r.Tables[0].Holders) != 0 {
			t.Fatalf("after A is done the registry holds %+v", r)
		}
		// Fill every set of A's table, as a busy A would have.
		for i := range setsA {
			shared[cache.SetKey(firstTable, uint64(i))] = []byte("records of A")
		}

		shared = onHost(t, m, cfgB, shared, keys, func(h *host) {
			e := h.request(req(authBearer(token))...)
			if len(e.callouts()) != 1 {
				t.Errorf("B was served from A's table: %d callouts", len(e.callouts()))
			}
			e.answer(idsOK(""), phantomJWT(""))
		})
		r = registryOf(t, shared[tables.Key])
		if len(r.Tables) != 1 || r.Tables[0].Number != 0 || r.Tables[0].Namespace != namespaceOf(t, cfgB) || r.Tables[0].Sets != uint32(setsB) {
			t.Fatalf("B did not take table 0: %+v", r)
		}
		keyB := cache.Keys(firstTable, cache.Hash(namespaceOf(t, cfgB), token), 32)[0]
		for i := range setsA {
			k := cache.SetKey(firstTable, uint64(i))
			v, ok := shared[k]
			switch {
			case !ok:
				t.Errorf("set %d does not exist", i)
			case k == keyB:
				if got := cache.Find(cache.Decode(v), cache.Hash(namespaceOf(t, cfgB), token), longAgo); got.Kind != cache.Active {
					t.Errorf("B's answer is not in its set: %v", got.Kind)
				}
			case len(v) != 0:
				t.Errorf("set %d still holds %q", i, v)
			}
		}
	})
}

// A plugin whose lease ran out without OnPluginDone (the canary VM Envoy
// destroys) leaves a table that the next plugin takes over, empty.
func TestTableOfAnExpiredLeaseTakenOverEmpty(t *testing.T) {
	m := modes[0] // the registry's lease ends are on the real clock
	cfg := withConfig(`,"cache_max_entries":16`)
	stale := tables.Encode(tables.Registry{Tables: []tables.Table{{
		Number: 0, Namespace: "0123456789abcdef", Sets: 10, Extent: 10,
		Holders: []tables.Holder{{ID: 1, Expires: time.Now().Add(-time.Second)}},
	}}})
	in := sharedData{tables.Key: stale}
	for i := range 10 {
		in[cache.SetKey(firstTable, uint64(i))] = []byte("records of another configuration")
	}
	out := onHost(t, m, cfg, in, tableKeys(10), func(*host) {})
	r := registryOf(t, out[tables.Key])
	if len(r.Tables) != 1 || r.Tables[0].Namespace != namespaceOf(t, cfg) {
		t.Fatalf("registry %+v", r)
	}
	for i := range 10 {
		if v := out[cache.SetKey(firstTable, uint64(i))]; len(v) != 0 {
			t.Errorf("set %d still holds %q", i, v)
		}
	}
}

// A table whose holders' leases ended while the plugin runs is emptied by its
// ticks, DrainChunk sets per visit, and its number becomes free.
func TestAbandonedTableEmptiedWithinTheBound(t *testing.T) {
	m := modes[0] // moves the clock
	clock := time.Now()
	setClock(t, func() time.Time { return clock })
	const extent = 2*tables.DrainChunk + 88
	other := tables.Table{Number: 0, Namespace: "0123456789abcdef", Sets: extent, Extent: extent,
		Holders: []tables.Holder{{ID: 1, Expires: clock.Add(5 * time.Second)}}}
	in := sharedData{tables.Key: tables.Encode(tables.Registry{Tables: []tables.Table{other}})}
	for i := range extent {
		in[cache.SetKey(firstTable, uint64(i))] = []byte("records")
	}
	cfg := withConfig(`,"cache_max_entries":16`)
	onHost(t, m, cfg, in, nil, func(h *host) {
		r := registryOf(t, sharedValue(t, tables.Key))
		if len(r.Tables) != 2 || r.Tables[1].Number != 1 || r.Tables[1].Namespace != namespaceOf(t, cfg) {
			t.Fatalf("the plugin took a held table: %+v", r)
		}
		emptied := func() int {
			n := 0
			for i := range extent {
				if len(sharedValue(t, cache.SetKey(firstTable, uint64(i)))) == 0 {
					n++
				}
			}
			return n
		}
		h.Tick() // still held: nothing emptied
		if n := emptied(); n != 0 {
			t.Fatalf("%d sets of a held table emptied", n)
		}
		clock = clock.Add(6 * time.Second) // the lease ran out
		for visit := 1; visit <= 3; visit++ {
			h.Tick()
			h.Tick() // within visitPeriod: no second visit
			want := min(visit*tables.DrainChunk, extent)
			if n := emptied(); n != want {
				t.Fatalf("after %d visits %d sets are empty, want %d", visit, n, want)
			}
			clock = clock.Add(visitPeriod)
		}
		r = registryOf(t, sharedValue(t, tables.Key))
		if r.Tables[0].Namespace != "" || len(r.Tables[0].Holders) != 0 {
			t.Errorf("table 0 is not free: %+v", r.Tables[0])
		}
	})
}

func sharedValue(t *testing.T, key string) []byte {
	t.Helper()
	v, _, err := proxywasm.GetSharedData(key)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return v
}

// The plugin renews its lease on its first tick, then every RenewEvery.
func TestLeaseRenewedOnTick(t *testing.T) {
	m := modes[0] // moves the clock
	start := time.Now().Truncate(time.Millisecond)
	clock := start
	setClock(t, func() time.Time { return clock })
	onHost(t, m, withConfig(""), nil, nil, func(h *host) {
		lease := func() time.Time {
			r := registryOf(t, sharedValue(t, tables.Key))
			if len(r.Tables) != 1 || len(r.Tables[0].Holders) != 1 {
				t.Fatalf("registry %+v", r)
			}
			return r.Tables[0].Holders[0].Expires
		}
		if got := lease(); !got.Equal(start.Add(tables.StartLease)) {
			t.Errorf("first lease ends at %v, want start + %v", got.Sub(start), tables.StartLease)
		}
		for _, step := range []struct {
			at   time.Duration
			ends time.Duration
		}{
			{time.Second, time.Second + tables.Lease},
			{5 * time.Second, time.Second + tables.Lease},
			{11 * time.Second, 11*time.Second + tables.Lease},
		} {
			clock = start.Add(step.at)
			h.Tick()
			if got := lease(); !got.Equal(start.Add(step.ends)) {
				t.Errorf("at %v the lease ends at %v, want %v", step.at, got.Sub(start), step.ends)
			}
		}
	})
}

// Without a usable registry the plugin still caches, in a table named after
// its namespace, and says so; an unreadable registry is started afresh.
func TestRegistryFailures(t *testing.T) {
	m := modes[0] // faults are injected into the Go code
	cfg := withConfig("")
	ns := namespaceOf(t, cfg)
	failOn := func(key string) func() {
		oldGet, oldSet := getShared, setShared
		getShared = func(k string) ([]byte, uint32, error) {
			if k == key {
				return nil, 0, errHost
			}
			return oldGet(k)
		}
		setShared = func(k string, v []byte, cas uint32) error {
			if k == key {
				return errHost
			}
			return oldSet(k, v, cas)
		}
		return func() { getShared, setShared = oldGet, oldSet }
	}
	tests := []struct {
		name  string
		in    sharedData
		fail  bool
		table string
		warn  string
	}{
		{"the registry cannot be read or written: the namespace's table", nil, true, ns, "no table in the cache table registry"},
		{"an unreadable registry is started afresh", sharedData{tables.Key: []byte("garbage")}, false, firstTable, "registry is unreadable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fail {
				defer failOn(tables.Key)()
			}
			onHost(t, m, cfg, tt.in, nil, func(h *host) {
				if !logged(h, tt.warn) {
					t.Errorf("no warning %q: %q", tt.warn, h.allLogs())
				}
				e := h.request(req(authBearer(token))...)
				e.answer(idsOK(""), phantomJWT(""))
				key := cache.Keys(tt.table, cache.Hash(ns, token), config.DefaultCacheMaxEntries)[0]
				raw, _, err := proxywasm.GetSharedData(key)
				if err != nil || cache.Find(cache.Decode(raw), cache.Hash(ns, token), longAgo).Kind != cache.Active {
					t.Errorf("the answer is not cached under %q", key)
				}
				if e2 := h.request(req(authBearer(token))...); len(e2.callouts()) != 0 || e2.finalAction() != types.ActionContinue {
					t.Error("the second request was not served from the cache")
				}
				h.Tick() // visits the registry, which may fail again: nothing breaks
				if !h.FinishVM() {
					t.Error("OnPluginDone returned false")
				}
			})
		})
	}
}

// capturingVM is the Go-mode VM, keeping the plugin context it makes.
type capturingVM struct {
	vmContext
	plugin *pluginContext
}

func (v *capturingVM) NewPluginContext(id uint32) types.PluginContext {
	p := v.vmContext.NewPluginContext(id)
	v.plugin = p.(*pluginContext)
	return p
}

// OnPluginDone drops the worker's copy of the cache: Envoy was seen to keep
// replaced plugins' memory in the VM.
func TestPluginDoneDropsTheWorkersCopy(t *testing.T) {
	vm := &capturingVM{}
	m := mode{name: "go", vm: func(*testing.T) types.VMContext { return vm }, native: true}
	onHost(t, m, withConfig(""), nil, nil, func(h *host) {
		h.request(req(authBearer(token))...).answer(idsOK(""), phantomJWT(""))
		if vm.plugin.local.Len() != 1 {
			t.Fatalf("the worker's copy holds %d entries before done", vm.plugin.local.Len())
		}
		h.FinishVM()
		if n := vm.plugin.local.Len(); n != 0 {
			t.Errorf("the worker's copy holds %d entries after done", n)
		}
	})
}
