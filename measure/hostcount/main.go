// Command hostcount runs the compiled filter under wazero with a counting
// proxy-wasm host and prints, per cache hit, the host calls the module makes
// (proxy_* and WASI) and the entries into its Go runtime (every callback the
// host makes, plus every proxy_on_memory_allocate it needs to return a value).
//
// The host answers only what a cache hit needs: the plugin configuration, an
// Authorization header, metrics, shared data (the token's record is put in
// its cache set beforehand, so the first request finds it there and the VM
// keeps a copy: every later request is a hit in the VM's copy), a shared
// queue and the tick (it calls proxy_on_tick every -tick-every requests).
// Every other import answers Ok. It drives each request
// as Envoy 1.40 does for a GET with no request body (the callbacks a
// debugstats build counts in Envoy): context create, request headers,
// response headers, response body twice, log, done, delete.
//
// With -routes N the plugin configuration has N route rules (measure/routeset)
// and the host answers proxy_get_property of xds.route_name with the route
// the second-to-last rule names: a cache hit on a named route.
//
// With a module built with -tags debugstats it also reads the module's
// debugstats lines (proxy_log) and prints allocations per request and GC
// cycles per 10k requests measured inside the VM.
//
//	make hostcount
//	cd measure && go run ./hostcount [-wasm ../build/phantom_token.wasm] [-requests 20000] [-routes 50]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/phantom-token/envoy-phantom-token/internal/cache"
	"github.com/phantom-token/envoy-phantom-token/internal/config"
	"github.com/phantom-token/envoy-phantom-token/internal/tables"
	"github.com/phantom-token/envoy-phantom-token/internal/testjwt"
	"github.com/phantom-token/envoy-phantom-token/measure/routeset"
	"github.com/phantom-token/envoy-phantom-token/measure/wasmfile"
)

var (
	wasmPath  = flag.String("wasm", "../build/phantom_token.wasm", "the compiled module")
	requests  = flag.Int("requests", 20_000, "cache hits counted, after 1,000 not counted")
	tickEvery = flag.Int("tick-every", 10_000, "requests between two proxy_on_tick of the plugin (Envoy ticks by time: at 10k req/s, a 1 s period is one tick in 10k)")
	funcs     = flag.Int("funcs", 0, "also count the calls of the module's own functions (wazero function listener; slow: use with -requests 2000) and print the N called most per request")
	routes    = flag.Int("routes", 0, "route rules in the configuration (measure/routeset), the requests on the route the second-to-last names; 0: none")
)

// proxy-wasm ABI 0.2.1 values used here.
const (
	statusOK       = 0
	statusNotFound = 1

	mapRequestHeaders = 0
	bufferPluginConf  = 7

	rootID = 1
)

const (
	token = "opaque-hostcount-2YotnFZFEjr1zCsicMW"
	// propRouteName is the property path of xds.route_name, serialised.
	propRouteName = "xds\x00route_name"
)

// configuration is the plugin configuration, with n route rules.
func configuration(n int) ([]byte, error) {
	c := map[string]any{"introspection_url": "https://ids.example/introspect", "cluster": "ids", "client_id": "gw",
		"client_secret": "s3cret", "timeout": "2s", "cache": true, "cache_max_entries": 10000}
	if n > 0 {
		c["routes"] = routeset.Rules(n)
	}
	return json.Marshal(c)
}

// host is the counting host's state.
type host struct {
	mod     api.Module
	alloc   api.Function
	calls   map[string]int // host calls by import name ("env.proxy_…", "wasi_snapshot_preview1.…")
	entries map[string]int // entries into the module by export name
	funcs   map[string]int // calls of the module's own functions by name (-funcs)
	shared  map[string][]byte
	cas     map[string]uint32
	logs    []string
	jwt     string
	conf    []byte
	route   string   // what proxy_get_property of xds.route_name answers; empty: not found
	memory  []uint32 // linear memory size after _initialize, proxy_on_configure, the requests
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	code, err := os.ReadFile(*wasmPath)
	if err != nil {
		return err
	}
	h := &host{calls: map[string]int{}, entries: map[string]int{}, funcs: map[string]int{}, shared: map[string][]byte{}, cas: map[string]uint32{}}
	if h.conf, err = configuration(*routes); err != nil {
		return err
	}
	if *routes > 0 {
		h.route = routeset.Target(*routes).Name
	}
	h.jwt = testjwt.Make(`{"sub":"alice","scope":"read","exp":` + strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10) + `}`)
	// The listener counts the WASI host functions the module calls.
	ctx := experimental.WithFunctionListenerFactory(context.Background(), h)
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r); err != nil {
		return err
	}
	compiled, err := r.CompileModule(ctx, code)
	if err != nil {
		return err
	}
	env := r.NewHostModuleBuilder("env")
	for _, f := range compiled.ImportedFunctions() {
		module, name, _ := f.Import()
		if module != "env" {
			continue
		}
		env.NewFunctionBuilder().WithGoModuleFunction(h.function(name, len(f.ResultTypes())), f.ParamTypes(), f.ResultTypes()).Export(name)
	}
	if _, err := env.Instantiate(ctx); err != nil {
		return err
	}
	h.mod, err = r.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithStartFunctions("_initialize").WithStdout(os.Stderr).WithStderr(os.Stderr))
	if err != nil {
		return err
	}
	h.alloc = h.mod.ExportedFunction("proxy_on_memory_allocate")
	h.memory = append(h.memory, h.mod.Memory().Size())

	if _, err := h.call(ctx, "proxy_on_context_create", rootID, 0); err != nil {
		return err
	}
	if _, err := h.call(ctx, "proxy_on_vm_start", rootID, 0); err != nil {
		return err
	}
	if res, err := h.call(ctx, "proxy_on_configure", rootID, uint64(len(h.conf))); err != nil || res[0] != 1 {
		return fmt.Errorf("proxy_on_configure: %v %v; logs: %s", res, err, strings.Join(h.logs, "\n"))
	}
	// After the start, which empties the sets of the table it takes.
	if err := h.seed(); err != nil {
		return err
	}

	h.memory = append(h.memory, h.mod.Memory().Size())
	id := uint64(rootID + 1)
	drive := func(n int) error {
		for range n {
			if err := h.request(ctx, id); err != nil {
				return err
			}
			if *tickEvery > 0 && id%uint64(*tickEvery) == 0 {
				if _, err := h.call(ctx, "proxy_on_tick", rootID); err != nil {
					return err
				}
			}
			id++
		}
		return nil
	}
	if err := drive(1000); err != nil {
		return err
	}
	clear(h.calls)
	clear(h.entries)
	clear(h.funcs)
	logs0 := len(h.logs)
	if err := drive(*requests); err != nil {
		return err
	}
	h.memory = append(h.memory, h.mod.Memory().Size())
	h.print(*requests, h.logs[logs0:])
	return nil
}

// seed puts the token's record in the cache set it belongs to, as another
// worker's answer would have: in table 0, the first plugin's (see
// internal/tables).
func (h *host) seed() error {
	cfg, err := config.Parse(h.conf, func(string) string { return "" })
	if err != nil {
		return err
	}
	hash := cache.Hash(cfg.CacheNamespace, token)
	key := cache.Keys(tables.ID(0), hash, cfg.CacheMaxEntries)[0]
	h.shared[key] = cache.Encode([]cache.Record{{Kind: cache.Active, Hash: hash, Expires: time.Now().Add(time.Hour), JWT: h.jwt}})
	h.cas[key] = 1
	return nil
}

// request is one GET through the filter, with the callbacks Envoy makes:
// those the module exports (Envoy skips the others).
func (h *host) request(ctx context.Context, id uint64) error {
	steps := []struct {
		name string
		args []uint64
	}{
		{"proxy_on_context_create", []uint64{id, rootID}},
		{"proxy_on_request_headers", []uint64{id, 5, 1}},
		{"proxy_on_response_headers", []uint64{id, 3, 0}},
		{"proxy_on_response_body", []uint64{id, 12, 0}},
		{"proxy_on_response_body", []uint64{id, 12, 1}},
		{"proxy_on_log", []uint64{id}},
		{"proxy_on_done", []uint64{id}},
		{"proxy_on_delete", []uint64{id}},
	}
	for _, s := range steps {
		if h.mod.ExportedFunction(s.name) == nil && s.name != "proxy_on_request_headers" {
			continue
		}
		res, err := h.call(ctx, s.name, s.args...)
		if err != nil {
			return fmt.Errorf("%s: %w; logs: %s", s.name, err, strings.Join(h.logs[max(len(h.logs)-5, 0):], "\n"))
		}
		if s.name == "proxy_on_request_headers" && res[0] != 0 {
			return fmt.Errorf("request %d: action %d, not Continue; logs: %s", id, res[0], strings.Join(h.logs[max(len(h.logs)-5, 0):], "\n"))
		}
	}
	return nil
}

func (h *host) call(ctx context.Context, name string, args ...uint64) ([]uint64, error) {
	f := h.mod.ExportedFunction(name)
	if f == nil {
		return nil, fmt.Errorf("the module does not export %s", name)
	}
	h.entries[name]++
	return f.Call(ctx, args...)
}

// NewFunctionListener implements experimental.FunctionListenerFactory: it
// counts calls to the WASI host functions.
func (h *host) NewFunctionListener(def api.FunctionDefinition) experimental.FunctionListener {
	switch {
	case def.ModuleName() == "wasi_snapshot_preview1":
		name := "wasi." + def.Name()
		return experimental.FunctionListenerFunc(func(context.Context, api.Module, api.FunctionDefinition, []uint64, experimental.StackIterator) {
			h.calls[name]++
		})
	case *funcs > 0 && def.ModuleName() != "env":
		name := def.Name()
		return experimental.FunctionListenerFunc(func(context.Context, api.Module, api.FunctionDefinition, []uint64, experimental.StackIterator) {
			h.funcs[name]++
		})
	}
	return nil
}

// function is the host's implementation of one env import.
func (h *host) function(name string, results int) api.GoModuleFunc {
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		h.calls[name]++
		status := h.do(ctx, mod, name, stack)
		if results > 0 {
			stack[0] = uint64(status)
		}
	}
}

func (h *host) do(ctx context.Context, mod api.Module, name string, stack []uint64) uint32 {
	// Every parameter used here is an i32: its slot's upper bits are not
	// defined.
	a := make([]uint64, len(stack))
	for i, v := range stack {
		a[i] = uint64(uint32(v))
	}
	mem := mod.Memory()
	str := func(ptr, size uint64) string {
		b, _ := mem.Read(uint32(ptr), uint32(size))
		return string(b)
	}
	u32 := func(ptr uint64, v uint32) { mem.WriteUint32Le(uint32(ptr), v) }
	switch name {
	case "proxy_log":
		h.logs = append(h.logs, str(a[1], a[2]))
	case "proxy_get_buffer_bytes":
		if a[0] == bufferPluginConf {
			return h.give(ctx, mem, h.conf, a[3], a[4])
		}
		return statusNotFound
	case "proxy_get_header_map_value":
		if a[0] == mapRequestHeaders && str(a[1], a[2]) == "authorization" {
			return h.give(ctx, mem, []byte("Bearer "+token), a[3], a[4])
		}
		return statusNotFound
	case "proxy_get_shared_data":
		v, ok := h.shared[str(a[0], a[1])]
		if !ok {
			return statusNotFound
		}
		u32(a[4], h.cas[str(a[0], a[1])])
		if len(v) == 0 {
			u32(a[2], 0)
			u32(a[3], 0)
			return statusOK
		}
		return h.give(ctx, mem, v, a[2], a[3])
	case "proxy_set_shared_data":
		k := str(a[0], a[1])
		h.shared[k] = []byte(str(a[2], a[3]))
		h.cas[k]++
	case "proxy_define_metric":
		u32(a[3], uint32(h.calls[name]))
	case "proxy_register_shared_queue":
		u32(a[2], 1)
	case "proxy_dequeue_shared_queue":
		return statusNotFound
	case "proxy_get_property":
		if h.route != "" && str(a[0], a[1]) == propRouteName {
			return h.give(ctx, mem, []byte(h.route), a[2], a[3])
		}
		return statusNotFound
	}
	return statusOK
}

// give copies v into memory the module allocates (proxy_on_memory_allocate,
// one more entry into its Go runtime) and writes its address and size.
func (h *host) give(ctx context.Context, mem api.Memory, v []byte, ptrPtr, sizePtr uint64) uint32 {
	h.entries["proxy_on_memory_allocate"]++
	res, err := h.alloc.Call(ctx, uint64(len(v)))
	if err != nil {
		panic(err)
	}
	mem.Write(uint32(res[0]), v)
	mem.WriteUint32Le(uint32(ptrPtr), uint32(res[0]))
	mem.WriteUint32Le(uint32(sizePtr), uint32(len(v)))
	return statusOK
}

func (h *host) print(n int, logs []string) {
	per := func(x int) string { return strconv.FormatFloat(float64(x)/float64(n), 'f', 3, 64) }
	sorted := func(m map[string]int) []string {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return keys
	}
	on := ""
	if h.route != "" {
		on = fmt.Sprintf(" on route %q, %d route rules", h.route, *routes)
	}
	fmt.Printf("counted under wazero (%s, %d cache hits%s, after 1,000 not counted)\n", *wasmPath, n, on)
	total := 0
	fmt.Printf("host calls per request\n")
	for _, k := range sorted(h.calls) {
		fmt.Printf("  %-40s %s\n", k, per(h.calls[k]))
		total += h.calls[k]
	}
	fmt.Printf("  %-40s %s\n", "total", per(total))
	total = 0
	fmt.Printf("entries into the Go runtime per request\n")
	for _, k := range sorted(h.entries) {
		fmt.Printf("  %-40s %s\n", k, per(h.entries[k]))
		total += h.entries[k]
	}
	fmt.Printf("  %-40s %s\n", "total", per(total))
	if *funcs > 0 {
		names := sorted(h.funcs)
		slices.SortStableFunc(names, func(a, b string) int { return h.funcs[b] - h.funcs[a] })
		total = 0
		for _, k := range names {
			total += h.funcs[k]
		}
		fmt.Printf("calls of the module's own functions per request: %s in all, %d functions called; the %d called most:\n", per(total), len(names), *funcs)
		for _, k := range names[:min(*funcs, len(names))] {
			fmt.Printf("  %-60s %s\n", k, per(h.funcs[k]))
		}
		if copies, fills, err := memoryOps(h.funcs); err == nil {
			fmt.Printf("memory.copy and memory.fill in the bodies of those functions, times their calls, per request: %s and %s\n"+
				"  (a static count by byte pattern: an estimate; Go compiles memmove, memclr and copies and zeroing of more than a few words to them)\n",
				per(copies), per(fills))
		}
	}
	if len(h.memory) == 3 {
		fmt.Printf("linear memory (KiB): %d after _initialize, %d after proxy_on_configure, %d after the requests\n",
			h.memory[0]/1024, h.memory[1]/1024, h.memory[2]/1024)
	}

	// A debugstats build logs MemStats every 1,000 requests.
	var lines []map[string]uint64
	for _, l := range logs {
		_, rest, ok := strings.Cut(l, "debugstats: ")
		if !ok {
			continue
		}
		m := map[string]uint64{}
		for _, kv := range strings.Fields(rest) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				m[k], _ = strconv.ParseUint(v, 10, 64)
			}
		}
		lines = append(lines, m)
	}
	if len(lines) >= 2 {
		a, z := lines[0], lines[len(lines)-1]
		reqs := float64(z["requests"] - a["requests"])
		fmt.Printf("Go runtime (debugstats lines, %0.f requests)\n", reqs)
		d := func(k string) float64 { return float64(z[k] - a[k]) }
		fmt.Printf("  %-40s %.3f (%.3f with the debug build's wrapper of each HTTP context)\n", "allocations per request",
			(d("mallocs")-d("a_probes")-d("created"))/reqs, (d("mallocs")-d("a_probes"))/reqs)
		if n := d("a_samples"); n > 0 {
			fmt.Printf("  %-40s %.2f (get header %.2f, replace header %.2f, clock %.2f, other host calls %.2f)\n", "  in proxy_on_request_headers",
				d("a_headers")/n, d("a_get_header")/n, d("a_replace_header")/n, d("a_clock")/n, d("a_other")/n)
		}
		if n := d("t_samples"); n > 0 {
			fmt.Printf("  %-40s absent header %.2f, present header %.2f, metric increment %.2f\n", "allocations of one host call (probes)",
				d("a_probe_absent")/n, d("a_probe_present")/n, d("a_probe_metric")/n)
		}
		fmt.Printf("  %-40s %.1f\n", "bytes allocated per request", float64(z["total_alloc"]-a["total_alloc"])/reqs)
		fmt.Printf("  %-40s %.2f\n", "GC cycles per 10k requests", 1e4*float64(z["num_gc"]-a["num_gc"])/reqs)
	}
}

// memoryOps counts the memory.copy (0xfc 0x0a 0x00 0x00) and memory.fill
// (0xfc 0x0b 0x00) byte patterns in the body of each function called,
// times its calls. The patterns may also occur inside other instructions'
// immediates, and an instruction in a branch not taken is counted too.
func memoryOps(calls map[string]int) (copies, fills int, err error) {
	m, err := wasmfile.Read(*wasmPath)
	if err != nil {
		return 0, 0, err
	}
	for _, f := range m.Funcs {
		if n := calls[f.Name]; n > 0 {
			copies += n * bytes.Count(f.Body, []byte{0xfc, 0x0a, 0x00, 0x00})
			fills += n * bytes.Count(f.Body, []byte{0xfc, 0x0b, 0x00})
		}
	}
	return copies, fills, nil
}
