package istio_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	meshconfig "istio.io/api/mesh/v1alpha1"
	"istio.io/istio/pilot/pkg/config/kube/crd"
	"istio.io/istio/pilot/pkg/features"
	"istio.io/istio/pilot/pkg/model"
	v3 "istio.io/istio/pilot/pkg/xds/v3"
	xdsfake "istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/constants"
	"istio.io/istio/pkg/config/mesh"
	"istio.io/istio/pkg/envoy"
	istioagent "istio.io/istio/pkg/istio-agent"
	istiolog "istio.io/istio/pkg/log"
	"istio.io/istio/pkg/security"
	"istio.io/istio/pkg/test/env"
	"istio.io/istio/security/pkg/nodeagent/sds"
	"sigs.k8s.io/yaml"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
)

// The gateway manifests with one policy, which the live test applies as
// written (but url and sha256).
var liveGatewayManifests = []manifest{
	{file: "wasmplugin-gateway.yaml", kind: "WasmPlugin"},
	{file: "trafficextension-gateway.yaml", kind: "TrafficExtension"},
}

// The sidecar manifests (match mode SERVER), which the live test points at
// the gateway to show that they protect nothing there.
var liveSidecarManifests = []manifest{
	{file: "wasmplugin-sidecar.yaml", kind: "WasmPlugin"},
	{file: "trafficextension-sidecar.yaml", kind: "TrafficExtension"},
}

// liveClientSecret names the environment variable the manifests' vmConfig.env
// hands to the plugin (valueFrom: HOST).
const liveClientSecret = "PHANTOM_TOKEN_CLIENT_SECRET"

// TestLiveGateway runs Istio's discovery server (istiod's XDS server, with
// Istio's fake Kubernetes client, as Istio's own tests run it) on a loopback
// gRPC port and Istio's agent (pilot-agent's code) in this process, the agent
// starting our pinned Envoy as an ingress gateway; the image `make image`
// builds sits in a registry on 127.0.0.1. Each manifest is applied to the
// control plane from its file, with only url and sha256 set to the local
// image: the agent pulls the module, hands it to Envoy through ECDS, and
// requests through the gateway see the filter's policy.
func TestLiveGateway(t *testing.T) {
	envoyPath := os.Getenv("ENVOY_PATH")
	if envoyPath == "" {
		t.Fatal("ENVOY_PATH is not set: run `make istio-test` from the repository root, which installs Envoy 1.40")
	}
	start := time.Now()
	module := builtModule(t)
	ref, manifestDigest := pushedImage(t, module)
	l := startLive(t, envoyPath)
	t.Logf("control plane, agent and Envoy up in %v", time.Since(start).Round(time.Millisecond))

	// Before any manifest: the gateway routes, and nothing authenticates.
	l.waitApplied(t)
	l.expect(t, probe{path: "/orders/baseline", status: http.StatusOK})

	for _, m := range liveGatewayManifests {
		t.Run(m.kind+" "+filepath.Base(m.file), func(t *testing.T) {
			obj := readObject(t, filepath.Join(packageDir, m.file), m.kind)
			pc := parseJSON(t, deliver(t, obj).pluginConfig)
			realm, _ := pc["realm"].(string)
			name := l.apply(t, obj, ref, manifestDigest)
			l.checkDelivered(t, name, module)

			path := "/orders/" + strings.ToLower(m.kind)
			l.expect(t, probe{path: path, status: http.StatusUnauthorized, realm: realm})
			// The client secret reaches the identity server only through
			// vmConfig.env: the test sets it in the environment Envoy inherits,
			// and the identity server answers nothing without it.
			l.expect(t, probe{path: path, scope: tokenScope(pc), status: http.StatusOK, jwt: true})
		})
	}

	t.Run("WasmPlugin wasmplugin-gateway-routes.yaml on examples/virtualservice.yaml", func(t *testing.T) {
		obj := readObject(t, filepath.Join(packageDir, "wasmplugin-gateway-routes.yaml"), "WasmPlugin")
		name := l.apply(t, obj, ref, manifestDigest)
		l.checkDelivered(t, name, module)
		// The rules name the Envoy routes Istio makes of the VirtualService:
		// health is off, orders.read and orders.write want their scopes, and
		// admin has its own realm.
		for _, p := range []probe{
			{name: "route health: the filter is off", path: "/health", status: http.StatusOK},
			{name: "route orders.read: no token, the top-level realm", path: "/orders/r1", status: http.StatusUnauthorized, realm: "api"},
			{name: "route orders.read: a token with orders:read", path: "/orders/r2", scope: "orders:read", status: http.StatusOK, jwt: true},
			{name: "route orders.write: orders:read is not enough", method: http.MethodPost, path: "/orders/w1", scope: "orders:read", status: http.StatusForbidden},
			{name: "route orders.write: a token with orders:write", method: http.MethodPost, path: "/orders/w2", scope: "orders:write", status: http.StatusOK, jwt: true},
			{name: "route admin: its own realm", path: "/admin/a1", status: http.StatusUnauthorized, realm: "admin"},
		} {
			t.Run(p.name, func(t *testing.T) { l.expect(t, p) })
		}
	})

	// Digest pinning: with the hash of plugin.wasm as sha256 (not the image
	// manifest's digest) the agent refuses the module and, failStrategy
	// FAIL_CLOSE, hands Envoy a deny-all RBAC filter in its place.
	t.Run("a sha256 that is not the image's digest: the agent denies every request", func(t *testing.T) {
		m := liveGatewayManifests[0]
		obj := readObject(t, filepath.Join(packageDir, m.file), m.kind)
		name := l.apply(t, obj, ref, fileHash(module))
		if name == "" {
			t.Fatalf("no listener of the gateway refers to the plugin; they refer to %q", l.ecdsNames(t))
		}
		if got := l.ecds(t, name).TypedConfig.Type; got != rbacFilterType {
			t.Fatalf("ECDS %s is a %s, want the agent's deny-all RBAC filter", name, got)
		}
		l.expect(t, probe{path: "/orders/wrong-digest", scope: "read write", status: http.StatusForbidden})
	})

	// The sidecar manifests say match mode SERVER. Pointed at the gateway
	// (its namespace and labels, what a user changes first), Istio attaches
	// them nowhere: a gateway's traffic is CLIENT. Requests pass
	// unauthenticated, with nothing in any log. docs/istio.md cites this.
	// The same manifest with CLIENT, applied first, shows that the mode alone
	// decides.
	for _, m := range liveSidecarManifests {
		t.Run("SIDECAR MANIFEST ON THE GATEWAY PROTECTS NOTHING: "+m.file, func(t *testing.T) {
			onGateway := func(t *testing.T, mode string) map[string]any {
				obj := readObject(t, filepath.Join(packageDir, m.file), m.kind)
				if got := deliver(t, obj).modes; len(got) != 1 || got[0] != "SERVER" {
					t.Fatalf("%s matches %q, want the sidecar's [SERVER]", m.file, got)
				}
				obj["metadata"].(map[string]any)["namespace"] = "istio-system"
				spec := obj["spec"].(map[string]any)
				spec["selector"] = map[string]any{"matchLabels": map[string]any{"istio": "ingressgateway"}}
				spec["match"] = []any{map[string]any{"mode": mode}}
				return obj
			}
			t.Run("control: the same with match mode CLIENT authenticates", func(t *testing.T) {
				name := l.apply(t, onGateway(t, "CLIENT"), ref, manifestDigest)
				l.checkDelivered(t, name, module)
				l.expect(t, probe{path: "/orders/client-" + strings.ToLower(m.kind), status: http.StatusUnauthorized})
			})
			t.Run("as written, match mode SERVER: no filter, requests pass unauthenticated", func(t *testing.T) {
				name := l.apply(t, onGateway(t, "SERVER"), ref, manifestDigest)
				if name != "" {
					t.Fatalf("Istio attached %s (match mode SERVER) to the gateway: Istio changed how gateways match; update the manifests and docs/istio.md", m.file)
				}
				l.expect(t, probe{path: "/orders/server-" + strings.ToLower(m.kind), status: http.StatusOK})
			})
		})
	}

	l.checkLogs(t)
}

// tokenScope is a scope that satisfies a pluginConfig's top-level policy: its
// scopes and required_scopes (a string or a list).
func tokenScope(pluginConfig map[string]any) string {
	var scopes []string
	for _, key := range []string{"scopes", "required_scopes"} {
		switch v := pluginConfig[key].(type) {
		case string:
			scopes = append(scopes, strings.Fields(v)...)
		case []any:
			for _, s := range v {
				scopes = append(scopes, fmt.Sprint(s))
			}
		}
	}
	if len(scopes) == 0 {
		return "read"
	}
	return strings.Join(scopes, " ")
}

// live is the running control plane, agent, Envoy and fixtures.
type live struct {
	fds         *xdsfake.FakeDiscoveryServer
	echo        *fixtures.Echo
	ids         *fixtures.IdS
	secret      string
	gatewayURL  string
	adminURL    string
	envoyLog    string
	client      *http.Client
	seenSecrets []string
	cached      map[string]bool // the directories the agent's cache wrote the module to
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startLive(t *testing.T, envoyPath string) *live {
	// Istio's logs only when they matter.
	for _, s := range istiolog.Scopes() {
		s.SetOutputLevel(istiolog.ErrorLevel)
	}
	// Istio's metadata exchange and ALPN filters are in Istio's Envoy build,
	// not in upstream Envoy.
	for _, f := range []*bool{&features.MetadataExchange, &features.ALPNFilter} {
		old := *f
		*f = false
		t.Cleanup(func() { *f = old })
	}
	// The agent's Wasm cache is Istio's fixed directory.
	if err := os.MkdirAll(constants.IstioDataDir, 0o755); err != nil {
		t.Fatalf("istio-agent keeps Wasm modules in %s (an Istio constant): %v", constants.IstioDataDir, err)
	}
	// The test works in a directory of its own: the agent's SDS socket is
	// relative to the working directory (./var/run/secrets/workload-spiffe-uds),
	// which Envoy inherits. It stays, with the bootstrap and Envoy's log, when
	// the test fails.
	work, err := os.MkdirTemp("", "phantom-istio-live-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(work, "envoy.log")); err == nil {
				t.Logf("the end of Envoy's log:\n%s", tail(b, 8000))
			}
			t.Logf("the work directory (bootstrap, Envoy's log): %s", work)
		} else {
			_ = os.RemoveAll(work)
		}
	})
	t.Chdir(work)

	l := &live{
		client: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
		cached: map[string]bool{},
	}
	l.secret = fixtures.RandomToken()
	t.Setenv(liveClientSecret, l.secret)

	if l.echo, err = fixtures.StartEcho(fixtures.AnyPort); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.echo.Close)
	if l.ids, err = fixtures.StartIdS(fixtures.AnyPort, map[string]string{"api-gateway": l.secret}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.ids.Close)

	gatewayPort := freePort(t)
	var around bytes.Buffer
	src, err := os.ReadFile(filepath.Join(packageDir, "testdata", "live", "mesh.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	vs, err := os.ReadFile(filepath.Join(packageDir, "examples", "virtualservice.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := template.Must(template.New("mesh").Parse(string(src))).Execute(&around, map[string]int{
		"GatewayPort": gatewayPort, "IdSPort": l.ids.Addr.Port, "EchoPort": l.echo.Addr.Port,
	}); err != nil {
		t.Fatal(err)
	}

	xdsListener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.fds = xdsfake.NewFakeDiscoveryServer(t, xdsfake.FakeOptions{
		ConfigString:    around.String() + "\n---\n" + string(vs),
		ListenerBuilder: func() (net.Listener, error) { return xdsListener, nil },
	})

	// The ingress gateway, as pilot-agent `proxy router` starts it off-cluster.
	adminPort, statusPort, promPort := freePort(t), freePort(t), freePort(t)
	t.Setenv("ISTIO_METAJSON_LABELS", `{"istio":"ingressgateway"}`)
	t.Setenv("ISTIO_META_NAMESPACE", "istio-system")
	proxyConfig := mesh.DefaultProxyConfig()
	proxyConfig.DiscoveryAddress = xdsListener.Addr().String()
	proxyConfig.ControlPlaneAuthPolicy = meshconfig.AuthenticationPolicy_NONE
	proxyConfig.BinaryPath = envoyPath
	proxyConfig.ConfigPath = filepath.Join(work, "proxy")
	proxyConfig.ProxyBootstrapTemplatePath = filepath.Join(env.IstioSrc, "tools", "packaging", "common", "envoy_bootstrap.json")
	proxyConfig.ProxyAdminPort = int32(adminPort)
	proxyConfig.StatusPort = int32(statusPort)
	proxyConfig.TerminationDrainDuration = nil
	proxyConfig.Concurrency = nil
	agentOptions := &istioagent.AgentOptions{
		ProxyType: model.Router,
		// type~ip~pod.namespace~domain, as pilot-agent makes it
		ServiceNode:                "router~127.0.0.1~istio-ingressgateway-live.istio-system~istio-system.svc.cluster.local",
		XdsUdsPath:                 filepath.Join(proxyConfig.ConfigPath, "XDS"), // where the bootstrap points Envoy
		ProxyIPAddresses:           []string{"127.0.0.1"},
		EnvoyStatusPort:            statusPort,
		EnvoyPrometheusPort:        promPort,
		WorkloadIdentitySocketFile: security.DefaultWorkloadIdentitySocketFile,
		SDSFactory: func(o *security.Options, c security.SecretManager, p *meshconfig.PrivateKeyProvider) istioagent.SDSService {
			return sds.NewServer(o, c, p)
		},
	}
	secOpts := &security.Options{
		FileMountedCerts:  true, // no CA: the gateway serves plain HTTP
		TrustDomain:       "cluster.local",
		WorkloadNamespace: "istio-system",
		ServiceAccount:    "istio-ingressgateway",
	}
	l.envoyLog = filepath.Join(work, "envoy.log")
	envoyOptions := envoy.ProxyConfig{
		LogLevel:          "warning",
		ComponentLogLevel: "wasm:info",
		NodeIPs:           []string{"127.0.0.1"},
	}
	restore := redirectOutput(t, l.envoyLog)
	agent := istioagent.NewAgent(proxyConfig, agentOptions, secOpts, envoyOptions)
	ctx, cancel := context.WithCancel(context.Background())
	wait, err := agent.Run(ctx)
	if err != nil {
		restore()
		cancel()
		t.Fatalf("istio-agent: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		wait()
		agent.Close()
		for dir := range l.cached {
			_ = os.RemoveAll(dir)
		}
	})
	l.adminURL = fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	l.gatewayURL = fmt.Sprintf("http://127.0.0.1:%d", gatewayPort)
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := l.client.Get(l.adminURL + "/ready")
		if err == nil {
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			restore()
			t.Fatalf("Envoy is not ready after 60s (log: %s): %v", l.envoyLog, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	restore() // Envoy holds the log file; the test's output is its own again
	return l
}

// packageDir is this package's directory, found before the live test
// changes its working directory.
var packageDir = func() string {
	d, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return d
}()

// redirectOutput points this process's stdout and stderr, which the agent
// hands to Envoy, at a file until restore is called.
func redirectOutput(t *testing.T, path string) (restore func()) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	stdout, stderr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = f, f
	done := false
	return func() {
		if !done {
			os.Stdout, os.Stderr = stdout, stderr
			done = true
		}
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// apply sets the manifest's url to the local image and its sha256 (the
// image manifest's digest, but for the test of a wrong one), adds it to the control
// plane's store as `kubectl apply` would, waits until Envoy runs the
// configuration of that push, and returns the name of the ECDS resource a
// listener of the gateway refers to for it ("" for none).
func (l *live) apply(t *testing.T, obj map[string]any, ref, sha256 string) string {
	t.Helper()
	wasm := wasmBlock(obj)
	wasm["url"] = "oci://" + ref
	wasm["sha256"] = sha256
	cfg := l.parse(t, obj)
	if _, err := l.fds.Store().Create(cfg); err != nil {
		t.Fatal(err)
	}
	// Removed when the subtest ends, as `kubectl delete` would.
	t.Cleanup(func() {
		if err := l.fds.Store().Delete(cfg.GroupVersionKind, cfg.Name, cfg.Namespace, nil); err != nil {
			t.Fatal(err)
		}
		l.waitApplied(t)
	})
	l.waitApplied(t)
	return l.ecdsName(t, cfg.Namespace, cfg.Name)
}

func (l *live) parse(t *testing.T, obj map[string]any) config.Config {
	t.Helper()
	b, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	configs, _, err := crd.ParseInputs(string(b))
	if err != nil || len(configs) != 1 {
		t.Fatalf("Istio reads the manifest as %d configs: %v", len(configs), err)
	}
	return configs[0]
}

// waitApplied waits until istiod has processed every update, has computed
// the gateway's configuration from the latest one, and Envoy (through the
// agent) has acknowledged everything istiod sent it: then whether the plugin
// is in Envoy's listeners is istiod's decision, not a race.
func (l *live) waitApplied(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if l.applied() {
			time.Sleep(200 * time.Millisecond) // and nothing since
			if l.applied() {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway has not acknowledged istiod's latest push (%s) after 30s", l.fds.PushContext().PushVersion)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (l *live) applied() bool {
	d := l.fds.Discovery
	if d.CommittedUpdates.Load() < d.InboundUpdates.Load() {
		return false
	}
	clients := d.AllClients()
	if len(clients) != 1 {
		return false
	}
	proxy := clients[0].Proxy()
	if proxy.LastPushContext != l.fds.PushContext() {
		return false
	}
	watched := proxy.DeepCloneWatchedResources()
	if watched[v3.ListenerType].NonceSent == "" {
		return false
	}
	for _, w := range watched {
		if w.NonceAcked != w.NonceSent {
			return false
		}
	}
	return true
}

// configDump is Envoy's /config_dump for one resource kind, generically.
func (l *live) configDump(t *testing.T, resource string) map[string]any {
	t.Helper()
	res, err := l.client.Get(l.adminURL + "/config_dump?resource=" + resource)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	var dump map[string]any
	if err := json.Unmarshal(body, &dump); err != nil {
		t.Fatalf("config_dump?resource=%s: %v", resource, err)
	}
	return dump
}

// ecdsNames returns the names of the ECDS resources Envoy's dynamic
// listeners refer to (an HTTP filter's config_discovery).
func (l *live) ecdsNames(t *testing.T) []string {
	t.Helper()
	var names []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if _, ok := v["config_discovery"]; ok {
				name, _ := v["name"].(string)
				names = append(names, name)
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(l.configDump(t, "dynamic_listeners"))
	return names
}

// ecdsName is the name of the ECDS resource Istio makes of the manifest
// namespace/name that a listener of the gateway refers to, or "".
// Istio names it extensions.istio.io/trafficextension/<namespace>.<name>,
// with "~istio-translated-wasmplugin" after it for a WasmPlugin.
func (l *live) ecdsName(t *testing.T, namespace, name string) string {
	t.Helper()
	for _, n := range l.ecdsNames(t) {
		_, after, _ := strings.Cut(n, "/trafficextension/")
		if after == namespace+"."+name || strings.HasPrefix(after, namespace+"."+name+"~") {
			return n
		}
	}
	return ""
}

// ecdsFilter is the part of an ECDS resource in Envoy's config dump the test
// reads.
type ecdsFilter struct {
	TypedConfig struct {
		Type   string `json:"@type"`
		Config struct {
			VMConfig struct {
				Code struct {
					Local struct {
						Filename string `json:"filename"`
					} `json:"local"`
				} `json:"code"`
				EnvironmentVariables struct {
					HostEnvKeys []string `json:"host_env_keys"`
				} `json:"environment_variables"`
			} `json:"vm_config"`
		} `json:"config"`
	} `json:"typed_config"`
}

// ecds returns the ECDS resource name as Envoy holds it.
func (l *live) ecds(t *testing.T, name string) ecdsFilter {
	t.Helper()
	for _, f := range list(l.configDump(t, "ecds_filters")["configs"]) {
		ecds, _ := f.(map[string]any)["ecds_filter"].(map[string]any)
		if ecds["name"] != name {
			continue
		}
		b, err := json.Marshal(ecds)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(l.secret)) {
			t.Fatalf("the ECDS resource %s holds the client secret", name)
		}
		var e ecdsFilter
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	t.Fatalf("Envoy has no ECDS resource %s", name)
	return ecdsFilter{}
}

// checkDelivered checks that the plugin reached Envoy through ECDS as a file
// istio-agent fetched into its cache, holding the module `make image` packed,
// with the client secret left to the environment (vmConfig.env, valueFrom
// HOST: Envoy reads it from its own environment, which the test set).
func (l *live) checkDelivered(t *testing.T, name string, module []byte) {
	t.Helper()
	if name == "" {
		t.Fatalf("no listener of the gateway refers to the plugin; they refer to the ECDS resources %q", l.ecdsNames(t))
	}
	e := l.ecds(t, name)
	if e.TypedConfig.Type != wasmFilterType {
		t.Fatalf("ECDS %s is a %s, want the Wasm filter (the agent puts a deny-all RBAC filter there when the fetch fails)", name, e.TypedConfig.Type)
	}
	vm := e.TypedConfig.Config.VMConfig
	if keys := vm.EnvironmentVariables.HostEnvKeys; len(keys) != 1 || keys[0] != liveClientSecret {
		t.Errorf("ECDS %s: host_env_keys %q, want [%s]", name, keys, liveClientSecret)
	}
	filename := vm.Code.Local.Filename
	if !strings.HasPrefix(filename, constants.IstioDataDir+"/") {
		t.Fatalf("ECDS %s: the module is %q, want a file of the agent's cache in %s", name, filename, constants.IstioDataDir)
	}
	got, err := os.ReadFile(filename)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, module) {
		t.Fatalf("the agent's file %s is not the module `make image` packed", filename)
	}
	l.cached[filepath.Dir(filename)] = true
}

const (
	wasmFilterType = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
	rbacFilterType = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
)

// probe is one request through the gateway and what it must get.
type probe struct {
	name, method, path string
	scope              string // a token with this scope, or none
	status             int
	realm              string // the challenge's realm on a 401
	jwt                bool   // the API gets the identity server's JWT
}

func (l *live) expect(t *testing.T, p probe) {
	t.Helper()
	method := p.method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequest(method, l.gatewayURL+p.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "api.example.com"
	var token string
	if p.scope != "" {
		token = l.ids.Issue(fixtures.TokenOptions{Scope: p.scope})
		req.Header.Set("Authorization", "Bearer "+token)
		l.seenSecrets = append(l.seenSecrets, token)
	}
	res, err := l.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	if res.StatusCode != p.status {
		t.Fatalf("%s %s: %d, want %d", method, p.path, res.StatusCode, p.status)
	}
	seen := l.echo.Requests(p.path)
	if p.status != http.StatusOK {
		if len(seen) != 0 {
			t.Errorf("%s %s: the API got the request", method, p.path)
		}
		if p.realm != "" {
			if got := res.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer realm="`+p.realm+`"`) {
				t.Errorf("%s %s: WWW-Authenticate %q, want realm %q", method, p.path, got, p.realm)
			}
		}
		return
	}
	if len(seen) != 1 {
		t.Fatalf("%s %s: the API got %d requests, want 1", method, p.path, len(seen))
	}
	authz := seen[0].Header.Values("Authorization")
	if !p.jwt {
		if len(authz) != 0 {
			t.Errorf("%s %s: the API got an Authorization header", method, p.path)
		}
		return
	}
	jwt := l.ids.JWTOf(token)
	l.seenSecrets = append(l.seenSecrets, jwt)
	if len(authz) != 1 || authz[0] != "Bearer "+jwt {
		t.Fatalf("%s %s: the API did not get the identity server's JWT as its only Authorization", method, p.path)
	}
	if _, err := l.ids.Signer.Verify(jwt); err != nil {
		t.Fatalf("the JWT the API got: %v", err)
	}
}

// checkLogs checks that the plugin logged through Envoy and that no token,
// JWT or secret is in Envoy's log.
func (l *live) checkLogs(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(l.envoyLog)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("wasm log")) {
		t.Error("Envoy's log has no line from the plugin (wasm log …)")
	}
	for _, s := range append(append(l.seenSecrets, l.secret), l.ids.Secrets()...) {
		if s != "" && bytes.Contains(b, []byte(s)) {
			t.Errorf("Envoy's log (%s) holds a secret, token or JWT", l.envoyLog)
		}
	}
}
