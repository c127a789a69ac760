package harness

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strconv"
)

// obj keeps the bootstrap literal readable.
type obj = map[string]any

// Bootstrap returns Envoy's bootstrap for cfg, as JSON (which Envoy reads like
// YAML): an admin server and one listener per scenario on 127.0.0.1 port 0,
// each with the wasm filter (when the scenario has a plugin) and the router,
// plus the STATIC clusters. With cfg.ListenersViaLDS the listeners are not in
// the bootstrap but in lds, an LDS DiscoveryResponse the bootstrap reads from
// ldsPath.
func Bootstrap(cfg Config, ldsPath string) (bootstrap, lds []byte, err error) {
	if cfg.Upstream == "" {
		return nil, nil, errors.New("harness: Config.Upstream is required")
	}
	if _, ok := cfg.Clusters[cfg.Upstream]; !ok {
		return nil, nil, fmt.Errorf("harness: upstream cluster %q is not in Config.Clusters", cfg.Upstream)
	}
	listeners, err := listenerResources(cfg)
	if err != nil {
		return nil, nil, err
	}
	clusters, err := clusterResources(cfg)
	if err != nil {
		return nil, nil, err
	}
	b := obj{
		"admin":            obj{"address": socketAddress("127.0.0.1", 0)},
		"static_resources": obj{"clusters": clusters},
	}
	if limit := cfg.AsyncResponseBufferLimit; limit >= 0 {
		if limit == 0 {
			limit = DefaultAsyncResponseBufferLimit
		}
		// A static layer, as in envoy.yaml: read by every async request
		// when it starts, for the whole process.
		b["layered_runtime"] = obj{"layers": []any{obj{
			"name":         "static",
			"static_layer": obj{"http.async_response_buffer_limit": limit},
		}}}
	}
	if !cfg.ListenersViaLDS {
		b["static_resources"].(obj)["listeners"] = listeners
		bootstrap, err = json.MarshalIndent(b, "", "  ")
		return bootstrap, nil, err
	}
	for _, l := range listeners {
		l.(obj)["@type"] = "type.googleapis.com/envoy.config.listener.v3.Listener"
	}
	b["node"] = obj{"id": "phantom-token-e2e", "cluster": "phantom-token-e2e"} // xDS needs them
	b["dynamic_resources"] = obj{"lds_config": obj{
		"path_config_source":   obj{"path": ldsPath},
		"resource_api_version": "V3",
	}}
	if bootstrap, err = json.MarshalIndent(b, "", "  "); err != nil {
		return nil, nil, err
	}
	lds, err = json.MarshalIndent(obj{"resources": listeners}, "", "  ")
	return bootstrap, lds, err
}

func listenerResources(cfg Config) ([]any, error) {
	wasm := ""
	if cfg.WasmPath != "" {
		var err error
		if wasm, err = filepath.Abs(cfg.WasmPath); err != nil {
			return nil, err
		}
	}

	seen := map[string]bool{}
	var listeners []any
	for _, s := range cfg.Scenarios {
		if s.Name == "" || seen[s.Name] {
			return nil, fmt.Errorf("harness: scenario name %q is empty or repeated", s.Name)
		}
		seen[s.Name] = true
		filters := []any{}
		if s.Plugin != nil {
			module := wasm
			if s.WasmPath != "" {
				module = s.WasmPath
			}
			if module == "" {
				return nil, fmt.Errorf("harness: scenario %q has a plugin but Config.WasmPath is empty", s.Name)
			}
			f, err := wasmFilter(s, module)
			if err != nil {
				return nil, err
			}
			filters = append(filters, f)
		}
		filters = append(filters, obj{
			"name":         "envoy.filters.http.router",
			"typed_config": obj{"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
		})
		hcm := obj{
			"@type":        "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
			"stat_prefix":  s.Name,
			"http_filters": filters,
		}
		upstream := cfg.Upstream
		if s.Upstream != "" {
			if _, ok := cfg.Clusters[s.Upstream]; !ok {
				return nil, fmt.Errorf("harness: scenario %q: upstream cluster %q is not in Config.Clusters", s.Name, s.Upstream)
			}
			upstream = s.Upstream
		}
		if err := clientCertForwarding(hcm, s.ForwardClientCert); err != nil {
			return nil, fmt.Errorf("harness: scenario %q: %w", s.Name, err)
		}
		vhost := obj{"name": "all", "domains": []any{"*"}}
		if s.VirtualHostMetadata != nil {
			vhost["metadata"] = obj{"filter_metadata": s.VirtualHostMetadata}
		}
		if len(s.Routes) == 0 {
			vhost["routes"] = []any{obj{
				"match": obj{"prefix": "/"},
				"route": obj{"cluster": upstream, "timeout": "10s"},
			}}
		} else {
			routes, err := routeTable(s.Routes, upstream)
			if err != nil {
				return nil, fmt.Errorf("harness: scenario %q: %w", s.Name, err)
			}
			vhost["routes"] = routes
			for k, v := range pathHandling {
				hcm[k] = v
			}
		}
		hcm["route_config"] = obj{"virtual_hosts": []any{vhost}}
		chain := obj{"filters": []any{obj{
			"name":         "envoy.filters.network.http_connection_manager",
			"typed_config": hcm,
		}}}
		if s.TLS != nil {
			ts, err := downstreamTLS(*s.TLS)
			if err != nil {
				return nil, fmt.Errorf("harness: scenario %q: %w", s.Name, err)
			}
			chain["transport_socket"] = ts
		}
		listeners = append(listeners, obj{
			"name":          s.Name,
			"stat_prefix":   s.Name, // the address, port 0, would be the same for all
			"address":       socketAddress("127.0.0.1", s.Port),
			"filter_chains": []any{chain},
		})
	}
	return listeners, nil
}

// downstreamTLS is the transport socket of a listener that terminates TLS
// with t's certificate and, with a client CA, asks for client certificates
// and validates them (optional unless t.RequireClientCert).
func downstreamTLS(t TLS) (obj, error) {
	if t.CertFile == "" || t.KeyFile == "" {
		return nil, errors.New("TLS needs CertFile and KeyFile")
	}
	if (t.RequireClientCert || t.AcceptUntrusted) && t.ClientCAFile == "" {
		return nil, errors.New("TLS.RequireClientCert and TLS.AcceptUntrusted need ClientCAFile")
	}
	common := obj{"tls_certificates": []any{obj{
		"certificate_chain": obj{"filename": t.CertFile},
		"private_key":       obj{"filename": t.KeyFile},
	}}}
	tlsContext := obj{
		"@type":              "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
		"common_tls_context": common,
	}
	if t.ClientCAFile != "" {
		validation := obj{"trusted_ca": obj{"filename": t.ClientCAFile}}
		if t.AcceptUntrusted {
			validation["trust_chain_verification"] = "ACCEPT_UNTRUSTED"
		}
		common["validation_context"] = validation
		tlsContext["require_client_certificate"] = t.RequireClientCert
	}
	return obj{"name": "envoy.transport_sockets.tls", "typed_config": tlsContext}, nil
}

// upstreamTLS is the transport socket of a cluster that connects with TLS,
// validates the endpoint's certificate against t.CAFile (and its name
// against t.ServerName, which it also sends as SNI) and presents t's client
// certificate, if any.
func upstreamTLS(t ClusterTLS) obj {
	validation := obj{"trusted_ca": obj{"filename": t.CAFile}}
	common := obj{"validation_context": validation}
	if t.CertFile != "" {
		common["tls_certificates"] = []any{obj{
			"certificate_chain": obj{"filename": t.CertFile},
			"private_key":       obj{"filename": t.KeyFile},
		}}
	}
	tlsContext := obj{
		"@type":              "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
		"common_tls_context": common,
	}
	if t.ServerName != "" {
		tlsContext["sni"] = t.ServerName
		validation["match_typed_subject_alt_names"] = []any{obj{
			"san_type": "DNS",
			"matcher":  obj{"exact": t.ServerName},
		}}
	}
	return obj{"name": "envoy.transport_sockets.tls", "typed_config": tlsContext}
}

// clientCertForwarding sets the connection manager's handling of
// x-forwarded-client-cert (see Scenario.ForwardClientCert).
func clientCertForwarding(hcm obj, mode string) error {
	switch mode {
	case "":
		return nil
	case "SANITIZE_SET", "APPEND_FORWARD":
		// Hash and By are always in the element Envoy makes; the
		// certificate itself (cert, chain) is left out.
		hcm["set_current_client_cert_details"] = obj{"subject": true, "uri": true, "dns": true, "cert": false, "chain": false}
	case "SANITIZE", "FORWARD_ONLY", "ALWAYS_FORWARD_ONLY":
	default:
		return fmt.Errorf("unknown ForwardClientCert %q", mode)
	}
	hcm["forward_client_cert_details"] = mode
	return nil
}

// pathHandling is the HTTP connection manager's path handling on a listener
// with a route table, as in envoy.yaml. Route rules follow the route Envoy's
// matcher picks, so the matcher must see the path the upstream will act on:
// dot segments resolved (/public/../admin is /admin), runs of slashes merged
// (//admin is /admin), and encoded slashes (%2F, %5C) refused with 400, since
// /public%2F..%2Fadmin would match /public while an upstream that decodes
// them serves /admin. Refusing is the careful choice over
// UNESCAPE_AND_REDIRECT: an API path has no business holding an encoded
// slash, a 400 shows the client's mistake at once, and nothing of such a
// request reaches the filter, the identity server or the upstream, whereas a
// redirect counts on every client to follow it and silently turns an
// encoded slash inside an identifier into a path separator.
var pathHandling = map[string]any{
	"normalize_path":                   true,
	"merge_slashes":                    true,
	"path_with_escaped_slashes_action": "REJECT_REQUEST",
}

// routeTable is the routes of a virtual host for routes, in order, each to
// the cluster upstream.
func routeTable(routes []Route, upstream string) ([]any, error) {
	out := make([]any, 0, len(routes))
	for i, r := range routes {
		match := obj{}
		switch {
		case r.Prefix != "" && r.Path == "":
			match["prefix"] = r.Prefix
		case r.Path != "" && r.Prefix == "":
			match["path"] = r.Path
		default:
			return nil, fmt.Errorf("route %d (%q) needs exactly one of Prefix and Path", i, r.Name)
		}
		if r.CaseInsensitive {
			match["case_sensitive"] = false
		}
		route := obj{"match": match, "route": obj{"cluster": upstream, "timeout": "10s"}}
		if r.Name != "" {
			route["name"] = r.Name
		}
		if r.Metadata != nil {
			route["metadata"] = obj{"filter_metadata": r.Metadata}
		}
		if r.FilterDisabled {
			route["typed_per_filter_config"] = obj{"envoy.filters.http.wasm": obj{
				"@type":    "type.googleapis.com/envoy.config.route.v3.FilterConfig",
				"disabled": true,
			}}
		}
		out = append(out, route)
	}
	return out, nil
}

func clusterResources(cfg Config) ([]any, error) {
	names := make([]string, 0, len(cfg.Clusters))
	for name := range cfg.Clusters {
		names = append(names, name)
	}
	sort.Strings(names)
	var clusters []any
	for _, name := range names {
		host, port, err := net.SplitHostPort(cfg.Clusters[name])
		if err != nil {
			return nil, fmt.Errorf("harness: cluster %q: %w", name, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("harness: cluster %q: %w", name, err)
		}
		c := obj{
			"name":            name,
			"type":            "STATIC",
			"connect_timeout": "1s",
			"load_assignment": obj{
				"cluster_name": name,
				"endpoints": []any{obj{"lb_endpoints": []any{obj{
					"endpoint": obj{"address": socketAddress(host, p)},
				}}}},
			},
		}
		if cb, ok := cfg.CircuitBreakers[name]; ok {
			c["circuit_breakers"] = circuitBreakers(cb)
		}
		if t, ok := cfg.ClusterTLS[name]; ok {
			if t.CAFile == "" || (t.CertFile == "") != (t.KeyFile == "") {
				return nil, fmt.Errorf("harness: cluster %q: TLS needs CAFile, and CertFile with KeyFile", name)
			}
			c["transport_socket"] = upstreamTLS(t)
		}
		clusters = append(clusters, c)
	}
	for name := range cfg.CircuitBreakers {
		if _, ok := cfg.Clusters[name]; !ok {
			return nil, fmt.Errorf("harness: circuit breakers for unknown cluster %q", name)
		}
	}
	for name := range cfg.ClusterTLS {
		if _, ok := cfg.Clusters[name]; !ok {
			return nil, fmt.Errorf("harness: TLS for unknown cluster %q", name)
		}
	}
	return clusters, nil
}

// wasmFilter is envoy.filters.http.wasm running the module at wasm under V8,
// failing closed, with the scenario's plugin configuration as a StringValue.
func wasmFilter(s Scenario, wasm string) (any, error) {
	conf, ok := s.Plugin.(string)
	if !ok {
		b, err := json.Marshal(s.Plugin)
		if err != nil {
			return nil, fmt.Errorf("harness: scenario %q: %w", s.Name, err)
		}
		conf = string(b)
	}
	vm := obj{
		"vm_id":   s.VMID,
		"runtime": "envoy.wasm.runtime.v8",
		"code":    obj{"local": obj{"filename": wasm}},
	}
	if len(s.Env) > 0 {
		vm["environment_variables"] = obj{"key_values": s.Env}
	}
	return obj{
		"name": "envoy.filters.http.wasm",
		"typed_config": obj{
			"@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
			"config": obj{
				"name":           "phantom_token",
				"failure_policy": "FAIL_CLOSED",
				"vm_config":      vm,
				"configuration": obj{
					"@type": "type.googleapis.com/google.protobuf.StringValue",
					"value": conf,
				},
			},
		},
	}, nil
}

func circuitBreakers(cb CircuitBreakers) obj {
	t := obj{"priority": "DEFAULT"}
	for key, v := range map[string]int{
		"max_connections":      cb.MaxConnections,
		"max_pending_requests": cb.MaxPendingRequests,
		"max_requests":         cb.MaxRequests,
	} {
		if v > 0 {
			t[key] = v
		}
	}
	return obj{"thresholds": []any{t}}
}

func socketAddress(host string, port int) obj {
	return obj{"socket_address": obj{"address": host, "port_value": port}}
}
