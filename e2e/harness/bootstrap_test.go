package harness

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestBootstrapBuffersAndBreakers: the bootstrap carries
// http.async_response_buffer_limit in a static runtime layer (the default, a
// given value, or none) and the circuit breakers given per cluster.
func TestBootstrapBuffersAndBreakers(t *testing.T) {
	base := Config{Clusters: map[string]string{"echo": "127.0.0.1:1", "ids": "127.0.0.1:2"}, Upstream: "echo"}
	limit := func(cfg Config) any {
		t.Helper()
		b, _, err := Bootstrap(cfg, "")
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			LayeredRuntime struct {
				Layers []struct {
					StaticLayer map[string]any `json:"static_layer"`
				} `json:"layers"`
			} `json:"layered_runtime"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		if len(v.LayeredRuntime.Layers) == 0 {
			return nil
		}
		return v.LayeredRuntime.Layers[0].StaticLayer["http.async_response_buffer_limit"]
	}
	for _, tc := range []struct {
		set  int
		want any
	}{{0, float64(DefaultAsyncResponseBufferLimit)}, {1 << 20, float64(1 << 20)}, {-1, nil}} {
		cfg := base
		cfg.AsyncResponseBufferLimit = tc.set
		if got := limit(cfg); got != tc.want {
			t.Errorf("AsyncResponseBufferLimit %d: runtime value %v, want %v", tc.set, got, tc.want)
		}
	}

	cfg := base
	cfg.CircuitBreakers = map[string]CircuitBreakers{"ids": {MaxConnections: 3, MaxPendingRequests: 4, MaxRequests: 5}}
	b, _, err := Bootstrap(cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"max_connections": 3`, `"max_pending_requests": 4`, `"max_requests": 5`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("bootstrap lacks %s", want)
		}
	}
	if strings.Count(string(b), "circuit_breakers") != 1 {
		t.Errorf("want circuit breakers on the ids cluster only:\n%s", b)
	}
	cfg.CircuitBreakers = map[string]CircuitBreakers{"nope": {MaxRequests: 1}}
	if _, _, err := Bootstrap(cfg, ""); err == nil {
		t.Error("circuit breakers for an unknown cluster accepted")
	}
}

// TestVMFailures: the lines Envoy writes when a VM traps are found; the
// filter's own reports and Envoy's list of extensions are not.
func TestVMFailures(t *testing.T) {
	log := strings.Join([]string{
		`[2026-11-29 12:55:43.287][1][info][main] [source/server/server.cc:467]   envoy.wasm.runtime: envoy.wasm.runtime.null, envoy.wasm.runtime.v8`,
		`[2026-11-29 12:55:47.795][2][debug][wasm] [source/extensions/common/wasm/wasm.cc:101] Thread-Local Wasm created 4 now active`,
		`[2026-11-29 12:55:47.900][2][debug][wasm] [source/extensions/common/wasm/context.cc:1195] wasm log phantom_token: introspection call failed without a response`,
		`[2026-11-29 12:55:47.915][2][error][wasm] [source/extensions/common/wasm/wasm_vm.cc:38] Function: proxy_on_http_call_response failed: Uncaught RangeError: Maximum call stack size exceeded`,
		`Proxy-Wasm plugin in-VM backtrace:`,
		`[2026-11-29 12:55:48.000][2][error][wasm] [source/extensions/common/wasm/context.cc:1195] wasm log phantom_token: fatal error: out of memory`,
	}, "\n")
	got := VMFailures(log)
	if len(got) != 3 || !strings.Contains(got[0], "Maximum call stack") || !strings.Contains(got[2], "fatal error") {
		t.Errorf("VMFailures found %q", got)
	}
}

// TestBootstrapRoutes: a scenario with routes gets them in order (name, match,
// case sensitivity, metadata, the filter turned off) with the virtual host's
// metadata and the path handling; a scenario without keeps the one route for
// "/" and Envoy's path handling; a route needs exactly one match.
func TestBootstrapRoutes(t *testing.T) {
	meta := map[string]any{"phantom_token": map[string]any{"realm": "r"}}
	cfg := Config{Clusters: map[string]string{"echo": "127.0.0.1:1"}, Upstream: "echo", Scenarios: []Scenario{
		{Name: "plain"},
		{Name: "routed", VirtualHostMetadata: meta, Routes: []Route{
			{Name: "a", Prefix: "/a", CaseInsensitive: true, Metadata: meta},
			{Name: "b", Path: "/b", FilterDisabled: true},
			{Prefix: "/"},
		}},
	}}
	b, _, err := Bootstrap(cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		StaticResources struct {
			Listeners []struct {
				FilterChains []struct {
					Filters []struct {
						TypedConfig map[string]any `json:"typed_config"`
					} `json:"filters"`
				} `json:"filter_chains"`
			} `json:"listeners"`
		} `json:"static_resources"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	hcm := func(i int) (map[string]any, string) {
		c := v.StaticResources.Listeners[i].FilterChains[0].Filters[0].TypedConfig
		vh, _ := json.Marshal(c["route_config"].(map[string]any)["virtual_hosts"])
		return c, string(vh)
	}
	plain, plainVH := hcm(0)
	if want := `[{"domains":["*"],"name":"all","routes":[{"match":{"prefix":"/"},"route":{"cluster":"echo","timeout":"10s"}}]}]`; plainVH != want {
		t.Errorf("plain virtual hosts\n%s\nwant\n%s", plainVH, want)
	}
	for _, key := range []string{"normalize_path", "merge_slashes", "path_with_escaped_slashes_action"} {
		if _, ok := plain[key]; ok {
			t.Errorf("plain listener has %s", key)
		}
	}
	routed, routedVH := hcm(1)
	if want := `[{"domains":["*"],"metadata":{"filter_metadata":{"phantom_token":{"realm":"r"}}},"name":"all","routes":[` +
		`{"match":{"case_sensitive":false,"prefix":"/a"},"metadata":{"filter_metadata":{"phantom_token":{"realm":"r"}}},"name":"a","route":{"cluster":"echo","timeout":"10s"}},` +
		`{"match":{"path":"/b"},"name":"b","route":{"cluster":"echo","timeout":"10s"},"typed_per_filter_config":{"envoy.filters.http.wasm":{"@type":"type.googleapis.com/envoy.config.route.v3.FilterConfig","disabled":true}}},` +
		`{"match":{"prefix":"/"},"route":{"cluster":"echo","timeout":"10s"}}]}]`; routedVH != want {
		t.Errorf("routed virtual hosts\n%s\nwant\n%s", routedVH, want)
	}
	if routed["normalize_path"] != true || routed["merge_slashes"] != true || routed["path_with_escaped_slashes_action"] != "REJECT_REQUEST" {
		t.Errorf("routed listener's path handling: %v %v %v", routed["normalize_path"], routed["merge_slashes"], routed["path_with_escaped_slashes_action"])
	}

	for _, bad := range []Route{{Name: "none"}, {Name: "both", Prefix: "/", Path: "/"}} {
		cfg.Scenarios = []Scenario{{Name: "bad", Routes: []Route{bad}}}
		if _, _, err := Bootstrap(cfg, ""); err == nil || !strings.Contains(err.Error(), bad.Name) {
			t.Errorf("route %+v: err = %v, want one naming it", bad, err)
		}
	}
}

// TestBootstrapTLSAndClientCerts: a scenario with TLS gets a
// DownstreamTlsContext (client certificates asked for when a client CA is
// given: required or optional, from that CA or from any); ForwardClientCert
// sets the handling of x-forwarded-client-cert (and the details of the
// element Envoy makes, never the certificate); Upstream and Port route one
// listener to another; a scenario without them has none of these keys. A
// cluster with TLS validates its endpoint against a CA, presents a client
// certificate when it has one, and with a server name sends it as SNI and
// requires it among the certificate's DNS names.
func TestBootstrapTLSAndClientCerts(t *testing.T) {
	cfg := Config{Clusters: map[string]string{"echo": "127.0.0.1:1", "gateway": "127.0.0.1:4431"}, Upstream: "echo", Scenarios: []Scenario{
		{Name: "plain"},
		{Name: "required", TLS: &TLS{CertFile: "/s.pem", KeyFile: "/s-key.pem", ClientCAFile: "/ca.pem", RequireClientCert: true}, ForwardClientCert: "SANITIZE_SET", Upstream: "gateway"},
		{Name: "optional", TLS: &TLS{CertFile: "/s.pem", KeyFile: "/s-key.pem", ClientCAFile: "/ca.pem"}, ForwardClientCert: "APPEND_FORWARD"},
		{Name: "server-only", TLS: &TLS{CertFile: "/s.pem", KeyFile: "/s-key.pem"}},
		{Name: "gateway", Port: 4431, ForwardClientCert: "FORWARD_ONLY"},
		{Name: "untrusted", TLS: &TLS{CertFile: "/s.pem", KeyFile: "/s-key.pem", ClientCAFile: "/ca.pem", AcceptUntrusted: true}},
	}, ClusterTLS: map[string]ClusterTLS{
		"gateway": {CAFile: "/ca.pem", CertFile: "/c.pem", KeyFile: "/c-key.pem"},
		"echo":    {CAFile: "/ca.pem", ServerName: "api.internal"},
	}}
	b, _, err := Bootstrap(cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		StaticResources struct {
			Clusters []struct {
				Name            string `json:"name"`
				TransportSocket any    `json:"transport_socket"`
			} `json:"clusters"`
			Listeners []struct {
				Address      map[string]any `json:"address"`
				FilterChains []struct {
					TransportSocket any `json:"transport_socket"`
					Filters         []struct {
						TypedConfig map[string]any `json:"typed_config"`
					} `json:"filters"`
				} `json:"filter_chains"`
			} `json:"listeners"`
		} `json:"static_resources"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	tlsContext := func(clientCerts string) string {
		return `{"name":"envoy.transport_sockets.tls","typed_config":{"@type":"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",` +
			`"common_tls_context":{"tls_certificates":[{"certificate_chain":{"filename":"/s.pem"},"private_key":{"filename":"/s-key.pem"}}]` + clientCerts
	}
	details := `{"cert":false,"chain":false,"dns":true,"subject":true,"uri":true}`
	for i, want := range []struct {
		transport, forward, details, cluster, address string
	}{
		{"null", "", "", "echo", `{"socket_address":{"address":"127.0.0.1","port_value":0}}`},
		{tlsContext(`,"validation_context":{"trusted_ca":{"filename":"/ca.pem"}}},"require_client_certificate":true}}`), "SANITIZE_SET", details, "gateway", ""},
		{tlsContext(`,"validation_context":{"trusted_ca":{"filename":"/ca.pem"}}},"require_client_certificate":false}}`), "APPEND_FORWARD", details, "echo", ""},
		{tlsContext(`}}}`), "", "", "echo", ""},
		{"null", "FORWARD_ONLY", "", "echo", `{"socket_address":{"address":"127.0.0.1","port_value":4431}}`},
		{tlsContext(`,"validation_context":{"trust_chain_verification":"ACCEPT_UNTRUSTED","trusted_ca":{"filename":"/ca.pem"}}},"require_client_certificate":false}}`), "", "", "echo", ""},
	} {
		l := v.StaticResources.Listeners[i]
		name := cfg.Scenarios[i].Name
		if got, _ := json.Marshal(l.FilterChains[0].TransportSocket); string(got) != want.transport {
			t.Errorf("%s: transport socket\n%s\nwant\n%s", name, got, want.transport)
		}
		hcm := l.FilterChains[0].Filters[0].TypedConfig
		if got, _ := hcm["forward_client_cert_details"].(string); got != want.forward {
			t.Errorf("%s: forward_client_cert_details %q, want %q", name, got, want.forward)
		}
		if got, _ := json.Marshal(hcm["set_current_client_cert_details"]); want.details != "" && string(got) != want.details || want.details == "" && string(got) != "null" {
			t.Errorf("%s: set_current_client_cert_details %s, want %s", name, got, want.details)
		}
		if vh, _ := json.Marshal(hcm["route_config"]); !strings.Contains(string(vh), `"cluster":"`+want.cluster+`"`) {
			t.Errorf("%s: routes %s, want cluster %s", name, vh, want.cluster)
		}
		if got, _ := json.Marshal(l.Address); want.address != "" && string(got) != want.address {
			t.Errorf("%s: address %s, want %s", name, got, want.address)
		}
	}

	for _, c := range v.StaticResources.Clusters {
		got, _ := json.Marshal(c.TransportSocket)
		want := "null"
		switch c.Name {
		case "gateway":
			want = `{"name":"envoy.transport_sockets.tls","typed_config":{"@type":"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",` +
				`"common_tls_context":{"tls_certificates":[{"certificate_chain":{"filename":"/c.pem"},"private_key":{"filename":"/c-key.pem"}}],"validation_context":{"trusted_ca":{"filename":"/ca.pem"}}}}}`
		case "echo":
			want = `{"name":"envoy.transport_sockets.tls","typed_config":{"@type":"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",` +
				`"common_tls_context":{"validation_context":{"match_typed_subject_alt_names":[{"matcher":{"exact":"api.internal"},"san_type":"DNS"}],"trusted_ca":{"filename":"/ca.pem"}}},"sni":"api.internal"}}`
		}
		if string(got) != want {
			t.Errorf("cluster %s: transport socket\n%s\nwant\n%s", c.Name, got, want)
		}
	}
	for _, bad := range []map[string]ClusterTLS{
		{"nope": {CAFile: "/ca.pem"}},
		{"gateway": {CertFile: "/c.pem", KeyFile: "/c-key.pem"}},
		{"gateway": {CAFile: "/ca.pem", CertFile: "/c.pem"}},
	} {
		bad := Config{Clusters: cfg.Clusters, Upstream: "echo", ClusterTLS: bad}
		if _, _, err := Bootstrap(bad, ""); err == nil {
			t.Errorf("cluster TLS %+v accepted", bad.ClusterTLS)
		}
	}

	for _, bad := range []Scenario{
		{Name: "no-key", TLS: &TLS{CertFile: "/s.pem"}},
		{Name: "require-without-ca", TLS: &TLS{CertFile: "/s.pem", KeyFile: "/k.pem", RequireClientCert: true}},
		{Name: "untrusted-without-ca", TLS: &TLS{CertFile: "/s.pem", KeyFile: "/k.pem", AcceptUntrusted: true}},
		{Name: "unknown-mode", ForwardClientCert: "SANITISE_SET"},
		{Name: "unknown-upstream", Upstream: "nope"},
	} {
		cfg.Scenarios = []Scenario{bad}
		if _, _, err := Bootstrap(cfg, ""); err == nil || !strings.Contains(err.Error(), bad.Name) {
			t.Errorf("scenario %+v: err = %v, want one naming it", bad, err)
		}
	}
}
