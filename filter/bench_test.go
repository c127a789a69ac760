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
	c := host.GetCalloutAttributesFromContext(id)
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

// BenchmarkDecisions is the filter's own work on a cache hit, without any
// host: reading the token, hashing it, finding its slot, decoding the record
// and checking the JWT.
func BenchmarkDecisions(b *testing.B) {
	jwtText := phantomJWT(`"scope":"read write"`)
	const ns = "0123456789abcdef"
	rec := cache.Encode([]cache.Record{{Kind: cache.Active, Hash: cache.Hash(ns, token), Expires: farFuture, JWT: jwtText}})
	values := []string{"Bearer " + token}
	b.ReportAllocs()
	for b.Loop() {
		tok, _ := bearer.FromHeader(values, 4096)
		h := cache.Hash(ns, tok)
		_ = cache.Key(ns, h, 10000)
		e := cache.Find(cache.Decode(rec), h, now())
		claims, err := jwt.Parse(e.JWT)
		if err != nil || claims.Check(now(), []string{"read"}) != jwt.Valid {
			b.Fatal(err)
		}
	}
}
