package main

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
)

// envoyWASI is the WASI subset Envoy's proxy-wasm host provides. A module that
// imports anything else is refused at load time, which no emulator shows.
var envoyWASI = map[string]bool{
	"args_get": true, "args_sizes_get": true, "clock_time_get": true,
	"environ_get": true, "environ_sizes_get": true,
	"fd_close": true, "fd_fdstat_get": true, "fd_fdstat_set_flags": true,
	"fd_prestat_dir_name": true, "fd_prestat_get": true, "fd_read": true, "fd_seek": true, "fd_write": true,
	"path_open": true, "poll_oneoff": true, "proc_exit": true, "random_get": true, "sched_yield": true,
}

func TestModuleImportsOnlyWhatEnvoyProvides(t *testing.T) {
	code, err := os.ReadFile(wasmPath)
	if err != nil {
		t.Fatalf("the compiled module is needed (run make build): %v", err)
	}
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	m, err := r.CompileModule(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range m.ImportedFunctions() {
		module, name, _ := f.Import()
		switch {
		case module == "env" && strings.HasPrefix(name, "proxy_"):
		case module == "wasi_snapshot_preview1" && envoyWASI[name]:
		default:
			t.Errorf("module imports %s.%s, which Envoy does not provide", module, name)
		}
	}
	// Exactly the callbacks the filter uses (filter/abi): Envoy calls every
	// callback a module exports, each about 1 µs of its CPU per request.
	var exports []string
	for name := range m.ExportedFunctions() {
		exports = append(exports, name)
	}
	slices.Sort(exports)
	want := []string{"_initialize", "proxy_abi_version_0_2_0", "proxy_on_configure", "proxy_on_context_create",
		"proxy_on_done", "proxy_on_http_call_response", "proxy_on_memory_allocate",
		"proxy_on_queue_ready", "proxy_on_request_headers", "proxy_on_tick", "proxy_on_vm_start",
		"stream_ended"} // for the SDK's emulator only (see forEmulator); Envoy calls only proxy_*
	if !slices.Equal(exports, want) {
		t.Errorf("module exports %q, want %q", exports, want)
	}
}

// TestModuleLinksNoHeavyPackages: packages that a stray import would link
// into the module, each hundreds of kB that Envoy pays for in memory per
// worker (encoding/hex's errors link fmt, crypto/rand links math/big,
// crypto/hmac the FIPS hash registry and SHA-3, crypto/ecdsa 1.9 MB). Their
// functions would show in the name section.
func TestModuleLinksNoHeavyPackages(t *testing.T) {
	code, err := os.ReadFile(wasmPath)
	if err != nil {
		t.Fatalf("the compiled module is needed (run make build): %v", err)
	}
	for _, name := range []string{"fmt.(*fmt)", "reflect.Value.", "math/big.nat", "crypto/sha3.", "crypto/internal/fips140/ecdsa.", "crypto/internal/fips140/rsa.", "encoding/json."} {
		if bytes.Contains(code, []byte(name)) {
			t.Errorf("the module links %s", strings.TrimSuffix(name, "."))
		}
	}
}
