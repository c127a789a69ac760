package main

import (
	"reflect"
	"testing"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"

	"github.com/phantom-token/envoy-phantom-token/internal/cache"
	"github.com/phantom-token/envoy-phantom-token/internal/config"
	"github.com/phantom-token/envoy-phantom-token/internal/introspection"
)

// A client's trace context, and a second one for a request that joins.
var (
	traceA = [][2]string{
		{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{"tracestate", "rojo=00f067aa0ba902b7"},
		{"x-request-id", "request-a"},
	}
	traceB = [][2]string{
		{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		{"tracestate", "congo=t61rcWkgMzE"},
		{"x-request-id", "request-b"},
	}
	// untraced are headers of the client's that no call carries.
	untraced = [][2]string{{"cookie", "session=1"}, {"x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"}, {"accept", "text/html"}}
)

// traced is a request with token and the trace headers given, among others.
func traced(tok string, trace [][2]string) [][2]string {
	return append(append(req(authBearer(tok)), trace...), untraced...)
}

// wantCall checks that the only call made is the introspection of tok with
// exactly these trace headers after the call's own.
func wantCall(t *testing.T, calls []proxytest.HttpCalloutAttribute, cfgJSON, tok string, trace [][2]string) {
	t.Helper()
	c, err := config.Parse([]byte(cfgJSON), nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := introspection.Request(c, tok, trace)
	if len(calls) != 1 {
		t.Fatalf("%d calls, want 1", len(calls))
	}
	if !reflect.DeepEqual(calls[0].Headers, want) {
		t.Errorf("call headers\n got %q\nwant %q", calls[0].Headers, want)
	}
}

// The call a request starts carries that request's trace headers, and nothing
// else of it; a coalesced call carries its first request's.
func TestTraceContextGoesToTheCall(t *testing.T) {
	jwt := phantomJWT("")
	forEachMode(t, func(t *testing.T, m mode) {
		t.Run("a miss's call carries its trace headers", func(t *testing.T) {
			cfg := withConfig("")
			h := started(t, m, cfg)
			e := h.request(traced(token, traceA)...)
			wantCall(t, e.callouts(), cfg, token, traceA)
			e.answer(idsOK(""), jwt)
			wantForwarded(t, e, traced(token, traceA), "authorization", "Bearer "+jwt)
		})
		t.Run("a coalesced call carries its first request's", func(t *testing.T) {
			cfg := withConfig("")
			h := started(t, m, cfg)
			first := h.request(traced(token, traceA)...)
			second := h.request(traced(token, traceB)...)
			if len(second.callouts()) != 0 {
				t.Fatalf("the second request made %d calls", len(second.callouts()))
			}
			wantCall(t, first.callouts(), cfg, token, traceA)
			first.answer(idsOK(""), jwt)
			wantForwarded(t, second, traced(token, traceB), "authorization", "Bearer "+jwt)
			settledState(t, h, m)
		})
		t.Run("a call made after another VM's claim lapsed carries its first waiter's", func(t *testing.T) {
			cfg := withConfig("")
			h := started(t, m, cfg)
			s := slotOf(t, cfg, token)
			s.write(cache.Record{Kind: cache.Pending, Expires: farFuture})
			first := h.request(traced(token, traceA)...)
			second := h.request(traced(token, traceB)...)
			s.write(cache.Record{Kind: cache.Pending, Expires: time.Unix(1000, 0)}) // the other VM's deadline passed
			h.Tick()
			c := h.rootCallouts()
			wantCall(t, c, cfg, token, traceA)
			h.CallOnHttpCallResponse(c[0].CalloutID, idsOK(""), nil, []byte(jwt))
			wantForwarded(t, first, traced(token, traceA), "authorization", "Bearer "+jwt)
			wantForwarded(t, second, traced(token, traceB), "authorization", "Bearer "+jwt)
			settledState(t, h, m)
		})
		t.Run("without the cache each call carries its own request's", func(t *testing.T) {
			cfg := withConfig(`,"cache":false`)
			h := started(t, m, cfg)
			a, b := h.request(traced(token, traceA)...), h.request(traced(token, traceB)...)
			wantCall(t, a.callouts(), cfg, token, traceA)
			wantCall(t, b.callouts(), cfg, token, traceB)
		})
		t.Run("trace_headers of its own", func(t *testing.T) {
			cfg := withConfig(`,"trace_headers":["X-B3-TraceId","x-request-id"]`)
			h := started(t, m, cfg)
			e := h.request(traced(token, traceA)...)
			wantCall(t, e.callouts(), cfg, token, [][2]string{untraced[1], traceA[2]})
		})
		t.Run("none with trace_headers []", func(t *testing.T) {
			cfg := withConfig(`,"trace_headers":[]`)
			h := started(t, m, cfg)
			e := h.request(traced(token, traceA)...)
			wantCall(t, e.callouts(), cfg, token, nil)
		})
		t.Run("a value too long or with a control character stays behind", func(t *testing.T) {
			cfg := withConfig("")
			h := started(t, m, cfg)
			long := make([]byte, introspection.MaxTraceValue+1)
			for i := range long {
				long[i] = 'a'
			}
			e := h.request(traced(token, [][2]string{traceA[0], {"tracestate", "a=1\r\nx-evil: 1"}, {"x-request-id", string(long)}})...)
			wantCall(t, e.callouts(), cfg, token, traceA[:1])
		})
	})
}

// readsOf records the header reads of the requests the test sends (Go mode:
// the host calls are the package's variables).
func readsOf(t *testing.T) *[]string {
	var reads []string
	oldGet, oldGetAll := getHeader, getHeaders
	getHeader = func(n string) (string, error) { reads = append(reads, "get "+n); return oldGet(n) }
	getHeaders = func() ([][2]string, error) { reads = append(reads, "get all"); return oldGetAll() }
	t.Cleanup(func() { getHeader, getHeaders = oldGet, oldGetAll })
	return &reads
}

// Only a request that starts a flight reads its trace headers, with one read
// of the header map; a hit, in this VM's copy or in the shared cache, and a
// request that joins a flight read what they read without them.
func TestOnlyAMissReadsTheTraceHeaders(t *testing.T) {
	m := modes[0]
	jwt := phantomJWT("")
	key := newDPoPKey(t)
	dpopJWT := phantomJWT(`"cnf":{"jkt":"` + key.jkt + `"}`)
	tests := []struct {
		name, extra string
		// before makes the state the request finds; it returns what the
		// request sends.
		before func(t *testing.T, h *host, cfg string) [][2]string
		want   []string
	}{
		{"a miss: the header map, once", "", func(*testing.T, *host, string) [][2]string { return traced(token, traceA) },
			[]string{"get authorization", "get all"}},
		{"a miss with trace_headers []: no more than before", `,"trace_headers":[]`,
			func(*testing.T, *host, string) [][2]string { return traced(token, traceA) },
			[]string{"get authorization"}},
		{"a miss that waits on another VM's call: the header map, once", "", func(t *testing.T, _ *host, cfg string) [][2]string {
			slotOf(t, cfg, token).write(cache.Record{Kind: cache.Pending, Expires: farFuture})
			return traced(token, traceA)
		}, []string{"get authorization", "get all"}},
		{"a hit in this VM's copy: Authorization only", "", func(t *testing.T, h *host, _ string) [][2]string {
			h.request(traced(token, traceB)...).answer(idsOK(""), jwt)
			return traced(token, traceA)
		}, []string{"get authorization"}},
		{"a hit in the shared cache: Authorization only", "", func(t *testing.T, _ *host, cfg string) [][2]string {
			slotOf(t, cfg, token).write(cache.Record{Kind: cache.Active, Expires: farFuture, JWT: jwt})
			return traced(token, traceA)
		}, []string{"get authorization"}},
		{"a request that joins a flight: Authorization only", "", func(t *testing.T, h *host, _ string) [][2]string {
			h.request(traced(token, traceB)...)
			return traced(token, traceA)
		}, []string{"get authorization"}},
		{"a DPoP miss: the map its proof was read from, once", `,"dpop":"allowed"`, func(t *testing.T, _ *host, _ string) [][2]string {
			return append(dpopReq(token, key.proof(t, token, proofOpts{})), traceA...)
		}, []string{"get authorization", "get all"}},
		{"a DPoP hit: as without trace headers", `,"dpop":"allowed"`, func(t *testing.T, _ *host, cfg string) [][2]string {
			slotOf(t, cfg, token).write(cache.Record{Kind: cache.Active, Expires: farFuture, JWT: dpopJWT})
			return append(dpopReq(token, key.proof(t, token, proofOpts{})), traceA...)
		}, []string{"get authorization", "get all"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := withConfig(tt.extra)
			h := started(t, m, cfg)
			sent := tt.before(t, h, cfg)
			reads := readsOf(t)
			e := h.request(sent...)
			if !reflect.DeepEqual(*reads, tt.want) {
				t.Errorf("header reads %q, want %q", *reads, tt.want)
			}
			if e.local() != nil {
				t.Errorf("answered %d", e.local().StatusCode)
			}
			if c := e.callouts(); len(c) == 1 && len(tt.want) == 2 {
				if got := c[0].Headers; !reflect.DeepEqual(got[len(got)-3:], traceA) {
					t.Errorf("the call carries %q, want the request's trace headers last", got)
				}
			}
		})
	}
}
