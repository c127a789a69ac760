package istio_test

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	extensions "istio.io/api/extensions/v1alpha1"
	"istio.io/istio/pkg/util/protomarshal"
	"sigs.k8s.io/yaml"

	"github.com/phantom-token/envoy-phantom-token/internal/config"
)

// manifest is one manifest of this directory.
type manifest struct {
	file, kind string
	// routes is, for a manifest with route rules, the example (of kind
	// routesKind) whose Envoy route names the rules select.
	routes, routesKind string
}

// class is "routes" for a manifest with route rules, else "sidecar".
func (m manifest) class() string {
	if m.routes != "" {
		return "routes"
	}
	return "sidecar"
}

// The manifests of this directory: the filter on a workload's sidecar, in
// both APIs, and the filter with route rules on a gateway, in both APIs.
var manifests = []manifest{
	{file: "wasmplugin.yaml", kind: "WasmPlugin"},
	{file: "trafficextension.yaml", kind: "TrafficExtension"},
	{file: "wasmplugin-routes.yaml", kind: "WasmPlugin", routes: "examples/virtualservice.yaml", routesKind: "VirtualService"},
	{file: "trafficextension-routes.yaml", kind: "TrafficExtension", routes: "examples/httproute.yaml", routesKind: "HTTPRoute"},
}

// readManifest returns a manifest as a generic object.
func readManifest(t *testing.T, m manifest) map[string]any {
	t.Helper()
	return readObject(t, m.file, m.kind)
}

// readObject returns the one Kubernetes object of a YAML file, generically.
func readObject(t *testing.T, file, kind string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := yaml.Unmarshal(data, &obj); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if obj["kind"] != kind {
		t.Fatalf("%s holds a %v, want a %s", file, obj["kind"], kind)
	}
	return obj
}

// wasmBlock is where the Wasm settings of a manifest live: the spec of a
// WasmPlugin, spec.wasm of a TrafficExtension.
func wasmBlock(obj map[string]any) map[string]any {
	spec := obj["spec"].(map[string]any)
	if obj["kind"] == "TrafficExtension" {
		return spec["wasm"].(map[string]any)
	}
	return spec
}

// delivered is what Istio makes of a manifest's Wasm settings: the object is
// decoded into istio.io/api's type as Istio's Kubernetes client decodes it,
// and the plugin configuration is the JSON istiod puts in Envoy's
// configuration (protomarshal.ToJSON of the google.protobuf.Struct, so every
// number is a double).
type delivered struct {
	pluginConfig string
	url, sha256  string
	failStrategy extensions.FailStrategy
	phase        string // the enum's name: the two kinds have their own enum types
	env          []*extensions.EnvVar
	modes        []string // the match modes' names
}

func deliver(t *testing.T, obj map[string]any) delivered {
	t.Helper()
	spec, err := json.Marshal(obj["spec"])
	if err != nil {
		t.Fatal(err)
	}
	var d delivered
	var pluginConfig *structpb.Struct
	switch obj["kind"] {
	case "WasmPlugin":
		var wp extensions.WasmPlugin
		if err := json.Unmarshal(spec, &wp); err != nil {
			t.Fatalf("WasmPlugin spec: %v", err)
		}
		pluginConfig = wp.GetPluginConfig()
		d.url, d.sha256, d.failStrategy, d.phase = wp.GetUrl(), wp.GetSha256(), wp.GetFailStrategy(), wp.GetPhase().String()
		d.env = wp.GetVmConfig().GetEnv()
		for _, m := range wp.GetMatch() {
			d.modes = append(d.modes, m.GetMode().String())
		}
	case "TrafficExtension":
		var te extensions.TrafficExtension
		if err := json.Unmarshal(spec, &te); err != nil {
			t.Fatalf("TrafficExtension spec: %v", err)
		}
		w := te.GetWasm()
		pluginConfig = w.GetPluginConfig()
		d.url, d.sha256, d.failStrategy, d.phase = w.GetUrl(), w.GetSha256(), w.GetFailStrategy(), te.GetPhase().String()
		d.env = w.GetVmConfig().GetEnv()
		for _, m := range te.GetMatch() {
			d.modes = append(d.modes, m.GetMode().String())
		}
	default:
		t.Fatalf("unexpected kind %v", obj["kind"])
	}
	if pluginConfig == nil || len(pluginConfig.GetFields()) == 0 {
		t.Fatal("the manifest has no pluginConfig")
	}
	if d.pluginConfig, err = protomarshal.ToJSON(pluginConfig); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestManifestsValidateAgainstIstioCRDs checks the manifests, and mutations
// of them, as kube-apiserver would on `kubectl apply` with Istio's CRDs.
func TestManifestsValidateAgainstIstioCRDs(t *testing.T) {
	kinds := loadCRDs(t)

	env0 := func(obj map[string]any) map[string]any {
		return wasmBlock(obj)["vmConfig"].(map[string]any)["env"].([]any)[0].(map[string]any)
	}
	spec := func(obj map[string]any) map[string]any { return obj["spec"].(map[string]any) }

	for _, tc := range []struct {
		name   string
		only   string // a kind, when the row applies to one
		mutate func(obj map[string]any)
		want   []string // substrings of the error; none: valid
	}{
		{name: "as written", mutate: func(map[string]any) {}},
		{name: "a tag instead of a URL scheme is fine (oci:// is the default)",
			mutate: func(o map[string]any) { wasmBlock(o)["url"] = "registry.example.com/filters/phantom-token:1.0.0" }},
		{name: "plugin configuration keys are not checked by the CRD", // see TestManifestPluginConfig
			mutate: func(o map[string]any) { wasmBlock(o)["pluginConfig"].(map[string]any)["tiemout"] = 2 }},

		{name: "unknown field in spec", mutate: func(o map[string]any) { spec(o)["phaze"] = "AUTHN" },
			want: []string{`unknown field "spec.phaze"`}},
		{name: "unknown field next to the url", mutate: func(o map[string]any) { wasmBlock(o)["failstrategy"] = "FAIL_CLOSE" },
			want: []string{`unknown field "spec.`, `failstrategy"`}},
		{name: "unknown field in an env entry", mutate: func(o map[string]any) { env0(o)["valuefrom"] = "HOST" },
			want: []string{`unknown field "spec.`, `vmConfig.env[0].valuefrom"`}},
		{name: "unknown field in metadata", mutate: func(o map[string]any) { o["metadata"].(map[string]any)["label"] = "x" },
			want: []string{`unknown field "metadata.label"`}},
		{name: "phase not in the enum", mutate: func(o map[string]any) { spec(o)["phase"] = "AUTHENTICATION" },
			want: []string{`spec.phase: Unsupported value: "AUTHENTICATION"`}},
		{name: "Envoy's FAIL_CLOSED is not Istio's FAIL_CLOSE", mutate: func(o map[string]any) { wasmBlock(o)["failStrategy"] = "FAIL_CLOSED" },
			want: []string{`failStrategy: Unsupported value: "FAIL_CLOSED"`}},
		{name: "valueFrom not in the enum", mutate: func(o map[string]any) { env0(o)["valueFrom"] = "SECRET" },
			want: []string{`valueFrom: Unsupported value: "SECRET"`}},
		{name: "match mode not in the enum", mutate: func(o map[string]any) { spec(o)["match"] = []any{map[string]any{"mode": "INBOUND"}} },
			want: []string{`spec.match[0].mode: Unsupported value: "INBOUND"`}},
		{name: "url with an ftp scheme", mutate: func(o map[string]any) { wasmBlock(o)["url"] = "ftp://registry.example.com/phantom-token.wasm" },
			want: []string{"url must have schema one of [http, https, file, oci]"}},
		{name: "url with a docker scheme", mutate: func(o map[string]any) {
			wasmBlock(o)["url"] = "docker://registry.example.com/filters/phantom-token:1.0.0"
		},
			want: []string{"url must have schema one of [http, https, file, oci]"}},
		{name: "sha256 with its algorithm prefix", mutate: func(o map[string]any) {
			wasmBlock(o)["sha256"] = "sha256:" + strings.Repeat("ab", 32)
		}, want: []string{"sha256: Invalid value", "should match"}},
		{name: "sha256 unquoted, read by YAML as a number", mutate: func(o map[string]any) { wasmBlock(o)["sha256"] = 1.234e+63 },
			want: []string{"sha256: Invalid value", "must be of type string"}},
		{name: "sha256 in upper case", mutate: func(o map[string]any) { wasmBlock(o)["sha256"] = strings.Repeat("AB", 32) },
			want: []string{"sha256: Invalid value", "should match"}},
		{name: "a value with valueFrom HOST", mutate: func(o map[string]any) { env0(o)["value"] = "inline" },
			want: []string{"value may only be set when valueFrom is INLINE"}},
		{name: "two env entries with one name", mutate: func(o map[string]any) {
			vm := wasmBlock(o)["vmConfig"].(map[string]any)
			vm["env"] = append(vm["env"].([]any), map[string]any{"name": env0(o)["name"], "valueFrom": "HOST"})
		}, want: []string{"vmConfig.env[1]: Duplicate value"}},
		{name: "selector and targetRefs together", mutate: func(o map[string]any) {
			spec(o)["selector"] = map[string]any{"matchLabels": map[string]any{"app": "orders-api"}}
			spec(o)["targetRefs"] = []any{map[string]any{"kind": "Service", "name": "orders-api"}}
		}, want: []string{"only one of targetRefs or selector can be set"}},
		{name: "pluginConfig that is not an object", mutate: func(o map[string]any) { wasmBlock(o)["pluginConfig"] = "introspection_url=…" },
			want: []string{"pluginConfig: Invalid value", "must be of type object"}},
		{name: "no url", mutate: func(o map[string]any) { delete(wasmBlock(o), "url") },
			want: []string{"url: Required value"}},
		{name: "an apiVersion Istio does not serve", mutate: func(o map[string]any) { o["apiVersion"] = "extensions.istio.io/v1" },
			want: []string{`no matches for kind`}},
		{name: "a Lua filter next to the Wasm one", only: "TrafficExtension", mutate: func(o map[string]any) {
			spec(o)["lua"] = map[string]any{"inlineCode": "function envoy_on_request(h) end"}
		}, want: []string{"exactly one of wasm or lua must be set"}},
		{name: "targetRef (singular) is a WasmPlugin field only", only: "TrafficExtension", mutate: func(o map[string]any) {
			delete(spec(o), "selector")
			spec(o)["targetRef"] = map[string]any{"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "gw"}
		}, want: []string{`unknown field "spec.targetRef"`}},
	} {
		for _, m := range manifests {
			if tc.only != "" && tc.only != m.kind {
				continue
			}
			t.Run(m.file+"/"+tc.name, func(t *testing.T) {
				obj := readManifest(t, m)
				tc.mutate(obj)
				doc, err := yaml.Marshal(obj)
				if err != nil {
					t.Fatal(err)
				}
				err = validateCreate(kinds, doc)
				switch {
				case len(tc.want) == 0 && err != nil:
					t.Fatalf("rejected: %v", err)
				case len(tc.want) > 0 && err == nil:
					t.Fatalf("accepted, want an error with %q", tc.want)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
			})
		}
	}
}

// TestManifestsAsWritten checks what the manifests must say, beyond the schema:
// fail closed, in the AUTHN phase, from a pinned image, with the client secret
// from the proxy's environment and never in the resource, on the listeners
// it is for: a sidecar's inbound ones, or a gateway's for route rules.
func TestManifestsAsWritten(t *testing.T) {
	kinds := loadCRDs(t)
	for _, m := range manifests {
		t.Run(m.file, func(t *testing.T) {
			data, err := os.ReadFile(m.file)
			if err != nil {
				t.Fatal(err)
			}
			if err := validateCreate(kinds, data); err != nil { // the file itself, byte for byte
				t.Fatalf("%s: %v", m.file, err)
			}
			d := deliver(t, readManifest(t, m))
			// A sidecar's own API is behind its inbound (SERVER) listeners,
			// where every request is on Istio's route "default"; route names
			// exist on a gateway, whose listeners Istio counts as CLIENT
			// (pilot/pkg/model/extensions.go, workloadModeForListenerClass).
			wantMode := "SERVER"
			if m.routes != "" {
				wantMode = "CLIENT"
			}
			if len(d.modes) != 1 || d.modes[0] != wantMode {
				t.Errorf("match modes %q, want [%s]", d.modes, wantMode)
			}
			if d.phase != "AUTHN" {
				t.Errorf("phase %v, want AUTHN", d.phase)
			}
			if d.failStrategy != extensions.FailStrategy_FAIL_CLOSE {
				t.Errorf("failStrategy %v, want FAIL_CLOSE", d.failStrategy)
			}
			if !strings.HasPrefix(d.url, "oci://") || len(d.sha256) != 64 {
				t.Errorf("url %q sha256 %q: want an oci:// image pinned by its manifest digest", d.url, d.sha256)
			}
			var pc map[string]any
			if err := json.Unmarshal([]byte(d.pluginConfig), &pc); err != nil {
				t.Fatal(err)
			}
			if _, ok := pc["client_secret"]; ok {
				t.Error("pluginConfig holds client_secret: the secret belongs in the proxy's environment")
			}
			secretEnv, _ := pc["client_secret_env"].(string)
			var fromHost bool
			var entries []string // names and sources only: an inline value may be a secret
			for _, e := range d.env {
				fromHost = fromHost || (e.GetName() == secretEnv && e.GetValueFrom() == extensions.EnvValueSource_HOST)
				entries = append(entries, e.GetName()+" from "+e.GetValueFrom().String())
			}
			if secretEnv == "" || !fromHost {
				t.Errorf("client_secret_env %q is not a vmConfig.env entry with valueFrom HOST (entries: %q)", secretEnv, entries)
			}
		})
	}
}

// TestManifestPluginConfig runs each manifest's pluginConfig, as Istio
// delivers it to the VM, through the filter's own configuration check: the
// top level and every route rule.
func TestManifestPluginConfig(t *testing.T) {
	const secret = "test-secret-from-the-proxy-environment"
	getenv := func(name string) string {
		if name == "PHANTOM_TOKEN_CLIENT_SECRET" {
			return secret
		}
		return ""
	}
	want := config.Config{
		IntrospectionURL: "https://login.example.com/oauth/v2/oauth-introspect",
		Cluster:          "outbound|443||login.example.com",
		Authority:        "login.example.com", Path: "/oauth/v2/oauth-introspect",
		ClientID: "api-gateway",
		Realm:    "orders", Scopes: []string{"read", "write"},
		ResponseType:   config.ResponseTypeJWT,
		Timeout:        2 * time.Second,
		MaxJWTSize:     16384,
		MaxTokenLength: config.DefaultMaxTokenLength,
		UpstreamHeader: config.DefaultUpstreamHeader,
		CacheEnabled:   true, CacheMaxTTL: 300 * time.Second, CacheMaxEntries: 10000,
		MaxInFlight:          config.DefaultMaxInFlight,
		ForwardCORSPreflight: true, Enabled: true,
		ClientCertificateSource: config.CertificateFromConnection,
		DPoP:                    config.DPoPOff, DPoPAlgs: config.DefaultDPoPAlgs, DPoPIATWindow: config.DefaultDPoPIATWindow,
		DPoPReplayMaxEntries: config.DefaultDPoPReplayMaxEntries,
	}

	// rule is the i-th route rule of a pluginConfig.
	rule := func(pc map[string]any, i int) map[string]any { return pc["routes"].([]any)[i].(map[string]any) }

	for _, tc := range []struct {
		name   string
		only   string // "sidecar" or "routes": the manifests without or with route rules, when the row is for one of them
		mutate func(pluginConfig map[string]any)
		getenv func(string) string
		check  func(t *testing.T, c *config.Config)
		want   string // the key the config.Error names; empty: valid
	}{
		{name: "as written", only: "sidecar", check: func(t *testing.T, c *config.Config) {
			got := *c
			if got.ClientSecret != secret {
				t.Error("the client secret is not the one from the proxy's environment")
			}
			got.ClientSecret, got.CacheNamespace = "", "" // the namespace is a digest, tested in internal/config
			if !reflect.DeepEqual(got, want) {
				t.Errorf("parsed\n%+v\nwant\n%+v", got, want)
			}
		}},
		{name: "fractional seconds", mutate: func(pc map[string]any) { pc["timeout"] = 2.5 },
			check: func(t *testing.T, c *config.Config) {
				if c.Timeout != 2500*time.Millisecond {
					t.Errorf("timeout %v, want 2.5s", c.Timeout)
				}
			}},
		{name: "a duration string", mutate: func(pc map[string]any) { pc["cache_max_ttl"] = "90s" },
			check: func(t *testing.T, c *config.Config) {
				if c.CacheMaxTTL != 90*time.Second {
					t.Errorf("cache_max_ttl %v, want 90s", c.CacheMaxTTL)
				}
			}},
		{name: "the largest cache", mutate: func(pc map[string]any) { pc["cache_max_entries"] = 1000000 },
			check: func(t *testing.T, c *config.Config) {
				if c.CacheMaxEntries != 1000000 {
					t.Errorf("cache_max_entries %d, want 1000000", c.CacheMaxEntries)
				}
			}},
		{name: "the secret missing from the proxy's environment", getenv: func(string) string { return "" },
			want: `"client_secret_env"`},
		{name: "a misspelt key", mutate: func(pc map[string]any) { pc["tiemout"] = 2 },
			want: `"tiemout"`},
		{name: "a fractional size", mutate: func(pc map[string]any) { pc["max_jwt_size"] = 16384.5 },
			want: `"max_jwt_size"`},
		{name: "a timeout of zero", mutate: func(pc map[string]any) { pc["timeout"] = 0 },
			want: `"timeout"`},
		{name: "the secret inline as well", mutate: func(pc map[string]any) { pc["client_secret"] = "inline" },
			want: `"client_secret_env"`},
		{name: "no cluster", mutate: func(pc map[string]any) { delete(pc, "cluster") },
			want: `"cluster"`},

		{name: "as written", only: "routes", check: func(t *testing.T, c *config.Config) {
			// What each rule decides is in TestRouteManifestPolicies.
			if len(c.Routes) == 0 {
				t.Fatal("no route rules")
			}
			for i, r := range c.Routes {
				if r.Config.ClientSecret != secret {
					t.Errorf("routes[%d] (%q) lacks the top-level client secret from the proxy's environment", i, r.Route)
				}
			}
		}},
		{name: "a rule with a misspelt key", only: "routes",
			mutate: func(pc map[string]any) { rule(pc, 1)["required_scope"] = "orders:read" },
			want:   `"routes[1].required_scope"`},
		{name: "a rule with both route and route_prefix", only: "routes",
			mutate: func(pc map[string]any) { rule(pc, 0)["route_prefix"] = "health" },
			want:   `"routes[0]" must have exactly one of "route" and "route_prefix"`},
		{name: "a rule with neither route nor route_prefix", only: "routes",
			mutate: func(pc map[string]any) { delete(rule(pc, 0), "route") },
			want:   `"routes[0]" must have exactly one of "route" and "route_prefix"`},
		{name: "two rules for one exact route", only: "routes",
			mutate: func(pc map[string]any) { rule(pc, 2)["route"] = rule(pc, 1)["route"] },
			want:   `"routes[2].route"`},
		{name: "a rule's enabled as a string", only: "routes",
			mutate: func(pc map[string]any) { rule(pc, 0)["enabled"] = "false" },
			want:   `"routes[0].enabled"`},
		{name: "a rule's required scopes with a double space", only: "routes",
			mutate: func(pc map[string]any) { rule(pc, 1)["required_scopes"] = "orders:read  orders:write" },
			want:   `"routes[1].required_scopes"`},
		{name: "a rule's realm with a quote", only: "routes",
			mutate: func(pc map[string]any) { rule(pc, 2)["realm"] = `ad"min` },
			want:   `"routes[2].realm"`},
		{name: "a rule's claim header is authorization", only: "routes",
			mutate: func(pc map[string]any) {
				rule(pc, 1)["claim_headers"] = []any{map[string]any{"claim": "sub", "header": "authorization"}}
			},
			want: `"routes[1].claim_headers[0].header"`},
		{name: "a rule with an identity server of its own and no client", only: "routes",
			mutate: func(pc map[string]any) {
				rule(pc, 1)["introspection_url"] = "https://partner.example.com/oauth/v2/oauth-introspect"
				rule(pc, 1)["cluster"] = "outbound|443||partner.example.com"
			},
			want: `"routes[1].client_id"`},
		{name: "a claim header named twice", only: "routes",
			mutate: func(pc map[string]any) {
				pc["claim_headers"] = append(pc["claim_headers"].([]any), map[string]any{"claim": "email", "header": "x-user-id"})
			},
			want: `"claim_headers[1].header"`},
		{name: "routes that is not a list", only: "routes",
			mutate: func(pc map[string]any) { pc["routes"] = map[string]any{"health": false} },
			want:   `"routes"`},
	} {
		for _, m := range manifests {
			if tc.only != "" && tc.only != m.class() {
				continue
			}
			t.Run(m.file+"/"+tc.name, func(t *testing.T) {
				obj := readManifest(t, m)
				if tc.mutate != nil {
					tc.mutate(wasmBlock(obj)["pluginConfig"].(map[string]any))
				}
				d := deliver(t, obj)
				env := getenv
				if tc.getenv != nil {
					env = tc.getenv
				}
				c, err := config.Parse([]byte(d.pluginConfig), env)
				if tc.want == "" {
					if err != nil {
						t.Fatalf("pluginConfig %s: %v", d.pluginConfig, err)
					}
					tc.check(t, c)
					return
				}
				var cerr *config.Error
				if !errors.As(err, &cerr) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Parse(%s) = %v, want a config.Error naming %s", d.pluginConfig, err, tc.want)
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error %q shows the secret", err)
				}
			})
		}
	}
}
