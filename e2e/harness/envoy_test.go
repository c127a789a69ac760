package harness_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
	"github.com/phantom-token/envoy-phantom-token/e2e/harness"
)

func envoyPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("ENVOY_PATH")
	if p == "" {
		t.Fatal("ENVOY_PATH is not set: run the tests with `make e2e`")
	}
	return p
}

// TestStartWithoutWasm runs Envoy through func-e with two plain listeners in
// front of the echo upstream.
func TestStartWithoutWasm(t *testing.T) {
	echo, err := fixtures.StartEcho(fixtures.AnyPort)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(echo.Close)

	ctx := context.Background()
	e, err := harness.Start(ctx, harness.Config{
		EnvoyPath: envoyPath(t),
		Dir:       t.TempDir(),
		Clusters:  map[string]string{"echo": echo.Addr.String()},
		Upstream:  "echo",
		Scenarios: []harness.Scenario{{Name: "a"}, {Name: "b"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})

	for _, name := range []string{"a", "b"} {
		res, err := http.Get(e.URL(name) + "/plain/" + name)
		if err != nil {
			t.Fatal(err)
		}
		var seen fixtures.Request
		err = json.NewDecoder(res.Body).Decode(&seen)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK || seen.Path != "/plain/"+name {
			t.Fatalf("listener %s: status %d, echo %+v, err %v", name, res.StatusCode, seen, err)
		}
	}
	if got := len(echo.Requests("/plain/")); got != 2 {
		t.Errorf("echo saw %d requests, want 2", got)
	}
	n, err := e.Counter(ctx, "http.a.downstream_rq_total")
	if err != nil || n != 1 {
		t.Errorf("http.a.downstream_rq_total = %d, %v; want 1", n, err)
	}
	pid, err := e.PID()
	if err != nil {
		t.Fatal(err)
	}
	if exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe")); err != nil || filepath.Base(exe) != filepath.Base(envoyPath(t)) {
		t.Errorf("PID %d runs %q (%v), want %s", pid, exe, err, envoyPath(t))
	}
	if log, err := e.Log(); err != nil || !strings.Contains(log, "starting main dispatch loop") {
		t.Errorf("log lacks Envoy's start line (err %v):\n%s", err, log)
	}
}

// TestStartWithRoutes: a scenario's own route table and path handling reach
// Envoy: only its routes match (a case-insensitive exact path, a prefix), dot
// segments and runs of slashes are resolved before matching and forwarding,
// and an encoded slash is refused.
func TestStartWithRoutes(t *testing.T) {
	echo, err := fixtures.StartEcho(fixtures.AnyPort)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(echo.Close)
	meta := map[string]any{"phantom_token": map[string]any{"realm": "r", "required_scopes": []string{"a"}}}
	e, err := harness.Start(context.Background(), harness.Config{
		EnvoyPath: envoyPath(t),
		Dir:       t.TempDir(),
		Clusters:  map[string]string{"echo": echo.Addr.String()},
		Upstream:  "echo",
		Scenarios: []harness.Scenario{{Name: "routed", VirtualHostMetadata: meta, Routes: []harness.Route{
			{Name: "a", Path: "/a", CaseInsensitive: true, Metadata: meta},
			{Name: "b", Prefix: "/b/", FilterDisabled: true},
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	host := strings.TrimPrefix(e.URL("routed"), "http://")
	for _, c := range []struct {
		target   string
		status   int
		upstream string
	}{
		{"/a", 200, "/a"},
		{"/A", 200, "/A"},
		{"/x/../a", 200, "/a"},
		{"/b/c", 200, "/b/c"},
		{"//b//c", 200, "/b/c"},
		{"/c", 404, ""},
		{"/a/x", 404, ""},
		{"/%2Fb/c", 400, ""},
		{"/b%2Fc", 400, ""},
	} {
		before := echo.Count()
		conn, err := net.DialTimeout("tcp", host, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = conn.Write([]byte("GET " + c.target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s: %v", c.target, err)
		}
		var seen fixtures.Request
		if c.upstream != "" {
			err = json.NewDecoder(res.Body).Decode(&seen)
		}
		res.Body.Close()
		conn.Close()
		if res.StatusCode != c.status || err != nil || seen.Path != c.upstream || echo.Count()-before != min(len(c.upstream), 1) {
			t.Errorf("%s: status %d, upstream path %q (err %v); want %d, %q", c.target, res.StatusCode, seen.Path, err, c.status, c.upstream)
		}
	}
}

// TestStartFailure: a wasm filter whose module does not exist makes Envoy exit,
// and Start reports it with the log.
func TestStartFailure(t *testing.T) {
	dir := t.TempDir()
	_, err := harness.Start(context.Background(), harness.Config{
		EnvoyPath: envoyPath(t),
		WasmPath:  filepath.Join(dir, "missing.wasm"),
		Dir:       dir,
		Clusters:  map[string]string{"echo": "127.0.0.1:1"},
		Upstream:  "echo",
		Scenarios: []harness.Scenario{{Name: "broken", Plugin: `{}`}},
	})
	var se *harness.StartupError
	if !errors.As(err, &se) || !se.Exited {
		t.Fatalf("Start error = %v, want a StartupError for an exited Envoy", err)
	}
	if !strings.Contains(se.Log, "missing.wasm") {
		t.Errorf("log does not name the missing module:\n%s", se.Log)
	}
}

// TestStartLDSRejectsOneListener: through LDS, a listener Envoy refuses is
// missing while the others serve.
func TestStartLDSRejectsOneListener(t *testing.T) {
	dir := t.TempDir()
	_, err := harness.Start(context.Background(), harness.Config{
		EnvoyPath:       envoyPath(t),
		WasmPath:        filepath.Join(dir, "missing.wasm"),
		Dir:             dir,
		Clusters:        map[string]string{"echo": "127.0.0.1:1"},
		Upstream:        "echo",
		Scenarios:       []harness.Scenario{{Name: "fine"}, {Name: "broken", Plugin: `{}`}},
		ListenersViaLDS: true,
	})
	var se *harness.StartupError
	if !errors.As(err, &se) || se.Exited || len(se.Missing) != 1 || se.Missing[0] != "broken" {
		t.Fatalf("Start error = %v, want only listener broken missing", err)
	}
}

// TestStartupCause: the reasons a person on a shared machine meets are named
// from Envoy's log.
func TestStartupCause(t *testing.T) {
	for _, c := range []struct {
		name, log, want string
	}{
		{"listener port in use",
			"[critical][main] error initializing config '/x/envoy.yaml': cannot bind '127.0.0.1:8080': Address already in use\n",
			"address 127.0.0.1:8080 is already in use"},
		{"other bind failure",
			"cannot bind '10.9.9.9:80': Cannot assign requested address\n",
			"cannot bind 10.9.9.9:80: Cannot assign requested address"},
		{"hot-restart base id taken",
			"[critical][main] unable to bind domain socket with base_id=0, id=0, errno=98 (see --base-id option)\n",
			"--disable-hot-restart"},
		{"anything else", "[critical][main] error initializing config: bad yaml\n", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := harness.StartupCause(c.log)
			if c.want == "" && got != "" || !strings.Contains(got, c.want) {
				t.Errorf("StartupCause = %q, want it to contain %q", got, c.want)
			}
		})
	}
}

// TestStartFileNamesThePortInUse: an Envoy whose listener's port is taken
// exits, and the error says which address is in use and shows the end of
// Envoy's log.
func TestStartFileNamesThePortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", fixtures.AnyPort)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	dir := t.TempDir()
	config := filepath.Join(dir, "envoy.yaml")
	yaml := `admin: {address: {socket_address: {address: 127.0.0.1, port_value: 0}}}
static_resources:
  listeners:
  - name: taken
    address: {socket_address: {address: 127.0.0.1, port_value: ` + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) + `}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: taken
          cluster: none
  clusters:
  - {name: none, type: STATIC, connect_timeout: 1s}
`
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = harness.StartFile(context.Background(), harness.FileConfig{EnvoyPath: envoyPath(t), ConfigPath: config, Dir: dir})
	var se *harness.StartupError
	if !errors.As(err, &se) || !se.Exited {
		t.Fatalf("StartFile error = %v, want a StartupError for an exited Envoy", err)
	}
	msg := err.Error()
	for _, want := range []string{"address " + addr + " is already in use", "last lines of Envoy's log (" + se.LogPath + ")", "Address already in use"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not say %q:\n%s", want, msg)
		}
	}
	if n := strings.Count(msg, "\n"); n > 21 {
		t.Errorf("error has %d lines, want the cause and at most 20 of the log", n+1)
	}
}

// TestStartBesideAnotherEnvoy: an Envoy started without
// --disable-hot-restart holds the default hot-restart base id (0); the
// harness's Envoys, `make run`'s among them, start beside it.
func TestStartBesideAnotherEnvoy(t *testing.T) {
	dir := t.TempDir()
	addrPath := filepath.Join(dir, "admin-address.txt")
	other := exec.Command(envoyPath(t), "-c", writeAdminOnly(t), "--base-id", "0", "--admin-address-path", addrPath)
	var out strings.Builder
	other.Stdout, other.Stderr = &out, &out
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- other.Wait() }()
	t.Cleanup(func() {
		_ = other.Process.Kill()
		<-exited
	})
	// Base id 0 is held once this Envoy runs, or when it could not take it
	// because another Envoy on the machine already holds it.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(addrPath); err == nil && len(b) > 0 {
			break
		}
		select {
		case err := <-exited:
			exited <- err
			if !strings.Contains(out.String(), "unable to bind domain socket with base_id=0") {
				t.Fatalf("the Envoy holding base id 0 exited (%v):\n%s", err, out.String())
			}
		default:
		}
		if strings.Contains(out.String(), "unable to bind domain socket with base_id=0") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Envoy holding base id 0 is not ready:\n%s", out.String())
		}
	}
	e, err := harness.StartFile(context.Background(), harness.FileConfig{
		EnvoyPath: envoyPath(t), ConfigPath: writeAdminOnly(t), Dir: t.TempDir(),
	})
	if err != nil {
		t.Fatalf("an Envoy beside the one holding base id 0: %v", err)
	}
	if err := e.Stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// writeAdminOnly writes a bootstrap with only an admin server on a free port.
func writeAdminOnly(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "admin.yaml")
	if err := os.WriteFile(path, []byte("admin: {address: {socket_address: {address: 127.0.0.1, port_value: 0}}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestStartWithTLS: listeners that terminate TLS with client certificates
// (required, optional), and what x-forwarded-client-cert (XFCC) the upstream
// gets with each setting: SANITIZE_SET replaces a client's XFCC with the
// connection's certificate (Hash = its hex SHA-256) or, without one, removes
// it; Envoy's default removes it; on plain HTTP FORWARD_ONLY and
// APPEND_FORWARD remove it too and only ALWAYS_FORWARD_ONLY passes it on; a
// TLS terminator with SANITIZE_SET in front of an ALWAYS_FORWARD_ONLY
// gateway delivers the terminator's element only; behind such an edge, a
// proxy that the edge reaches over mutual TLS (as Istio's gateway reaches a
// sidecar) appends an element for the edge's own certificate with
// APPEND_FORWARD, and passes the edge's header on with FORWARD_ONLY. With
// AcceptUntrusted a certificate of another CA is let in and its Hash
// forwarded. Without a client CA no certificate is asked for. A client
// certificate from another CA, or none where one is required, fails the
// handshake.
func TestStartWithTLS(t *testing.T) {
	echo, err := fixtures.StartEcho(fixtures.AnyPort)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(echo.Close)
	dir := t.TempDir()
	pki, err := fixtures.NewPKI(dir, "e2e", "alice", "bob", "edge")
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := fixtures.NewPKI(dir, "rogue", "alice")
	if err != nil {
		t.Fatal(err)
	}
	var ports [3]int // the gateway behind the terminator, two behind a mutual TLS hop
	for i := range ports {
		if ports[i], err = fixtures.FreePort(); err != nil {
			t.Fatal(err)
		}
	}
	gatewayPort := ports[0]
	edge := harness.ClusterTLS{CAFile: pki.CAFile, CertFile: pki.Clients["edge"].CertFile, KeyFile: pki.Clients["edge"].KeyFile}
	server := func(required bool) *harness.TLS {
		return &harness.TLS{CertFile: pki.Server.CertFile, KeyFile: pki.Server.KeyFile, ClientCAFile: pki.CAFile, RequireClientCert: required}
	}
	e, err := harness.Start(context.Background(), harness.Config{
		EnvoyPath: envoyPath(t),
		Dir:       dir,
		Clusters: map[string]string{
			"echo":         echo.Addr.String(),
			"gateway":      "127.0.0.1:" + strconv.Itoa(ports[0]),
			"mesh-append":  "127.0.0.1:" + strconv.Itoa(ports[1]),
			"mesh-forward": "127.0.0.1:" + strconv.Itoa(ports[2]),
		},
		ClusterTLS: map[string]harness.ClusterTLS{"mesh-append": edge, "mesh-forward": edge},
		Upstream:   "echo",
		Scenarios: []harness.Scenario{
			{Name: "required", TLS: server(true), ForwardClientCert: "SANITIZE_SET"},
			{Name: "optional", TLS: server(false), ForwardClientCert: "SANITIZE_SET"},
			{Name: "default", TLS: server(false)},
			{Name: "server-only", TLS: &harness.TLS{CertFile: pki.Server.CertFile, KeyFile: pki.Server.KeyFile}, ForwardClientCert: "SANITIZE_SET"},
			{Name: "untrusted", TLS: &harness.TLS{CertFile: pki.Server.CertFile, KeyFile: pki.Server.KeyFile, ClientCAFile: pki.CAFile, AcceptUntrusted: true}, ForwardClientCert: "SANITIZE_SET"},
			{Name: "forward-only", ForwardClientCert: "FORWARD_ONLY"},
			{Name: "append-forward", ForwardClientCert: "APPEND_FORWARD"},
			{Name: "always-forward-only", ForwardClientCert: "ALWAYS_FORWARD_ONLY"},
			{Name: "terminator", TLS: server(true), ForwardClientCert: "SANITIZE_SET", Upstream: "gateway"},
			{Name: "gateway", Port: gatewayPort, ForwardClientCert: "ALWAYS_FORWARD_ONLY"},
			// An edge that reaches the next proxy over mutual TLS with a
			// certificate of its own, as Istio's gateway reaches a sidecar.
			{Name: "edge-append", TLS: server(true), ForwardClientCert: "SANITIZE_SET", Upstream: "mesh-append"},
			{Name: "edge-forward", TLS: server(true), ForwardClientCert: "SANITIZE_SET", Upstream: "mesh-forward"},
			{Name: "mesh-append", Port: ports[1], TLS: server(true), ForwardClientCert: "APPEND_FORWARD"},
			{Name: "mesh-forward", Port: ports[2], TLS: server(true), ForwardClientCert: "FORWARD_ONLY"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	if u := e.URL("required"); !strings.HasPrefix(u, "https://127.0.0.1:") {
		t.Errorf("URL of a TLS listener %q", u)
	}
	if u := e.URL("gateway"); u != "http://127.0.0.1:"+strconv.Itoa(gatewayPort) {
		t.Errorf("URL of the gateway %q, want its port %d", u, gatewayPort)
	}

	const forged = "By=spiffe://evil;Hash=" + "0000000000000000000000000000000000000000000000000000000000000000"
	alice, bob := pki.Clients["alice"].SHA256Hex(), pki.Clients["bob"].SHA256Hex()
	for _, tc := range []struct {
		name, listener string
		cert           *fixtures.Cert // the client's certificate; nil for none
		xfcc           string         // sent by the client
		hashes         []string       // of the XFCC elements the upstream gets; nil for no XFCC
		handshake      bool           // the TLS handshake (or the request) fails
	}{
		{"required, alice", "required", pki.Clients["alice"], "", []string{alice}, false},
		{"required, bob, forged XFCC replaced", "required", pki.Clients["bob"], forged, []string{bob}, false},
		{"required, no certificate", "required", nil, "", nil, true},
		{"required, another CA's certificate", "required", rogue.Clients["alice"], "", nil, true},
		{"optional, alice", "optional", pki.Clients["alice"], forged, []string{alice}, false},
		{"optional, no certificate, forged XFCC removed", "optional", nil, forged, nil, false},
		{"optional, another CA's certificate", "optional", rogue.Clients["alice"], "", nil, true},
		{"untrusted, another CA's certificate", "untrusted", rogue.Clients["alice"], "", []string{rogue.Clients["alice"].SHA256Hex()}, false},
		{"untrusted, no certificate", "untrusted", nil, forged, nil, false},
		{"server-only asks for no certificate", "server-only", pki.Clients["alice"], forged, nil, false},
		{"default sanitises", "default", pki.Clients["alice"], forged, nil, false},
		{"forward-only on plain HTTP removes it", "forward-only", nil, forged, nil, false},
		{"append-forward on plain HTTP removes it", "append-forward", nil, forged, nil, false},
		{"always-forward-only passes it on", "always-forward-only", nil, forged, []string{strings.Repeat("0", 64)}, false},
		{"terminator then gateway", "terminator", pki.Clients["bob"], forged, []string{bob}, false},
		{"edge then an appending proxy over mutual TLS", "edge-append", pki.Clients["bob"], forged, []string{bob, pki.Clients["edge"].SHA256Hex()}, false},
		{"edge then a forwarding proxy over mutual TLS", "edge-forward", pki.Clients["bob"], forged, []string{bob}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			config := &tls.Config{RootCAs: pki.Pool()}
			if tc.cert != nil {
				// Sent whatever CAs the server names: Go's client would
				// otherwise keep another CA's certificate to itself.
				config.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tc.cert.TLS, nil }
			}
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: config}}
			defer c.CloseIdleConnections()
			path := "/tls/" + strings.ReplaceAll(tc.name, " ", "-")
			req, _ := http.NewRequest(http.MethodGet, e.URL(tc.listener)+path, nil)
			if tc.xfcc != "" {
				req.Header.Set("X-Forwarded-Client-Cert", tc.xfcc)
			}
			res, err := c.Do(req)
			if tc.handshake {
				if err == nil {
					res.Body.Close()
					t.Fatalf("status %d, want a failed handshake", res.StatusCode)
				}
				if n := len(echo.Requests(path)); n != 0 {
					t.Errorf("the upstream got %d requests", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			seen := echo.Requests(path)
			if res.StatusCode != http.StatusOK || len(seen) != 1 {
				t.Fatalf("status %d, %d upstream requests", res.StatusCode, len(seen))
			}
			values := seen[0].Header.Values("X-Forwarded-Client-Cert")
			var hashes []string
			for _, v := range values {
				for _, el := range fixtures.XFCC(v) {
					hashes = append(hashes, el["Hash"])
				}
			}
			if fmt.Sprint(hashes) != fmt.Sprint(tc.hashes) {
				t.Errorf("XFCC %q: hashes %v, want %v", values, hashes, tc.hashes)
			}
			if len(values) == 1 && tc.cert != nil && len(tc.hashes) > 0 {
				el := fixtures.XFCC(values[0])[0]
				if want := "CN=" + tc.cert.TLS.Leaf.Subject.CommonName + ",O=phantom-token e2e"; el["Subject"] != want {
					t.Errorf("XFCC Subject %q, want %q", el["Subject"], want)
				}
				if _, ok := el["Cert"]; ok {
					t.Errorf("XFCC carries the certificate: %q", values)
				}
			}
			t.Logf("XFCC %q", values)
		})
	}
}
