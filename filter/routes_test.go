package main

import (
	"encoding/binary"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// routesConfig protects a gateway: a public route, two routes with their own
// scopes and realms, one with another identity server, claim headers.
const routesConfig = `,"claim_headers":[{"claim":"sub","header":"x-user"},{"claim":"roles","header":"x-roles"}],"routes":[` +
	`{"route":"health","enabled":false},` +
	`{"route":"orders","realm":"orders","required_scopes":"orders:read"},` +
	`{"route_prefix":"admin-","realm":"admin","required_scopes":"admin","claim_headers":[{"claim":"tenant.id","header":"x-tenant"}]},` +
	`{"route":"partner","introspection_url":"http://partner:3000/token/introspection","cluster":"partner","client_id":"gw","client_secret":"partner-s3cret","timeout":"1s"}]`

// onRoute makes the next requests arrive on the Envoy route named name.
func (h *host) onRoute(name string) {
	h.t.Helper()
	if err := h.SetProperty([]string{"xds", "route_name"}, []byte(name)); err != nil {
		h.t.Fatal(err)
	}
}

func TestRoutePolicies(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		h := started(t, m, withConfig(routesConfig))
		h.assertNoSecrets("partner-s3cret")
		rows := []struct {
			route     string
			token     bool
			scope     string
			code      uint32 // 0: forwarded
			challenge string
			cluster   string // the identity server called
		}{
			{"health", false, "", 0, "", ""},
			{"orders", false, "", 401, `Bearer realm="orders", scope="orders:read"`, ""},
			{"orders", true, "orders:read", 0, "", "idsvr"},
			{"orders", true, "other", 403, `Bearer realm="orders", scope="orders:read", error="insufficient_scope"`, "idsvr"},
			{"admin-users", false, "", 401, `Bearer realm="admin", scope="admin"`, ""},
			{"admin-users", true, "orders:read", 403, `Bearer realm="admin", scope="admin", error="insufficient_scope"`, "idsvr"},
			{"partner", true, "", 0, "", "partner"},
			{"api", false, "", 401, `Bearer realm="api"`, ""}, // no rule: the top level authenticates
		}
		for i, row := range rows {
			h.onRoute(row.route)
			sent := req()
			tok := ""
			if row.token {
				tok = token + "-" + string(rune('a'+i))
				sent = req(authBearer(tok))
			}
			e := h.request(sent...)
			if row.cluster != "" {
				c := e.callouts()
				if len(c) != 1 || c[0].Upstream != row.cluster {
					t.Fatalf("%s: callouts %+v, want one to %s", row.route, c, row.cluster)
				}
				scope := ""
				if row.scope != "" {
					scope = `"scope":"` + row.scope + `"`
				}
				e.answer(idsOK(""), phantomJWT(scope))
			} else if len(e.callouts()) != 0 {
				t.Fatalf("%s: a call was made", row.route)
			}
			if row.code == 0 {
				if e.local() != nil || e.finalAction() != types.ActionContinue {
					t.Errorf("%s: not forwarded: %v %v", row.route, e.local(), e.finalAction())
				}
				continue
			}
			body := unauthorizedBody
			if row.code == 403 {
				body = forbiddenBody
			}
			wantReply(t, e, row.code, row.challenge, body)
		}
		c := h.rootCallouts()
		for _, call := range c {
			if call.Upstream == "partner" && (header(call.Headers, ":authority")[0] != "partner:3000" ||
				header(call.Headers, ":path")[0] != "/token/introspection") {
				t.Errorf("partner call %q", call.Headers)
			}
		}
	})
}

// One token, two identity servers: the answer of one is never served on a
// route of the other.
func TestRouteCacheNamespaces(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		h := started(t, m, withConfig(routesConfig))
		h.onRoute("orders")
		e := h.request(req(authBearer(token))...)
		e.answer(idsOK(""), phantomJWT(`"scope":"orders:read"`))
		for _, route := range []string{"orders", "api", "admin-x"} { // the same server: answered from the cache
			h.onRoute(route)
			if e := h.request(req(authBearer(token))...); len(e.callouts()) != 0 {
				t.Errorf("%s: called again", route)
			}
		}
		h.onRoute("partner")
		e = h.request(req(authBearer(token))...)
		if c := e.callouts(); len(c) != 1 || c[0].Upstream != "partner" {
			t.Fatalf("partner route served from another server's answer: %+v", c)
		}
		e.answer(status(204), "")
		wantReply(t, e, 401, `Bearer realm="api", error="invalid_token"`, unauthorizedBody)
	})
}

func TestClaimHeaders(t *testing.T) {
	forged := [][2]string{{"x-user", "root"}, {"X-Roles", "admin"}, {"x-tenant", "other"}, {"x-user", "root2"}}
	withForged := func(extra ...[2]string) [][2]string { return append(req(extra...), forged...) }
	noClaims := func(t *testing.T, e *exchange) {
		t.Helper()
		for _, name := range []string{"x-user", "x-roles", "x-tenant"} {
			if v := header(e.upstreamHeaders(), name); v != nil {
				t.Errorf("%s = %q left in the request", name, v)
			}
		}
	}
	forEachMode(t, func(t *testing.T, m mode) {
		h := started(t, m, withConfig(routesConfig))

		h.onRoute("orders") // a top-level list: sub and roles
		e := h.request(withForged(authBearer(token))...)
		e.answer(idsOK(""), phantomJWT(`"scope":"orders:read","roles":["a","b"],"tenant":{"id":"t1"}`))
		if got := [][]string{header(e.upstreamHeaders(), "x-user"), header(e.upstreamHeaders(), "x-roles"), header(e.upstreamHeaders(), "x-tenant")}; !reflect.DeepEqual(got, [][]string{{"alice"}, {"a b"}, nil}) {
			t.Errorf("claim headers %q", got)
		}
		h.onRoute("admin-x") // the rule's own list: the tenant only
		e = h.request(withForged(authBearer(token + "2"))...)
		e.answer(idsOK(""), phantomJWT(`"scope":"admin","tenant":{"id":"t1"}`))
		if got := [][]string{header(e.upstreamHeaders(), "x-user"), header(e.upstreamHeaders(), "x-tenant")}; !reflect.DeepEqual(got, [][]string{nil, {"t1"}}) {
			t.Errorf("claim headers %q", got)
		}
		h.onRoute("orders") // a claim missing or unusable: the header is absent, never the client's
		e = h.request(withForged(authBearer(token + "3"))...)
		e.answer(idsOK(""), phantomJWT(`"scope":"orders:read","roles":{"x":1}`))
		if got := [][]string{header(e.upstreamHeaders(), "x-user"), header(e.upstreamHeaders(), "x-roles")}; !reflect.DeepEqual(got, [][]string{{"alice"}, nil}) {
			t.Errorf("claim headers %q", got)
		}
		if n := stat(t, h, "claim_header_omitted"); n != 1 {
			t.Errorf("claim_header_omitted = %d, want 1", n)
		}
		e = h.request(withForged(authBearer(token + "3"))...) // the same from the cache
		if got := header(e.upstreamHeaders(), "x-roles"); got != nil || len(e.callouts()) != 0 {
			t.Errorf("cache hit: x-roles %q, %d calls", got, len(e.callouts()))
		}

		// Removed from every request the filter sees.
		h.onRoute("health")
		e = h.request(withForged()...)
		if e.finalAction() != types.ActionContinue {
			t.Fatal("public route not forwarded")
		}
		noClaims(t, e)
		h.onRoute("orders")
		e = h.request(append(withForged(), [2]string{":method", "OPTIONS"}, [2]string{"origin", "https://app"}, [2]string{"access-control-request-method", "GET"})...)
		noClaims(t, e)
		e = h.request(withForged()...) // answered 401
		noClaims(t, e)
	})
}

func TestClaimHeadersRejected(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		h := started(t, m, withConfig(routesConfig+`,"reject_claim_headers":true`))
		for _, route := range []string{"orders", "health"} {
			h.onRoute(route)
			e := h.request(req(authBearer(token), [2]string{"X-Tenant", "t2"})...)
			wantReply(t, e, 400, `Bearer realm="api", error="invalid_request"`, badRequestBody)
			if len(e.callouts()) != 0 {
				t.Error("a call was made")
			}
		}
		h.onRoute("health")
		if e := h.request(req()...); e.finalAction() != types.ActionContinue {
			t.Error("a request without claim headers was refused")
		}
	})
}

// A configuration without routes reads nothing of the route.
func TestNoRoutesReadNoProperty(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		if !m.native {
			return
		}
		h := started(t, m, withConfig(""))
		reads := 0
		old := getProperty
		getProperty = func(path string) ([]byte, error) { reads++; return old(path) }
		t.Cleanup(func() { getProperty = old })
		h.onRoute("orders")
		h.request(req()...)
		if reads != 0 || lastPlugin.resolver != nil {
			t.Errorf("%d property reads", reads)
		}
	})
}

// Metadata as proxy-wasm returns it: a serialised envoy.config.core.v3.Metadata.
func pbLen(field byte, body ...[]byte) []byte {
	var b []byte
	for _, x := range body {
		b = append(b, x...)
	}
	out := binary.AppendUvarint([]byte{field<<3 | 2}, uint64(len(b)))
	return append(out, b...)
}

func pbMetadata(members ...[]byte) []byte {
	return pbLen(1, pbLen(1, []byte("phantom_token")), pbLen(2, members...))
}

func pbString(key, value string) []byte {
	return pbLen(1, pbLen(1, []byte(key)), pbLen(2, pbLen(3, []byte(value))))
}

func pbBool(key string, v bool) []byte {
	b := byte(0)
	if v {
		b = 1
	}
	return pbLen(1, pbLen(1, []byte(key)), pbLen(2, []byte{4 << 3, b}))
}

func TestRouteMetadata(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		h := started(t, m, withConfig(`,"route_metadata":true,"routes":[{"route":"reports","realm":"rule","required_scopes":"x"}]`))
		set := func(name string, value []byte) {
			if err := h.SetProperty([]string{"xds", name}, value); err != nil {
				t.Fatal(err)
			}
		}
		h.onRoute("reports")
		set("virtual_host_metadata", pbMetadata(pbString("realm", "vh"), pbString("scopes", "s")))
		set("route_metadata", pbMetadata(pbString("required_scopes", "reports")))
		// The route's over the virtual host's over the rule's.
		wantReply(t, h.request(req()...), 401, `Bearer realm="vh", scope="s"`, unauthorizedBody)
		e := h.request(req(authBearer(token))...)
		e.answer(idsOK(""), phantomJWT(`"scope":"x"`))
		wantReply(t, e, 403, `Bearer realm="vh", scope="reports", error="insufficient_scope"`, forbiddenBody)

		set("route_metadata", pbMetadata(pbBool("enabled", false)))
		if e := h.request(req()...); e.finalAction() != types.ActionContinue {
			t.Error("a route turned off by its metadata is not forwarded")
		}

		// Metadata that does not parse: 500, logged once per route.
		set("route_metadata", pbMetadata(pbString("cluster", "elsewhere")))
		for range 3 {
			wantReply(t, h.request(req(authBearer(token))...), 500, "", serverErrorBody)
		}
		n := 0
		for _, line := range h.allLogs() {
			if strings.Contains(line, `route "reports": invalid route metadata: "cluster" is not a known key`) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("logged %d times, want once", n)
		}
		set("route_metadata", []byte{0x0a, 0x05}) // truncated
		wantReply(t, h.request(req()...), 500, "", serverErrorBody)
	})
}

// The metadata bytes Envoy 1.40 returned, with keys the filter does not
// know: refused, never ignored.
func TestRouteMetadataFromEnvoy(t *testing.T) {
	raw, err := os.ReadFile("../internal/routemeta/testdata/route_a.pb")
	if err != nil {
		t.Fatal(err)
	}
	forEachMode(t, func(t *testing.T, m mode) {
		h := started(t, m, withConfig(`,"route_metadata":true`))
		if err := h.SetProperty([]string{"xds", "route_metadata"}, raw); err != nil {
			t.Fatal(err)
		}
		wantReply(t, h.request(req()...), 500, "", serverErrorBody)
	})
}

// A failed property read answers 500.
func TestRouteReadFails(t *testing.T) {
	h := started(t, modes[0], withConfig(routesConfig))
	old := getProperty
	getProperty = func(string) ([]byte, error) { return nil, hostError{"proxy_get_property", 2} }
	t.Cleanup(func() { getProperty = old })
	wantReply(t, h.request(req(authBearer(token))...), 500, "", serverErrorBody)
}
