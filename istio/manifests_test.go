package istio_test

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	extensions "istio.io/api/extensions/v1alpha1"
	istioextensions "istio.io/istio/pilot/pkg/config/kube/extensions"
	"istio.io/istio/pilot/pkg/config/memory"
	"istio.io/istio/pilot/pkg/model"
	istionetworking "istio.io/istio/pilot/pkg/networking"
	istioconfig "istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/schema/collections"
	"istio.io/istio/pkg/config/schema/gvk"
	istiolog "istio.io/istio/pkg/log"
	"istio.io/istio/pkg/test/util/retry"
	"istio.io/istio/pkg/util/protomarshal"
	"sigs.k8s.io/yaml"

	"github.com/phantom-token/envoy-phantom-token/internal/config"
)

// manifest is one manifest of this directory.
type manifest struct {
	file, kind string
	place      string // where it attaches: "gateway" or "sidecar" (TestManifestsAttachWhereTheySay)
	// routes is, for a manifest with route rules, the example (of kind
	// routesKind) whose Envoy route names the rules select.
	routes, routesKind string
}

// class is "routes" for a manifest with route rules, else its place.
func (m manifest) class() string {
	if m.routes != "" {
		return "routes"
	}
	return m.place
}

// The manifests of this directory, in both APIs: the filter on the ingress
// gateway, on a workload's sidecar, and with route rules on a gateway.
var manifests = []manifest{
	{file: "wasmplugin-gateway.yaml", kind: "WasmPlugin", place: "gateway"},
	{file: "trafficextension-gateway.yaml", kind: "TrafficExtension", place: "gateway"},
	{file: "wasmplugin-sidecar.yaml", kind: "WasmPlugin", place: "sidecar"},
	{file: "trafficextension-sidecar.yaml", kind: "TrafficExtension", place: "sidecar"},
	{file: "wasmplugin-gateway-routes.yaml", kind: "WasmPlugin", place: "gateway",
		routes: "examples/virtualservice.yaml", routesKind: "VirtualService"},
	{file: "trafficextension-gateway-routes.yaml", kind: "TrafficExtension", place: "gateway",
		routes: "examples/httproute.yaml", routesKind: "HTTPRoute"},
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
// it is for: a gateway's, or a sidecar's inbound ones.
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
			// Istio counts a gateway's listeners as CLIENT and a sidecar's
			// inbound ones, in front of its own API, as SERVER
			// (pilot/pkg/model/extensions.go, workloadModeForListenerClass).
			wantMode := map[string]string{"gateway": "CLIENT", "sidecar": "SERVER"}[m.place]
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
	sidecar := config.Config{
		IntrospectionURL: "https://login.example.com/oauth/v2/oauth-introspect",
		Cluster:          "outbound|443||login.example.com",
		Authority:        "login.example.com", Path: "/oauth/v2/oauth-introspect",
		ClientID: "api-gateway", ClientAuth: config.ClientSecretBasic,
		Realm: "orders", Scopes: []string{"read", "write"},
		ResponseType:   config.ResponseTypeJWT,
		Timeout:        2 * time.Second,
		MaxJWTSize:     16384,
		MaxTokenLength: config.DefaultMaxTokenLength,
		UpstreamHeader: config.DefaultUpstreamHeader, ToAuthorization: true, PlainHits: true,
		CacheEnabled: true, CacheMaxTTL: 300 * time.Second, CacheMaxEntries: 10000,
		MaxInFlight:          config.DefaultMaxInFlight,
		ForwardCORSPreflight: true, Enabled: true,
		ClientCertificateSource: config.CertificateFromConnection,
		DPoP:                    config.DPoPOff, DPoPAlgs: config.DefaultDPoPAlgs, DPoPIATWindow: config.DefaultDPoPIATWindow,
		DPoPReplayMaxEntries: config.DefaultDPoPReplayMaxEntries,
		TraceHeaders:         config.DefaultTraceHeaders,
	}
	// The gateway manifests guard every API behind the gateway: one realm
	// for them all, and no scope of one API in the challenge.
	gateway := sidecar
	gateway.Realm, gateway.Scopes = "api", nil
	asWritten := func(want config.Config) func(t *testing.T, c *config.Config) {
		return func(t *testing.T, c *config.Config) {
			got := *c
			if got.ClientSecret != secret {
				t.Error("the client secret is not the one from the proxy's environment")
			}
			got.ClientSecret, got.CacheNamespace = "", "" // the namespace is a digest, tested in internal/config
			if !reflect.DeepEqual(got, want) {
				t.Errorf("parsed\n%+v\nwant\n%+v", got, want)
			}
		}
	}

	// rule is the i-th route rule of a pluginConfig.
	rule := func(pc map[string]any, i int) map[string]any { return pc["routes"].([]any)[i].(map[string]any) }

	for _, tc := range []struct {
		name   string
		only   string // a manifest class ("gateway", "sidecar", "routes"), when the row is for one of them
		mutate func(pluginConfig map[string]any)
		getenv func(string) string
		check  func(t *testing.T, c *config.Config)
		want   string // the key the config.Error names; empty: valid
	}{
		{name: "as written", only: "gateway", check: asWritten(gateway)},
		{name: "as written", only: "sidecar", check: asWritten(sidecar)},
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

// rootNamespace is Istio's root namespace by default (meshConfig.rootNamespace).
const rootNamespace = "istio-system"

// listener is one listener of a proxy, as istiod sees it when it picks the
// extensions for it: the proxy's namespace and labels, and the listener's
// class and port.
type listener struct {
	namespace string
	labels    map[string]string
	class     istionetworking.ListenerClass
	port      int
}

var ingressGatewayLabels = map[string]string{"app": "istio-ingressgateway", "istio": "ingressgateway"}

// listeners are the places a manifest can attach to: the Istio ingress
// gateway (in istio-system, or in istio-ingress as its Helm chart is often
// installed), a Gateway API Gateway that Istio deploys, and the sidecar of
// the orders API, inbound and outbound, and of another workload.
var listeners = map[string]listener{
	"ingress gateway":                  {rootNamespace, ingressGatewayLabels, istionetworking.ListenerClassGateway, 8080},
	"ingress gateway in istio-ingress": {"istio-ingress", ingressGatewayLabels, istionetworking.ListenerClassGateway, 8443},
	"Gateway API gateway": {"gateways", map[string]string{"gateway.networking.k8s.io/gateway-name": "api-gateway"},
		istionetworking.ListenerClassGateway, 80},
	"orders-api inbound":         {"orders", map[string]string{"app": "orders-api"}, istionetworking.ListenerClassSidecarInbound, 8080},
	"orders-api outbound":        {"orders", map[string]string{"app": "orders-api"}, istionetworking.ListenerClassSidecarOutbound, 443},
	"another workload's inbound": {"orders", map[string]string{"app": "billing-api"}, istionetworking.ListenerClassSidecarInbound, 8080},
}

// attachedTo returns the listeners (names of listeners) that istiod gives a
// manifest's HTTP filter, with Istio's own code: a WasmPlugin goes through
// Istio's translation into a TrafficExtension (pilot/pkg/config/kube/extensions),
// then, as TrafficExtensionsByListenerInfo (pilot/pkg/model/push_context.go)
// does, an extension of the proxy's namespace or of the root namespace
// attaches when its selector or targetRefs (the policy matcher) and its match
// (MatchListener, pilot/pkg/model/extensions.go) select the listener.
func attachedTo(t *testing.T, obj map[string]any) []string {
	t.Helper()
	ext := istioTrafficExtension(t, obj)
	var names []string
	for name, l := range listeners {
		if ext.Namespace != l.namespace && ext.Namespace != rootNamespace {
			continue
		}
		matcher := model.PolicyMatcherFor(l.namespace, l.labels, false).WithRootNamespace(rootNamespace)
		if ext.MatchType(model.FilterChainTypeHTTP) && ext.MatchListener(matcher, model.ListenerInfo{Port: l.port, Class: l.class}) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// istioTrafficExtension is the TrafficExtension istiod works with for a
// manifest: the object goes into an Istio config store, which validates it as
// istiod does, and a WasmPlugin comes out of Istio's WasmPlugin →
// TrafficExtension translation.
func istioTrafficExtension(t *testing.T, obj map[string]any) *model.TrafficExtensionWrapper {
	t.Helper()
	spec, err := json.Marshal(obj["spec"])
	if err != nil {
		t.Fatal(err)
	}
	meta := obj["metadata"].(map[string]any)
	cfg := istioconfig.Config{Meta: istioconfig.Meta{Name: meta["name"].(string), Namespace: meta["namespace"].(string)}}
	switch obj["kind"] {
	case "WasmPlugin":
		var wp extensions.WasmPlugin
		if err := json.Unmarshal(spec, &wp); err != nil {
			t.Fatal(err)
		}
		cfg.GroupVersionKind, cfg.Spec = gvk.WasmPlugin, &wp
	case "TrafficExtension":
		var te extensions.TrafficExtension
		if err := json.Unmarshal(spec, &te); err != nil {
			t.Fatal(err)
		}
		cfg.GroupVersionKind, cfg.Spec = gvk.TrafficExtension, &te
	default:
		t.Fatalf("unexpected kind %v", obj["kind"])
	}
	istiolog.FindScope("krt").SetOutputLevel(istiolog.WarnLevel) // not a line per translation
	store := memory.NewController(memory.Make(collections.PilotGatewayAPI()))
	if _, err := store.Create(cfg); err != nil {
		t.Fatalf("Istio's config store refused the %s: %v", cfg.GroupVersionKind.Kind, err)
	}
	if cfg.GroupVersionKind == gvk.TrafficExtension {
		return &model.TrafficExtensionWrapper{TrafficExtension: cfg.Spec.(*extensions.TrafficExtension), Name: cfg.Name, Namespace: cfg.Namespace}
	}
	translator := istioextensions.NewController(store, nil, nil)
	stop := make(chan struct{})
	defer close(stop)
	go store.Run(stop)
	go translator.Run(stop)
	var translated []istioconfig.Config
	retry.UntilSuccessOrFail(t, func() error {
		if translated = translator.List(gvk.TrafficExtension, cfg.Namespace); len(translated) == 0 {
			return errors.New("no TrafficExtension from the WasmPlugin yet")
		}
		return nil
	}, retry.Timeout(10*time.Second))
	if len(translated) != 1 {
		t.Fatalf("Istio made %d TrafficExtensions of one WasmPlugin", len(translated))
	}
	te := translated[0]
	return &model.TrafficExtensionWrapper{TrafficExtension: te.Spec.(*extensions.TrafficExtension), Name: te.Name, Namespace: te.Namespace}
}

// TestManifestsAttachWhereTheySay checks, for every manifest, that its first
// comment line names its place and mode, that it selects the gateway by the
// gateway's labels (or its Gateway by targetRefs) and a sidecar by the
// workload's, with the mode Istio matches there, and where Istio's own code
// attaches it: a gateway manifest to the gateway's listeners only, a sidecar
// manifest to the workload's inbound listener only.
func TestManifestsAttachWhereTheySay(t *testing.T) {
	ordersAPI := map[string]string{"app": "orders-api"}
	rows := []struct {
		file      string
		place     string // what the first comment line says, with "match mode <mode>."
		mode      string // the only match mode
		namespace string
		selector  map[string]string // spec.selector.matchLabels, or
		gateway   string            // the Gateway API Gateway spec.targetRefs names
		attaches  []string          // the listeners Istio gives the filter
	}{
		{file: "wasmplugin-gateway.yaml", place: "gateway", mode: "CLIENT", namespace: rootNamespace, selector: map[string]string{"istio": "ingressgateway"},
			attaches: []string{"ingress gateway", "ingress gateway in istio-ingress"}},
		{file: "trafficextension-gateway.yaml", place: "gateway", mode: "CLIENT", namespace: rootNamespace, selector: map[string]string{"istio": "ingressgateway"},
			attaches: []string{"ingress gateway", "ingress gateway in istio-ingress"}},
		{file: "wasmplugin-sidecar.yaml", place: "sidecar", mode: "SERVER", namespace: "orders", selector: ordersAPI,
			attaches: []string{"orders-api inbound"}},
		{file: "trafficextension-sidecar.yaml", place: "sidecar", mode: "SERVER", namespace: "orders", selector: ordersAPI,
			attaches: []string{"orders-api inbound"}},
		{file: "wasmplugin-gateway-routes.yaml", place: "gateway", mode: "CLIENT", namespace: rootNamespace, selector: map[string]string{"istio": "ingressgateway"},
			attaches: []string{"ingress gateway", "ingress gateway in istio-ingress"}},
		{file: "trafficextension-gateway-routes.yaml", place: "gateway", mode: "CLIENT", namespace: "gateways", gateway: "api-gateway",
			attaches: []string{"Gateway API gateway"}},
	}

	var files, rowFiles []string
	for _, m := range manifests {
		files = append(files, m.file+" "+m.place)
	}
	for _, r := range rows {
		rowFiles = append(rowFiles, r.file+" "+r.place)
	}
	if !slices.Equal(files, rowFiles) {
		t.Fatalf("the table has rows for %q, want one per manifest: %q", rowFiles, files)
	}

	other := map[string]string{"gateway": "sidecar", "sidecar": "gateway"}
	for i, r := range rows {
		t.Run(r.file, func(t *testing.T) {
			data, err := os.ReadFile(r.file)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(data), "\n")
			if !strings.HasPrefix(first, "# Attaches to ") || !strings.Contains(first, r.place) ||
				strings.Contains(first, other[r.place]) || !strings.HasSuffix(first, ", match mode "+r.mode+".") {
				t.Errorf("first line %q, want \"# Attaches to …%s…, match mode %s.\"", first, r.place, r.mode)
			}

			obj := readManifest(t, manifests[i])
			if ns := obj["metadata"].(map[string]any)["namespace"]; ns != r.namespace {
				t.Errorf("namespace %v, want %s", ns, r.namespace)
			}
			ext := istioTrafficExtension(t, obj)
			if got := ext.GetSelector().GetMatchLabels(); !maps.Equal(got, r.selector) {
				t.Errorf("selector %v, want %v", got, r.selector)
			}
			var gateways []string
			for _, ref := range ext.GetTargetRefs() {
				gateways = append(gateways, ref.GetGroup()+"/"+ref.GetKind()+"/"+ref.GetName())
			}
			if want := []string{"gateway.networking.k8s.io/Gateway/" + r.gateway}; (r.gateway != "" || len(gateways) > 0) && !slices.Equal(gateways, want) {
				t.Errorf("targetRefs %q, want %q", gateways, want)
			}
			var modes []string
			for _, m := range ext.GetMatch() {
				modes = append(modes, m.GetMode().String())
			}
			if !slices.Equal(modes, []string{r.mode}) {
				t.Errorf("match modes %q, want [%s]", modes, r.mode)
			}
			if got := attachedTo(t, obj); !slices.Equal(got, r.attaches) {
				t.Errorf("Istio attaches it to %q, want %q", got, r.attaches)
			}
		})
	}
}

// TestWhereAMismatchedManifestAttaches pins, with Istio's own code, what the
// docs say about a manifest in the wrong place: one that matches nothing
// protects nothing, and Istio says nothing about it.
func TestWhereAMismatchedManifestAttaches(t *testing.T) {
	spec := func(obj map[string]any) map[string]any { return obj["spec"].(map[string]any) }
	setMatch := func(mode string) func(map[string]any) {
		return func(o map[string]any) { spec(o)["match"] = []any{map[string]any{"mode": mode}} }
	}
	for _, tc := range []struct {
		name     string
		place    string // the manifests of this place
		mutate   func(obj map[string]any)
		attaches []string
	}{
		{name: "a sidecar manifest pointed at the gateway by its selector (mode SERVER) attaches nowhere", place: "sidecar",
			mutate: func(o map[string]any) {
				o["metadata"].(map[string]any)["namespace"] = rootNamespace
				spec(o)["selector"] = map[string]any{"matchLabels": map[string]any{"istio": "ingressgateway"}}
			}},
		{name: "a gateway manifest with mode SERVER attaches nowhere", place: "gateway", mutate: setMatch("SERVER")},
		{name: "a gateway manifest without a match attaches to the gateway, as with CLIENT", place: "gateway",
			mutate:   func(o map[string]any) { delete(spec(o), "match") },
			attaches: []string{"ingress gateway", "ingress gateway in istio-ingress"}},
		{name: "a gateway manifest with CLIENT_AND_SERVER attaches to the gateway, as with CLIENT", place: "gateway",
			mutate:   setMatch("CLIENT_AND_SERVER"),
			attaches: []string{"ingress gateway", "ingress gateway in istio-ingress"}},
		{name: "a gateway manifest in the gateway's own namespace attaches to that gateway only", place: "gateway",
			mutate:   func(o map[string]any) { o["metadata"].(map[string]any)["namespace"] = "istio-ingress" },
			attaches: []string{"ingress gateway in istio-ingress"}},
		{name: "a gateway manifest with a selector no pod has attaches nowhere", place: "gateway",
			mutate: func(o map[string]any) {
				spec(o)["selector"] = map[string]any{"matchLabels": map[string]any{"app": "ingressgateway"}}
			}},
		{name: "a sidecar manifest without a match attaches to the workload's outbound calls too", place: "sidecar",
			mutate:   func(o map[string]any) { delete(spec(o), "match") },
			attaches: []string{"orders-api inbound", "orders-api outbound"}},
		{name: "a sidecar manifest with mode CLIENT attaches to the workload's outbound calls only", place: "sidecar",
			mutate: setMatch("CLIENT"), attaches: []string{"orders-api outbound"}},
	} {
		for _, m := range manifests {
			if m.class() != tc.place {
				continue
			}
			t.Run(m.file+"/"+tc.name, func(t *testing.T) {
				obj := readManifest(t, m)
				tc.mutate(obj)
				if got := attachedTo(t, obj); !slices.Equal(got, tc.attaches) {
					t.Errorf("Istio attaches it to %q, want %q", got, tc.attaches)
				}
			})
		}
	}
}
