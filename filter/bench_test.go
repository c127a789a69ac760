package main

import (
	"testing"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/phantom-token/envoy-phantom-token/internal/bearer"
	"github.com/phantom-token/envoy-phantom-token/internal/cache"
	"github.com/phantom-token/envoy-phantom-token/internal/jwt"
)

// BenchmarkCacheHit is the hot path through the emulated host, in Go mode:
// a request whose token is cached. Its allocations include the emulator's.
func BenchmarkCacheHit(b *testing.B) {
	opt := proxytest.NewEmulatorOption().WithVMContext(&vmContext{}).WithPluginConfiguration([]byte(withConfig("")))
	host, reset := proxytest.NewHostEmulator(opt)
	defer reset()
	host.StartPlugin()
	headers := req(authBearer(token), [2]string{"accept", "application/json"}, [2]string{"user-agent", "bench"})
	id := host.InitializeHttpContext()
	host.CallOnRequestHeaders(id, headers, false)
	c := host.GetCalloutAttributesFromContext(proxytest.PluginContextID) // the plugin makes the calls
	host.CallOnHttpCallResponse(c[0].CalloutID, idsOK(""), nil, []byte(phantomJWT(`"scope":"read write"`)))
	b.ReportAllocs()
	for b.Loop() {
		id := host.InitializeHttpContext()
		if host.CallOnRequestHeaders(id, headers, false) != types.ActionContinue {
			b.Fatal("not a cache hit")
		}
		host.CompleteHttpContext(id)
	}
}

// BenchmarkDecisions is the filter's own work on a cache hit in this
// worker's copy, without any host: reading the token, finding its entry and
// checking the JWT.
func BenchmarkDecisions(b *testing.B) {
	jwtText := phantomJWT(`"scope":"read write"`)
	claims, err := jwt.Parse(jwtText)
	if err != nil {
		b.Fatal(err)
	}
	local := cache.NewLocal(10000)
	const ns = "0123456789abcdef"
	local.Put(local.Key(ns, token), cache.LocalEntry{Claims: claims, Upstream: "Bearer " + jwtText, Expires: farFuture})
	value := "Bearer " + token
	required := []string{"read"}
	b.ReportAllocs()
	for b.Loop() {
		tok, _ := bearer.FromHeader(value, true, 4096)
		t := now()
		e, ok := local.Get(local.Key(ns, tok), t)
		if !ok || e.Claims.Check(t, required) != jwt.Valid {
			b.Fatal("not a hit")
		}
	}
}
