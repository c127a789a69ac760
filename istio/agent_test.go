package istio_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	httprbac "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	httpwasm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	wasmextensions "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"github.com/google/go-containerregistry/pkg/registry"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	extensions "istio.io/api/extensions/v1alpha1"
	"istio.io/istio/pkg/wasm"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
	"github.com/phantom-token/envoy-phantom-token/e2e/harness"
	"github.com/phantom-token/envoy-phantom-token/istio/wasmimage"
)

// agentRequestTimeout is the timeout istiod puts on every remote Wasm fetch
// (pilot/pkg/model/extensions.go), which istio-agent passes to its cache.
const agentRequestTimeout = 30 * time.Second

// builtModule reads the filter module that `make build` wrote (WASM_PATH
// overrides it, as in the e2e suite).
func builtModule(t *testing.T) []byte {
	t.Helper()
	path := os.Getenv("WASM_PATH")
	if path == "" {
		path = filepath.Join("..", "build", "phantom_token.wasm")
	}
	module, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the filter module is missing (run `make istio-test` from the repository root, which builds it): %v", err)
	}
	return module
}

// pushedImage builds the image from module the way `make image` and `make
// push` do (through an OCI layout) and pushes it to an in-process registry.
// It returns the reference pushed (host:port/repository:tag) and the image's
// manifest digest, hex.
func pushedImage(t *testing.T, module []byte) (ref, manifestDigest string) {
	t.Helper()
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // the default keychain: no credentials from this machine
	img, err := wasmimage.Build(module)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "image")
	if err := wasmimage.WriteLayout(dir, img, "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if img, err = wasmimage.ReadLayout(dir); err != nil {
		t.Fatal(err)
	}
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	ref = strings.TrimPrefix(reg.URL, "http://") + "/filters/phantom-token:1.0.0"
	pushed, err := wasmimage.Push(context.Background(), img, ref, true)
	if err != nil {
		t.Fatal(err)
	}
	return ref, strings.TrimPrefix(pushed.DigestStr(), "sha256:")
}

func fileHash(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// TestImageFetcherExtractsTheModule pulls the image with the fetcher
// istio-agent uses for oci:// URLs.
func TestImageFetcherExtractsTheModule(t *testing.T) {
	module := builtModule(t)
	ref, manifestDigest := pushedImage(t, module)

	for _, tc := range []struct{ name, url string }{
		{"by tag", ref},
		{"by digest", strings.TrimSuffix(ref, ":1.0.0") + "@sha256:" + manifestDigest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fetcher := wasm.NewImageFetcher(context.Background(), wasm.ImageFetcherOption{})
			fetch, actualDigest, err := fetcher.PrepareFetch(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if actualDigest != manifestDigest {
				t.Errorf("PrepareFetch's digest %s, want the manifest digest %s", actualDigest, manifestDigest)
			}
			if actualDigest == fileHash(module) {
				t.Error("PrepareFetch's digest is the hash of plugin.wasm")
			}
			got, err := fetch()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, module) {
				t.Errorf("extracted %d bytes, not the %d-byte module", len(got), len(module))
			}
		})
	}
}

// TestAgentCacheThenEnvoy pulls the image through istio-agent's own Wasm
// cache and its conversion of the extension config istiod sends for a
// WasmPlugin or TrafficExtension whose url is oci:// and whose sha256 is set,
// then runs the file the cache wrote in Envoy with the plugin configuration
// the agent hands over.
func TestAgentCacheThenEnvoy(t *testing.T) {
	envoyPath := os.Getenv("ENVOY_PATH")
	if envoyPath == "" {
		t.Fatal("ENVOY_PATH is not set: run `make istio-test` from the repository root, which installs Envoy 1.40")
	}
	module := builtModule(t)
	ref, manifestDigest := pushedImage(t, module)
	url := "oci://" + ref

	cache := wasm.NewLocalFileCache(t.TempDir(), wasm.Options{})
	t.Cleanup(cache.Cleanup)
	get := func(checksum string) (string, error) {
		return cache.Get(url, wasm.GetOptions{
			Checksum:       checksum,
			ResourceName:   "orders.phantom-token",
			RequestTimeout: agentRequestTimeout,
		})
	}

	// Refused first, while the cache is empty, so nothing cached can answer.
	for _, tc := range []struct{ name, checksum string }{
		{"the hash of plugin.wasm", fileHash(module)},
		{"another image's digest", fileHash([]byte("another image"))},
	} {
		path, err := get(tc.checksum)
		if err == nil || !strings.Contains(err.Error(), "does not match") {
			t.Fatalf("sha256 = %s: Get = %q, %v; want a checksum mismatch", tc.name, path, err)
		}
	}

	modulePath, err := get(manifestDigest)
	if err != nil {
		t.Fatalf("sha256 = the manifest digest: %v", err)
	}
	written, err := os.ReadFile(modulePath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(written, module) {
		t.Fatalf("the cache wrote %d bytes to %s, not the %d-byte module", len(written), modulePath, len(module))
	}

	// What istio-agent does with the extension config istiod sends for each
	// manifest: the remote module becomes the file its cache wrote.
	var scenarios []agentScenario
	for _, m := range manifests {
		if m.place != "sidecar" {
			continue // the gateway manifests, whose pluginConfig and rules manifests_test.go checks
		}
		kind := m.kind
		d := deliver(t, readManifest(t, m))
		resources := []*anypb.Any{istiodExtensionConfig(t, d, url, manifestDigest)}
		if err := wasm.MaybeConvertWasmExtensionConfig(resources, cache); err != nil { // rewrites resources[0]
			t.Fatalf("%s: %v", kind, err)
		}
		local := localWasm(t, resources[0])
		vm := local.GetConfig().GetVmConfig()
		if got := vm.GetCode().GetLocal().GetFilename(); got != modulePath {
			t.Fatalf("%s: the agent gave Envoy %q, want the cached file %q", kind, got, modulePath)
		}
		if got := local.GetConfig().GetFailurePolicy(); got != wasmextensions.FailurePolicy_FAIL_CLOSED {
			t.Errorf("%s: failure policy %v after the agent, want FAIL_CLOSED", kind, got)
		}
		var config wrapperspb.StringValue
		if err := local.GetConfig().GetConfiguration().UnmarshalTo(&config); err != nil {
			t.Fatal(err)
		}
		scenarios = append(scenarios, agentScenario{kind: kind, pluginConfig: config.GetValue(), hostEnv: vm.GetEnvironmentVariables().GetHostEnvKeys()})
	}

	// With a wrong sha256 the agent puts a deny-all RBAC filter in place of
	// the plugin (failStrategy FAIL_CLOSE): every request gets 403.
	d := deliver(t, readManifest(t, manifests[0]))
	resources := []*anypb.Any{istiodExtensionConfig(t, d, url, fileHash(module))}
	if err := wasm.MaybeConvertWasmExtensionConfig(resources, cache); err != nil {
		t.Fatal(err)
	}
	var ec core.TypedExtensionConfig
	var rbac httprbac.RBAC
	if err := resources[0].UnmarshalTo(&ec); err != nil {
		t.Fatal(err)
	}
	if err := ec.GetTypedConfig().UnmarshalTo(&rbac); err != nil {
		t.Fatalf("a wrong sha256 left a %s, want the deny-all RBAC filter", ec.GetTypedConfig().GetTypeUrl())
	}
	if rbac.GetRules() == nil || len(rbac.GetRules().GetPolicies()) != 0 || rbac.GetRulesStatPrefix() != wasm.DefaultDenyStatPrefix {
		t.Errorf("a wrong sha256 gave the RBAC filter %v, want deny-all", &rbac)
	}

	runInEnvoy(t, envoyPath, modulePath, scenarios)
}

// istiodExtensionConfig is the extension config (ECDS resource) istiod sends
// for a WasmPlugin or TrafficExtension with an oci:// url, as
// pilot/pkg/model/extensions.go builds it: a remote data source whose cluster
// is a placeholder, the sha256, a 30s fetch timeout, the plugin configuration
// as a StringValue, the failure policy and the VM's host environment keys.
func istiodExtensionConfig(t *testing.T, d delivered, url, sha256 string) *anypb.Any {
	t.Helper()
	configuration, err := anypb.New(wrapperspb.String(d.pluginConfig))
	if err != nil {
		t.Fatal(err)
	}
	var hostEnv []string
	for _, e := range d.env {
		if e.GetValueFrom() == extensions.EnvValueSource_HOST {
			hostEnv = append(hostEnv, e.GetName())
		}
	}
	failure := wasmextensions.FailurePolicy_FAIL_OPEN
	if d.failStrategy == extensions.FailStrategy_FAIL_CLOSE {
		failure = wasmextensions.FailurePolicy_FAIL_CLOSED
	}
	filter, err := anypb.New(&httpwasm.Wasm{Config: &wasmextensions.PluginConfig{
		Name:          "orders.phantom-token",
		Configuration: configuration,
		FailurePolicy: failure,
		Vm: &wasmextensions.PluginConfig_VmConfig{VmConfig: &wasmextensions.VmConfig{
			Runtime: "envoy.wasm.runtime.v8",
			Code: &core.AsyncDataSource{Specifier: &core.AsyncDataSource_Remote{Remote: &core.RemoteDataSource{
				HttpUri: &core.HttpUri{
					Uri:              url,
					Timeout:          durationpb.New(agentRequestTimeout),
					HttpUpstreamType: &core.HttpUri_Cluster{Cluster: "_"},
				},
				Sha256: sha256,
			}}},
			EnvironmentVariables: &wasmextensions.EnvironmentVariables{HostEnvKeys: hostEnv},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	resource, err := anypb.New(&core.TypedExtensionConfig{Name: "orders.phantom-token", TypedConfig: filter})
	if err != nil {
		t.Fatal(err)
	}
	return resource
}

// localWasm unpacks the Wasm filter of an extension config.
func localWasm(t *testing.T, resource *anypb.Any) *httpwasm.Wasm {
	t.Helper()
	var ec core.TypedExtensionConfig
	if err := resource.UnmarshalTo(&ec); err != nil {
		t.Fatal(err)
	}
	var w httpwasm.Wasm
	if err := ec.GetTypedConfig().UnmarshalTo(&w); err != nil {
		t.Fatalf("the agent left a %s, want the Wasm filter", ec.GetTypedConfig().GetTypeUrl())
	}
	return &w
}

// agentScenario is a plugin as istio-agent hands it to Envoy.
type agentScenario struct {
	kind         string
	pluginConfig string   // the configuration's StringValue
	hostEnv      []string // vm_config.environment_variables.host_env_keys
}

// runInEnvoy serves each plugin configuration, byte for byte as the agent
// hands it to Envoy, on its own listener of one Envoy running modulePath. The
// manifests name the Envoy cluster Istio makes for the identity server
// (outbound|443||login.example.com); here that cluster reaches the Go
// identity server fixture, so the configuration runs unchanged. The harness
// gives the VM its environment as key_values, where Istio lists host_env_keys
// for Envoy to copy from the istio-proxy container's environment.
func runInEnvoy(t *testing.T, envoyPath, modulePath string, agentScenarios []agentScenario) {
	secret := fixtures.RandomToken()
	var scenarios []harness.Scenario
	clientIDs := map[string]string{}
	clusters := map[string]string{}
	for _, a := range agentScenarios {
		pc := parseJSON(t, a.pluginConfig)
		clientIDs[pc["client_id"].(string)] = secret
		clusters[pc["cluster"].(string)] = ""
		env := map[string]string{}
		for _, name := range a.hostEnv {
			env[name] = secret
		}
		scenarios = append(scenarios, harness.Scenario{
			Name:   strings.ToLower(a.kind),
			Plugin: a.pluginConfig, // verbatim
			Env:    env,
			VMID:   "", // as Istio sets it
		})
	}

	echo, err := fixtures.StartEcho(fixtures.AnyPort)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(echo.Close)
	ids, err := fixtures.StartIdS(fixtures.AnyPort, clientIDs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ids.Close)
	for name := range clusters {
		clusters[name] = ids.Addr.String()
	}
	clusters["echo"] = echo.Addr.String()

	// Envoy's work directory (bootstrap, log) stays when the test fails.
	dir, err := os.MkdirTemp("", "phantom-istio-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Envoy's work directory (bootstrap, log): %s", dir)
		} else {
			_ = os.RemoveAll(dir)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	envoy, err := harness.Start(ctx, harness.Config{
		EnvoyPath: envoyPath,
		WasmPath:  modulePath,
		Dir:       dir,
		Clusters:  clusters,
		Upstream:  "echo",
		Scenarios: scenarios,
	})
	if err != nil {
		t.Fatalf("Envoy with the module istio-agent wrote: %v", err)
	}
	t.Cleanup(func() {
		if err := envoy.Stop(); err != nil {
			t.Errorf("Envoy: %v", err)
		}
	})

	client := &http.Client{Timeout: 20 * time.Second}
	secrets := []string{secret}
	for _, a := range agentScenarios {
		t.Run(a.kind, func(t *testing.T) {
			base := envoy.URL(strings.ToLower(a.kind))

			token := ids.Issue(fixtures.TokenOptions{Scope: "read write"})
			path := "/orders/" + strings.ToLower(a.kind)
			status, _ := send(t, client, base+path, "Bearer "+token)
			if status != http.StatusOK {
				t.Fatalf("a valid token got %d, want 200", status)
			}
			jwt := ids.JWTOf(token)
			secrets = append(secrets, token, jwt)
			seen := echo.Requests(path)
			if len(seen) != 1 {
				t.Fatalf("the upstream got %d requests, want 1", len(seen))
			}
			if got := seen[0].Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer "+jwt {
				t.Fatal("the upstream did not get the identity server's JWT as its only Authorization")
			}
			if _, err := ids.Signer.Verify(jwt); err != nil {
				t.Fatalf("the JWT the upstream got: %v", err)
			}

			// Fail closed with the manifest's realm and scopes in the challenge.
			badPath := path + "/bad"
			status, header := send(t, client, base+badPath, "Bearer "+fixtures.RandomToken())
			wantChallenge := `Bearer realm="orders", scope="read write", error="invalid_token"`
			if status != http.StatusUnauthorized || header.Get("WWW-Authenticate") != wantChallenge {
				t.Errorf("an unknown token got %d %q, want 401 %q", status, header.Get("WWW-Authenticate"), wantChallenge)
			}
			if n := len(echo.Requests(badPath)); n != 0 {
				t.Errorf("the upstream got %d requests for an unknown token", n)
			}
		})
	}

	log, err := envoy.Log()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log, "wasm log") {
		t.Error("Envoy's log has no line from the plugin (wasm log …)")
	}
	for _, s := range append(secrets, ids.Secrets()...) {
		if s != "" && strings.Contains(log, s) {
			t.Errorf("Envoy's log (%s) holds a secret, token or JWT", filepath.Join(dir, "envoy.log"))
		}
	}
}

// send GETs url with an Authorization header and returns the status and headers.
func send(t *testing.T, client *http.Client, url, authorization string) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", authorization)
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode, res.Header
}

// parseJSON decodes a JSON object.
func parseJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}
