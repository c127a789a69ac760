package e2e

import (
	"crypto/tls"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
	"github.com/phantom-token/envoy-phantom-token/e2e/harness"
)

// Certificate-bound tokens (RFC 8705 §3, docs/sender-constrained.md) through
// listeners that terminate TLS with client certificates made for the suite.
const (
	// TLS with an optional client certificate, the certificate read from the
	// connection; a client's x-forwarded-client-cert (XFCC) reaches the
	// filter unchanged (ALWAYS_FORWARD_ONLY) and must not count.
	scCertConn = "cert-connection"
	// The same with require_certificate_bound.
	scCertOnly = "cert-bound-only"
	// The same with jwt_member: the binding may come beside the JWT.
	scCertMember = "cert-member"
	// Per route: a rule that requires bound tokens, route metadata that
	// reads XFCC (passed on as it comes, ALWAYS_FORWARD_ONLY), and the
	// top-level policy, which reads the connection.
	scCertRoutes = "cert-routes"
	// Client certificates of any issuer (RFC 8705 §2.2, self-signed
	// binding): the thumbprint is all that counts.
	scCertAnyIssuer = "cert-any-issuer"
	// An edge that terminates TLS, replaces any client XFCC with its own
	// (SANITIZE_SET) and reads the certificate from XFCC.
	scCertEdge = "cert-edge-xfcc"
	// A TLS terminator without the filter (client certificate required,
	// SANITIZE_SET) in front of scCertGateway.
	scCertTerminator = "cert-terminator"
	// The gateway behind the terminator: plain HTTP on a port of its own,
	// XFCC passed on as it comes (ALWAYS_FORWARD_ONLY), read by the filter.
	scCertGateway = "cert-gateway"
	// Edges like the terminator that reach the next proxy over mutual TLS
	// with a certificate of their own ("edge"), as Istio's ingress gateway
	// reaches a sidecar; that proxy runs the filter on XFCC, and appends
	// its own element (APPEND_FORWARD, a sidecar's default) or passes the
	// edge's header on (FORWARD_ONLY).
	scCertEdgeAppend  = "cert-edge-append"
	scCertEdgeForward = "cert-edge-forward"
	scCertMeshAppend  = "cert-mesh-append"
	scCertMeshForward = "cert-mesh-forward"
)

// The clusters by which the edges reach the proxies behind them.
const (
	certClusterGateway     = "cert-gateway"
	certClusterMeshAppend  = "cert-mesh-append"
	certClusterMeshForward = "cert-mesh-forward"
)

// certs is the suite's PKI (CA "e2e", clients "alice", "bob" and "edge"),
// the ports of the listeners behind the edges, and an HTTP client per client
// certificate.
var certs struct {
	pki   *fixtures.PKI
	other *fixtures.PKI  // another CA, client "carol": only cert-any-issuer lets it in
	ports map[string]int // by cluster

	mu      sync.Mutex
	clients map[string]*http.Client
}

// certBoundSetUp makes the PKI in dir and picks the ports of the listeners
// behind the edges.
func certBoundSetUp(dir string) (err error) {
	if certs.pki, err = fixtures.NewPKI(dir, "e2e", "alice", "bob", "edge"); err != nil {
		return err
	}
	if certs.other, err = fixtures.NewPKI(dir, "other", "carol"); err != nil {
		return err
	}
	certs.ports = map[string]int{}
	for _, cluster := range []string{certClusterGateway, certClusterMeshAppend, certClusterMeshForward} {
		if certs.ports[cluster], err = fixtures.FreePort(); err != nil {
			return err
		}
	}
	return nil
}

// certBoundClusters are the clusters the certificate scenarios add.
func certBoundClusters() map[string]string {
	clusters := map[string]string{}
	for name, port := range certs.ports {
		clusters[name] = "127.0.0.1:" + strconv.Itoa(port)
	}
	return clusters
}

// certBoundClusterTLS: the edges reach the mesh proxies over mutual TLS.
func certBoundClusterTLS() map[string]harness.ClusterTLS {
	edge := certs.pki.Clients["edge"]
	mtls := harness.ClusterTLS{CAFile: certs.pki.CAFile, CertFile: edge.CertFile, KeyFile: edge.KeyFile}
	return map[string]harness.ClusterTLS{certClusterMeshAppend: mtls, certClusterMeshForward: mtls}
}

func certBoundScenarios() []harness.Scenario {
	server := func(required bool) *harness.TLS {
		return &harness.TLS{
			CertFile: certs.pki.Server.CertFile, KeyFile: certs.pki.Server.KeyFile,
			ClientCAFile: certs.pki.CAFile, RequireClientCert: required,
		}
	}
	xfcc := map[string]any{"client_certificate_source": "x-forwarded-client-cert"}
	return []harness.Scenario{
		{Name: scCertConn, TLS: server(false), ForwardClientCert: "ALWAYS_FORWARD_ONLY", Plugin: plugin(nil)},
		{Name: scCertOnly, TLS: server(false), Plugin: plugin(map[string]any{"require_certificate_bound": true})},
		{Name: scCertMember, TLS: server(false), Plugin: plugin(map[string]any{"jwt_member": "jwt"})},
		{Name: scCertRoutes, TLS: server(false), ForwardClientCert: "ALWAYS_FORWARD_ONLY",
			Plugin: plugin(map[string]any{
				"route_metadata": true,
				"routes":         []any{map[string]any{"route": "bound-only", "require_certificate_bound": true}},
			}),
			Routes: []harness.Route{
				{Name: "bound-only", Prefix: "/bound-only/"},
				{Name: "from-xfcc", Prefix: "/from-xfcc/", Metadata: phantomMeta(xfcc)},
				{Prefix: "/"},
			}},
		{Name: scCertAnyIssuer, TLS: &harness.TLS{
			CertFile: certs.pki.Server.CertFile, KeyFile: certs.pki.Server.KeyFile,
			ClientCAFile: certs.pki.CAFile, AcceptUntrusted: true,
		}, Plugin: plugin(nil)},
		{Name: scCertEdge, TLS: server(false), ForwardClientCert: "SANITIZE_SET", Plugin: plugin(xfcc)},
		{Name: scCertTerminator, TLS: server(true), ForwardClientCert: "SANITIZE_SET", Upstream: certClusterGateway},
		{Name: scCertGateway, Port: certs.ports[certClusterGateway], ForwardClientCert: "ALWAYS_FORWARD_ONLY", Plugin: plugin(xfcc)},
		{Name: scCertEdgeAppend, TLS: server(true), ForwardClientCert: "SANITIZE_SET", Upstream: certClusterMeshAppend},
		{Name: scCertEdgeForward, TLS: server(true), ForwardClientCert: "SANITIZE_SET", Upstream: certClusterMeshForward},
		{Name: scCertMeshAppend, Port: certs.ports[certClusterMeshAppend], TLS: server(true), ForwardClientCert: "APPEND_FORWARD", Plugin: plugin(xfcc)},
		{Name: scCertMeshForward, Port: certs.ports[certClusterMeshForward], TLS: server(true), ForwardClientCert: "FORWARD_ONLY", Plugin: plugin(xfcc)},
	}
}

// certClient is an HTTP client that trusts the suite's CA and presents the
// named client certificate ("" for none). Each has its own connections, so a
// request never rides on another certificate's connection.
func certClient(t *testing.T, name string) *http.Client {
	t.Helper()
	certs.mu.Lock()
	defer certs.mu.Unlock()
	if c, ok := certs.clients[name]; ok {
		return c
	}
	config := &tls.Config{RootCAs: certs.pki.Pool()}
	if name != "" {
		cert := certs.pki.Clients[name]
		if cert == nil {
			cert = certs.other.Clients[name]
		}
		if cert == nil {
			t.Fatalf("no client certificate %q", name)
		}
		// Sent whatever CAs the server names: Go's client would otherwise
		// keep another CA's certificate to itself.
		config.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert.TLS, nil }
	}
	c := &http.Client{
		Timeout:       20 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: config},
		CheckRedirect: client.CheckRedirect,
	}
	if certs.clients == nil {
		certs.clients = map[string]*http.Client{}
	}
	certs.clients[name] = c
	return c
}

// hashOf is a client certificate's hex SHA-256, as in XFCC's Hash.
func hashOf(name string) string { return certs.pki.Clients[name].SHA256Hex() }

// boundTo issues a token bound to the named client certificate.
func boundTo(name string, o fixtures.TokenOptions) string {
	cert := certs.pki.Clients[name]
	if cert == nil {
		cert = certs.other.Clients[name]
	}
	o.CertThumbprint = cert.Thumbprint()
	return suite.ids.Issue(o)
}

const invalidTokenChallenge = `Bearer realm="api", error="invalid_token"`

// expectCertAnswer checks a request's outcome: with admitted, 200 and the
// upstream got the token's JWT once; else the filter's 401 invalid_token and
// no upstream request.
func expectCertAnswer(t *testing.T, r result, tok string, admitted bool) {
	t.Helper()
	if !admitted {
		expectLocal(t, r, http.StatusUnauthorized, body401)
		if got := r.header.Values("WWW-Authenticate"); len(got) != 1 || got[0] != invalidTokenChallenge {
			t.Errorf("WWW-Authenticate = %q, want [%s]", got, invalidTokenChallenge)
		}
		return
	}
	if r.status != http.StatusOK || len(r.upstream) != 1 {
		t.Fatalf("status %d, %d upstream requests (body %q); want 200 and 1", r.status, len(r.upstream), r.body)
	}
	jwt := suite.ids.JWTOf(tok)
	if got := r.upstream[0].Header.Values("Authorization"); len(got) != 1 || jwt == "" || got[0] != "Bearer "+jwt {
		t.Errorf("the upstream's Authorization is not [Bearer <the IdS's JWT>] (%d values)", len(got))
	}
}

// TestCertificateBound: a token bound to a client certificate is admitted
// only with that certificate, from the connection or from the XFCC the edge
// set; an unbound token passes unless every token must be bound; a token
// bound to a DPoP key is never admitted as Bearer. Whatever XFCC a client
// sends counts only where an edge in front replaced it.
func TestCertificateBound(t *testing.T) {
	alice, bob := hashOf("alice"), hashOf("bob")
	xfccOf := func(v string) http.Header { return http.Header{"X-Forwarded-Client-Cert": {v}} }
	for _, tc := range []struct {
		name     string
		scenario string
		token    func() string
		cert     string      // the client certificate presented ("" for none)
		header   http.Header // sent besides Authorization
		admitted bool
	}{
		// The certificate of the connection.
		{"bound, its certificate", scCertConn, aliceToken, "alice", nil, true},
		{"bound, another certificate", scCertConn, aliceToken, "bob", nil, false},
		{"bound, no certificate", scCertConn, aliceToken, "", nil, false},
		{"bound, no certificate, its Hash in XFCC", scCertConn, aliceToken, "", xfccOf("Hash=" + alice), false},
		{"bound, another certificate, its Hash in XFCC", scCertConn, aliceToken, "bob", xfccOf("Hash=" + alice), false},
		{"unbound, a certificate", scCertConn, unboundToken, "bob", nil, true},
		{"unbound, no certificate", scCertConn, unboundToken, "", nil, true},
		{"bound to a DPoP key, as Bearer", scCertConn, dpopToken, "alice", nil, false},
		{"bound to a DPoP key and the certificate, as Bearer", scCertConn, func() string {
			return boundTo("alice", fixtures.TokenOptions{JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"})
		}, "alice", nil, false},

		// require_certificate_bound.
		{"required, bound, its certificate", scCertOnly, aliceToken, "alice", nil, true},
		{"required, unbound, a certificate", scCertOnly, unboundToken, "alice", nil, false},
		{"required, unbound, no certificate", scCertOnly, unboundToken, "", nil, false},

		// jwt_member: cnf in the JWT and beside it, or beside it only.
		{"member, bound, its certificate", scCertMember, memberToken(false), "alice", nil, true},
		{"member, bound, another certificate", scCertMember, memberToken(false), "bob", nil, false},
		{"member, bound beside the JWT, its certificate", scCertMember, memberToken(true), "alice", nil, true},
		{"member, bound beside the JWT, another certificate", scCertMember, memberToken(true), "bob", nil, false},
		{"member, bound beside the JWT, no certificate", scCertMember, memberToken(true), "", nil, false},

		// Any issuer: the certificate the token is bound to, whoever signed it.
		{"any issuer, bound to another CA's certificate, it", scCertAnyIssuer, carolToken, "carol", nil, true},
		{"any issuer, bound to another CA's certificate, another", scCertAnyIssuer, carolToken, "alice", nil, false},
		{"any issuer, bound, another CA's certificate", scCertAnyIssuer, aliceToken, "carol", nil, false},

		// Plain HTTP: no certificate to read.
		{"plain HTTP, bound", scDefault, aliceToken, "", nil, false},

		// An edge that sets XFCC itself: what the client sends is replaced.
		{"edge, its certificate, another Hash sent", scCertEdge, aliceToken, "alice", xfccOf("Hash=" + bob), true},
		{"edge, another certificate, its Hash sent", scCertEdge, aliceToken, "bob", xfccOf("Hash=" + alice), false},
		{"edge, no certificate, its Hash sent", scCertEdge, aliceToken, "", xfccOf("Hash=" + alice), false},
		{"edge, unbound, no certificate", scCertEdge, unboundToken, "", nil, true},

		// A TLS terminator (SANITIZE_SET) in front of the gateway.
		{"terminator, its certificate", scCertTerminator, aliceToken, "alice", nil, true},
		{"terminator, its certificate, another Hash sent", scCertTerminator, aliceToken, "alice", xfccOf("Hash=" + bob), true},
		{"terminator, another certificate", scCertTerminator, aliceToken, "bob", nil, false},
		{"terminator, another certificate, its Hash sent", scCertTerminator, aliceToken, "bob", xfccOf("Hash=" + alice), false},

		// The gateway trusts the XFCC it gets: the Hash of its last element.
		{"gateway, its Hash", scCertGateway, aliceToken, "", xfccOf("Hash=" + alice), true},
		{"gateway, its Hash among other pairs", scCertGateway, aliceToken, "", xfccOf(`By=spiffe://edge;Hash=` + alice + `;Subject="CN=alice,O=x";URI=;DNS=a`), true},
		{"gateway, another Hash", scCertGateway, aliceToken, "", xfccOf("Hash=" + bob), false},
		{"gateway, no XFCC", scCertGateway, aliceToken, "", nil, false},
		{"gateway, its Hash in the last element", scCertGateway, aliceToken, "", xfccOf("Hash=" + bob + ",Hash=" + alice), true},
		{"gateway, its Hash in an earlier element", scCertGateway, aliceToken, "", xfccOf("Hash=" + alice + ",Hash=" + bob), false},
		// Envoy joins XFCC header lines with commas: the last line's element is last.
		{"gateway, its Hash in the last of two lines", scCertGateway, aliceToken, "", http.Header{"X-Forwarded-Client-Cert": {"Hash=" + bob, "Hash=" + alice}}, true},
		{"gateway, its Hash in the first of two lines", scCertGateway, aliceToken, "", http.Header{"X-Forwarded-Client-Cert": {"Hash=" + alice, "Hash=" + bob}}, false},
		{"gateway, its Hash inside a quoted Subject", scCertGateway, aliceToken, "", xfccOf(`Hash=` + bob + `;Subject="CN=x,Hash=` + alice + `"`), false},
		{"gateway, two Hashes in the last element", scCertGateway, aliceToken, "", xfccOf("Hash=" + alice + ";Hash=" + alice), false},
		{"gateway, a short Hash", scCertGateway, aliceToken, "", xfccOf("Hash=" + alice[:62]), false},
		{"gateway, unbound, no XFCC", scCertGateway, unboundToken, "", nil, true},

		// Behind a hop over mutual TLS. A proxy that appends its peer's
		// element (an Istio sidecar by default) has the edge's certificate
		// last: a bound token never passes there. One that passes the
		// edge's header on works, and believes whatever XFCC any peer with
		// a certificate of the CA sends it.
		{"appending hop, its certificate", scCertEdgeAppend, aliceToken, "alice", nil, false},
		{"forwarding hop, its certificate", scCertEdgeForward, aliceToken, "alice", nil, true},
		{"forwarding hop, another certificate", scCertEdgeForward, aliceToken, "bob", nil, false},
		{"forwarding hop, another certificate, its Hash sent", scCertEdgeForward, aliceToken, "bob", xfccOf("Hash=" + alice), false},
		{"forwarding proxy, a peer's XFCC is believed", scCertMeshForward, aliceToken, "edge", xfccOf("Hash=" + alice), true},
		{"forwarding proxy, a peer without XFCC", scCertMeshForward, aliceToken, "edge", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.token()
			header := bearer(tok)
			for k, v := range tc.header {
				header[k] = v
			}
			r := call(t, certClient(t, tc.cert), tc.scenario, http.MethodGet, header, "")
			expectCertAnswer(t, r, tok, tc.admitted)
		})
	}
}

// TestCertificateBoundPerRoute: require_certificate_bound in a route rule
// and client_certificate_source in route metadata apply on their routes
// only; the same token, cached once, is judged by each route's policy.
func TestCertificateBoundPerRoute(t *testing.T) {
	alice, bob := hashOf("alice"), hashOf("bob")
	bound, unbound := aliceToken(), unboundToken()
	for _, tc := range []struct {
		name, prefix, token, cert string
		xfcc                      string // sent by the client
		admitted                  bool
	}{
		{"rule, unbound, a certificate", "/bound-only/", unbound, "alice", "", false},
		{"rule, bound, its certificate", "/bound-only/", bound, "alice", "", true},
		{"top level, unbound, a certificate", "/", unbound, "alice", "", true},
		{"metadata, bound, its Hash, no certificate", "/from-xfcc/", bound, "", "Hash=" + alice, true},
		{"metadata, bound, another Hash, its certificate", "/from-xfcc/", bound, "alice", "Hash=" + bob, false},
		{"metadata, unbound, no certificate", "/from-xfcc/", unbound, "", "", true},
		{"top level, bound, its Hash, no certificate", "/", bound, "", "Hash=" + alice, false},
		{"top level, bound, its certificate, another Hash", "/", bound, "alice", "Hash=" + bob, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := strings.TrimSuffix(tc.prefix, "/") + uniquePath(t)
			req, err := http.NewRequest(http.MethodGet, suite.envoy.URL(scCertRoutes)+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header = bearer(tc.token)
			if tc.xfcc != "" {
				req.Header.Set("X-Forwarded-Client-Cert", tc.xfcc)
			}
			r, _ := roundTrip(t, certClient(t, tc.cert), req, path)
			expectCertAnswer(t, r, tc.token, tc.admitted)
		})
	}
	if n := len(suite.ids.IntrospectionsOf(bound)) + len(suite.ids.IntrospectionsOf(unbound)); n != 2 {
		t.Errorf("%d introspections for the two tokens, want 2 (one each, then the cache)", n)
	}
}

func aliceToken() string   { return boundTo("alice", fixtures.TokenOptions{}) }
func carolToken() string   { return boundTo("carol", fixtures.TokenOptions{}) }
func unboundToken() string { return suite.ids.Issue(fixtures.TokenOptions{}) }
func dpopToken() string {
	return suite.ids.Issue(fixtures.TokenOptions{JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"})
}

// memberToken issues a token bound to alice's certificate that the IdS
// answers in Keycloak's mode, with cnf in the JWT and beside it, or
// (outside) beside it only.
func memberToken(outside bool) func() string {
	return func() string {
		return boundTo("alice", fixtures.TokenOptions{JWTMember: "jwt", CnfOutsideJWT: outside})
	}
}

// TestCertificateBoundOnCacheHits: the binding is checked on every request,
// cache hits included: a token admitted with its certificate is refused with
// another or none, without a new introspection, and admitted again with its
// own. A binding that came beside the JWT only is not cached: each request
// introspects.
func TestCertificateBoundOnCacheHits(t *testing.T) {
	for _, tc := range []struct {
		name     string
		scenario string
		token    string
		calls    int64 // introspections per admitted request after the first
	}{
		{"connection", scCertConn, aliceToken(), 0},
		{"x-forwarded-client-cert", scCertEdge, aliceToken(), 0},
		{"bound beside the JWT", scCertMember, memberToken(true)(), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i, step := range []struct {
				cert     string
				admitted bool
				calls    int64
			}{
				{"alice", true, 1},
				{"bob", false, tc.calls},
				{"", false, tc.calls},
				{"alice", true, tc.calls},
			} {
				var r result
				calls := introspectionDelta(func() { r = call(t, certClient(t, step.cert), tc.scenario, http.MethodGet, bearer(tc.token), "") })
				expectCertAnswer(t, r, tc.token, step.admitted)
				if calls != step.calls {
					t.Errorf("request %d (certificate %q): %d introspections, want %d", i+1, step.cert, calls, step.calls)
				}
			}
		})
	}
}

// TestCertificateBoundRefusalsLogged: after the tests above, Envoy's debug
// log names each kind of refusal (the token in it only as a fingerprint,
// which TestNoSecretsInLog checks).
func TestCertificateBoundRefusalsLogged(t *testing.T) {
	reasons := []string{
		"bound to a client certificate, and the request came without one",
		"bound to another client certificate",
		"not bound to a client certificate, and require_certificate_bound is set",
		"bound to a DPoP key, and came as a Bearer token",
	}
	deadline := time.Now().Add(5 * time.Second) // Envoy writes its log a moment later
	for {
		log, err := suite.envoy.Log()
		if err != nil {
			t.Fatal(err)
		}
		var missing []string
		for _, r := range reasons {
			if !strings.Contains(log, r) {
				missing = append(missing, r)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Envoy's log lacks the refusals %q", missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCertificateBindingUnreadable: a binding that cannot be read (an
// x5t#S256 that is not the base64url of 32 bytes), in the JWT or beside it,
// is the identity server's fault: 502, never an unbound token.
func TestCertificateBindingUnreadable(t *testing.T) {
	short := certs.pki.Clients["alice"].Thumbprint()[:42]
	for _, tc := range []struct {
		name     string
		scenario string
		opts     fixtures.TokenOptions
	}{
		{"in the JWT, too short", scCertConn, fixtures.TokenOptions{CertThumbprint: short}},
		{"in the JWT, hex", scCertConn, fixtures.TokenOptions{CertThumbprint: hashOf("alice")}},
		{"beside the JWT, too short", scCertMember, fixtures.TokenOptions{CertThumbprint: short, CnfOutsideJWT: true, JWTMember: "jwt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, certClient(t, "alice"), tc.scenario, http.MethodGet, bearer(suite.ids.Issue(tc.opts)), "")
			expectLocal(t, r, http.StatusBadGateway, body5xx)
		})
	}
}

// TestCertificateBoundConcurrent: requests that carry the same fresh bound
// token at the same moment, with its certificate, another one or none, on
// new connections over both workers, share one introspection, and each is
// judged by its own connection (or its own XFCC): the requests that wait for
// another's introspection are checked against their own certificate, not the
// one of the request that made the call.
func TestCertificateBoundConcurrent(t *testing.T) {
	const n = 12 // per kind of request
	alice, bob := hashOf("alice"), hashOf("bob")
	type kind struct {
		cert, xfcc string
		status     int
	}
	for _, tc := range []struct {
		scenario string
		kinds    []kind
	}{
		{scCertConn, []kind{{"alice", "", 200}, {"bob", "", 401}, {"", "", 401}}},
		{scCertGateway, []kind{{"", "Hash=" + alice, 200}, {"", "Hash=" + bob, 401}, {"", "", 401}}},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			tok := boundTo("alice", fixtures.TokenOptions{Delay: 150 * time.Millisecond})
			var start, done sync.WaitGroup
			start.Add(1)
			statuses := make([][]int, len(tc.kinds))
			for k, kd := range tc.kinds {
				statuses[k] = make([]int, n)
				transport := certClient(t, kd.cert).Transport.(*http.Transport).Clone()
				transport.DisableKeepAlives = true
				c := &http.Client{Transport: transport, Timeout: 20 * time.Second}
				for i := range n {
					done.Add(1)
					go func() {
						defer done.Done()
						req, _ := http.NewRequest(http.MethodGet, suite.envoy.URL(tc.scenario)+"/concurrent-bound", nil)
						req.Header.Set("Authorization", "Bearer "+tok)
						if kd.xfcc != "" {
							req.Header.Set("X-Forwarded-Client-Cert", kd.xfcc)
						}
						start.Wait()
						if res, err := c.Do(req); err == nil {
							statuses[k][i] = res.StatusCode
							res.Body.Close()
						}
					}()
				}
			}
			start.Done()
			done.Wait()
			for k, kd := range tc.kinds {
				for i, s := range statuses[k] {
					if s != kd.status {
						t.Errorf("certificate %q, XFCC %q, request %d: status %d, want %d", kd.cert, kd.xfcc, i, s, kd.status)
					}
				}
			}
			if got := len(suite.ids.IntrospectionsOf(tok)); got != 1 {
				t.Errorf("%d concurrent requests cost %d introspections, want 1", n*len(tc.kinds), got)
			}
		})
	}
}
