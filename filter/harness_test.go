package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// The filter tests run every case twice: against this package compiled for
// the host ("go") and against the compiled module ("wasm") under proxytest's
// wazero runner. The module must have been built (make build); a missing one
// is a failure, not a skip.
const wasmPath = "../build/phantom_token.wasm"

var (
	wasmOnce sync.Once
	wasmVM   types.VMContext
	wasmErr  error
)

type mode struct {
	name string
	vm   func(t *testing.T) types.VMContext
	// native is true when the test can reach into the package (clock, env).
	native bool
}

var modes = []mode{
	{"go", func(*testing.T) types.VMContext {
		lastPlugin = nil
		return &recordingVM{}
	}, true},
	{"wasm", func(t *testing.T) types.VMContext {
		wasmOnce.Do(func() {
			var code []byte
			if wasmErr = freshModule(); wasmErr != nil {
				return
			}
			if code, wasmErr = os.ReadFile(wasmPath); wasmErr == nil {
				if code, wasmErr = forEmulator(code); wasmErr == nil {
					wasmVM, wasmErr = proxytest.NewWasmVMContext(code)
				}
			}
		})
		if wasmErr != nil {
			t.Fatalf("the compiled module is needed (run make build): %v", wasmErr)
		}
		return wasmVM
	}, false},
}

// forEmulator renames the module's export stream_ended to proxy_on_log.
// Envoy ends a request with proxy_on_done, which the module exports for that
// and for plugins; the SDK's emulator ends one with proxy_on_log, which the
// module does not export (Envoy would call it too, on every request).
// stream_ended is the end of a request alone (filter/abi), with a name as
// long as proxy_on_log's, so the rename is in place, in the export section.
func forEmulator(code []byte) ([]byte, error) {
	from, to := []byte("\x0cstream_ended"), []byte("\x0cproxy_on_log")
	out := bytes.Clone(code)
	for i := 8; i < len(out); { // sections: id, size (LEB128), contents
		id, size, n := out[i], uint64(0), 1
		for shift := 0; ; shift += 7 {
			if i+n >= len(out) || shift > 28 {
				return nil, errors.New("the module's sections do not parse")
			}
			b := out[i+n]
			n++
			size |= uint64(b&0x7f) << shift
			if b < 0x80 {
				break
			}
		}
		body := out[min(i+n, len(out)):min(i+n+int(size), len(out))]
		if id == 7 { // exports
			if bytes.Count(body, from) != 1 {
				return nil, errors.New("the module does not export stream_ended once")
			}
			copy(body[bytes.Index(body, from):], to)
			return out, nil
		}
		i += n + int(size)
	}
	return nil, errors.New("the module has no export section")
}

// lastPlugin is the plugin context the Go mode's VM created last: tests in Go
// mode read and change its state.
var lastPlugin *pluginContext

// recordingVM is the filter's VM context, recording the plugin context it
// creates in lastPlugin.
type recordingVM struct{ vmContext }

// NewPluginContext implements types.VMContext.
func (v *recordingVM) NewPluginContext(id uint32) types.PluginContext {
	p := v.vmContext.NewPluginContext(id)
	lastPlugin = p.(*pluginContext)
	return p
}

// freshModule rebuilds the module when a source it is built from is newer
// than it (or it is missing), so that a test never runs an old build.
func freshModule() error {
	built := time.Time{}
	if st, err := os.Stat(wasmPath); err == nil {
		built = st.ModTime()
	}
	stale := ""
	for _, root := range []string{"../filter", "../internal", "../go.mod", "../go.sum"} {
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			source := strings.HasSuffix(path, ".go") || strings.HasPrefix(d.Name(), "go.")
			if err != nil || d.IsDir() || strings.HasSuffix(path, "_test.go") || !source {
				return nil
			}
			if info, err := d.Info(); err == nil && info.ModTime().After(built) && stale == "" {
				stale = path
			}
			return nil
		})
	}
	if stale == "" {
		return nil
	}
	log.Printf("%s is newer than %s: rebuilding the module", stale, wasmPath)
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", wasmPath, ".")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s is newer than %s and the rebuild failed: %v\n%s", stale, wasmPath, err, out)
	}
	return nil
}

// forEachMode runs f once per mode as a subtest.
func forEachMode(t *testing.T, f func(t *testing.T, m mode)) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { f(t, m) })
	}
}

// host is a started plugin in the emulator, plus what the emulator printed
// about callouts (it records the timeout only there).
type host struct {
	proxytest.HostEmulator
	t      *testing.T
	stdlog *bytes.Buffer
}

func startHost(t *testing.T, m mode, cfg string) (*host, types.OnPluginStartStatus) {
	t.Helper()
	buf := &bytes.Buffer{}
	log.SetOutput(buf)
	opt := proxytest.NewEmulatorOption().WithVMContext(m.vm(t)).WithPluginConfiguration([]byte(cfg))
	h, reset := proxytest.NewHostEmulator(opt)
	t.Cleanup(func() {
		reset()
		log.SetOutput(os.Stderr)
	})
	h.RegisterForeignFunction("verify_signature", envoyVerifySignature)
	h.StartVM()
	return &host{HostEmulator: h, t: t, stdlog: buf}, h.StartPlugin()
}

func newHost(t *testing.T, m mode, cfg string) *host {
	t.Helper()
	h, status := startHost(t, m, cfg)
	if status != types.OnPluginStartStatusOK {
		t.Fatalf("plugin did not start: %q", h.GetCriticalLogs())
	}
	return h
}

// exchange is one request through the filter.
type exchange struct {
	h      *host
	id     uint32
	sent   [][2]string // the request headers the client sent
	action types.Action
	// calls are the callouts made while its headers were handled: the
	// plugin makes them from its own context (see queue1).
	calls []proxytest.HttpCalloutAttribute
}

// request sends a request without a body: its headers end the stream.
func (h *host) request(headers ...[2]string) *exchange { return h.send(true, headers...) }

// send sends a request's headers; endOfStream false means a body follows.
func (h *host) send(endOfStream bool, headers ...[2]string) *exchange {
	id := h.InitializeHttpContext()
	// The emulator's list of a context's callouts only grows (and it reuses
	// the IDs of answered calls).
	before := len(h.rootCallouts())
	e := &exchange{h: h, id: id, sent: headers, action: h.CallOnRequestHeaders(id, headers, endOfStream)}
	e.calls = append(e.calls, h.rootCallouts()[before:]...)
	e.calls = append(e.calls, h.GetCalloutAttributesFromContext(id)...)
	return e
}

// callouts are the calls made for this request.
func (e *exchange) callouts() []proxytest.HttpCalloutAttribute { return e.calls }

// answer delivers the identity server's response to the pending callout.
// A nil headers slice is a call that failed without a response.
func (e *exchange) answer(headers [][2]string, body string) {
	e.h.t.Helper()
	c := e.callouts()
	if len(c) != 1 {
		e.h.t.Fatalf("want one callout, got %d", len(c))
	}
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	e.h.CallOnHttpCallResponse(c[0].CalloutID, headers, nil, b)
}

func (e *exchange) finalAction() types.Action { return e.h.GetCurrentHttpStreamAction(e.id) }
func (e *exchange) local() *proxytest.LocalHttpResponse {
	return e.h.GetSentLocalResponse(e.id)
}
func (e *exchange) upstreamHeaders() [][2]string { return e.h.GetCurrentRequestHeaders(e.id) }

var timeoutLine = regexp.MustCompile(`\[http callout to (\S+)\] timeout: (\d+)`)

// calloutTimeouts lists the timeouts (ms) of the callouts made so far.
func (h *host) calloutTimeouts() []int {
	var out []int
	for _, m := range timeoutLine.FindAllStringSubmatch(h.stdlog.String(), -1) {
		n, _ := strconv.Atoi(m[2])
		out = append(out, n)
	}
	return out
}

// allLogs is every line the plugin logged, at every level. The lines come
// from the emulator's own log output, copied when logged: its per-level
// lists hold, in wasm mode, views of the module's memory, which later writes
// overwrite.
func (h *host) allLogs() []string {
	var all []string
	for _, line := range strings.Split(h.stdlog.String(), "\n") {
		if i := strings.Index(line, "proxy_"); i >= 0 && strings.Contains(line, "_log: ") {
			all = append(all, line[i:])
		}
	}
	return all
}

// assertNoSecrets fails if any plugin log line contains one of the values.
func (h *host) assertNoSecrets(values ...string) {
	h.t.Helper()
	for _, line := range h.allLogs() {
		for _, v := range values {
			if v != "" && strings.Contains(line, v) {
				h.t.Errorf("log line reveals a secret value: %q", line)
			}
		}
	}
}

// setClock replaces the filter's clock (Go mode only) for the test.
func setClock(t *testing.T, f func() time.Time) {
	old := now
	now = f
	t.Cleanup(func() { now = old })
}
