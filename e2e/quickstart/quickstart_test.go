package quickstart

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
)

// startDir is the package's directory: Start changes the working directory
// to the repository root, so tests find files from where they began.
var startDir, _ = os.Getwd()

func repoRoot(t *testing.T) string {
	t.Helper()
	if startDir == "" {
		t.Fatal("no working directory")
	}
	return filepath.Join(startDir, "..", "..")
}

// TestQuickStart runs the root envoy.yaml as `make run` does and follows the
// README's steps: get a token, call the API, call it with a bad token. It runs
// a copy of envoy.yaml whose ports are free ones (TestReadmeQuickStart ties the
// README to the file's own ports), so it passes while `make run` is running.
func TestQuickStart(t *testing.T) {
	envoyPath := os.Getenv("ENVOY_PATH")
	if envoyPath == "" {
		t.Fatal("ENVOY_PATH is not set (make e2e sets it)")
	}
	dir := t.TempDir()
	stack, err := Start(repoRoot(t), envoyPath, Options{FreePorts: true, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer stack.Stop()
	if p := stack.Ports; p.IdS == ReadmePorts.IdS || p.API == ReadmePorts.API || strings.HasSuffix(stack.EnvoyURL, ":8080") {
		t.Fatalf("the quick start runs on the README's ports (%+v, %s), want free ones", p, stack.EnvoyURL)
	}

	// curl -u demo-app:… -d grant_type=client_credentials -d scope=read …
	req, _ := http.NewRequest("POST", "http://"+Addr(stack.Ports.IdS)+fixtures.TokenPath,
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(AppID, AppSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token endpoint: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()

	call := func(token string) *http.Response {
		req, _ := http.NewRequest("GET", stack.EnvoyURL+"/hello", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp = call(tok.AccessToken)
	var seen struct {
		Header http.Header `json:"header"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&seen); err != nil || resp.StatusCode != 200 {
		t.Fatalf("API call: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if got, want := seen.Header.Values("Authorization"), []string{"Bearer " + stack.IdS.JWTOf(tok.AccessToken)}; len(got) != 1 || got[0] != want[0] || want[0] == "Bearer " {
		t.Errorf("the API received Authorization %q, want the JWT %q", got, want)
	}

	resp = call("not-a-real-token")
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("Www-Authenticate") != `Bearer realm="api", scope="read write", error="invalid_token"` {
		t.Errorf("bad token: %d %q", resp.StatusCode, resp.Header.Get("Www-Authenticate"))
	}

	// envoy.yaml's route rules: /health is public; /orders needs orders:read,
	// also when the path reaches it by a detour that Envoy normalises.
	resp, err = http.Get(stack.EnvoyURL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/health without a token: %d, want 200", resp.StatusCode)
	}
	for _, path := range []string{"/orders", "//orders", "/health/../orders"} {
		req, _ := http.NewRequest("GET", stack.EnvoyURL+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := `Bearer realm="orders", scope="orders:read", error="insufficient_scope"`; resp.StatusCode != 403 || resp.Header.Get("Www-Authenticate") != want {
			t.Errorf("%s with a read token: %d %q, want 403 %q", path, resp.StatusCode, resp.Header.Get("Www-Authenticate"), want)
		}
	}
	if n := stack.Echo.Count(); n != 2 {
		t.Errorf("the API was called %d times, want 2 (/hello and /health)", n)
	}
}

// TestReadmeQuickStart: the README's quick start names the ports envoy.yaml
// listens on and forwards to, and the credentials the local identity server
// takes, so that the commands TestQuickStart follows on free ports are the
// ones a reader types after `make run`.
func TestReadmeQuickStart(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	yaml, err := os.ReadFile(filepath.Join(repoRoot(t), "envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"-u " + AppID + ":" + AppSecret + " ",
		"http://" + Addr(ReadmePorts.IdS) + fixtures.TokenPath,
		"http://" + Addr(ReadmePorts.Envoy) + "/hello",
		"`" + Addr(ReadmePorts.Envoy) + "`",
		"`" + Addr(ReadmePorts.IdS) + "`",
		"`" + Addr(ReadmePorts.API) + "`",
	} {
		if !strings.Contains(string(readme), want) {
			t.Errorf("README.md does not contain %q", want)
		}
	}
	for _, port := range []int{ReadmePorts.Envoy, ReadmePorts.Admin, ReadmePorts.IdS, ReadmePorts.API} {
		if n := strings.Count(string(yaml), "port_value: "+strconv.Itoa(port)+" "); n != 1 {
			t.Errorf("envoy.yaml has port_value %d %d times, want once", port, n)
		}
	}
	if !strings.Contains(string(yaml), `"introspection_url": "http://`+Addr(ReadmePorts.IdS)+fixtures.IntrospectionPath+`"`) {
		t.Errorf("envoy.yaml's introspection_url is not the local identity server's %s", fixtures.IntrospectionPath)
	}
}

// TestCopyWithPorts: the copy of envoy.yaml that TestQuickStart runs differs
// from the file only in its ports.
func TestCopyWithPorts(t *testing.T) {
	dir := t.TempDir()
	path, err := copyWithPorts(filepath.Join(repoRoot(t), "envoy.yaml"), dir, Ports{Envoy: 0, Admin: 0, IdS: 40001, API: 40002})
	if err != nil {
		t.Fatal(err)
	}
	orig, _ := os.ReadFile(filepath.Join(repoRoot(t), "envoy.yaml"))
	got, _ := os.ReadFile(path)
	want := strings.NewReplacer(
		"port_value: 8080 ", "port_value: 0 ", "port_value: 9901 ", "port_value: 0 ",
		"port_value: 8443 ", "port_value: 40001 ", "port_value: 8081 ", "port_value: 40002 ",
		"127.0.0.1:8443", "127.0.0.1:40001", "127.0.0.1:8081", "127.0.0.1:40002",
	).Replace(string(orig))
	if string(got) != want {
		t.Errorf("the copy differs from envoy.yaml in more than its ports:\n%s", got)
	}
	broken := filepath.Join(dir, "broken.yaml")
	_ = os.WriteFile(broken, []byte(strings.Replace(string(orig), "port_value: 9901 ", "port_value: 9902 ", 1)), 0o600)
	if _, err := copyWithPorts(broken, t.TempDir(), Ports{}); err == nil || !strings.Contains(err.Error(), "9901") {
		t.Errorf("a file without the admin port: err = %v, want one naming 9901", err)
	}
}

// TestPortInUseIsNamed: when a port of the quick start is taken, the error
// names the address, what it is for and that `make run` may hold it.
func TestPortInUseIsNamed(t *testing.T) {
	ln, err := net.Listen("tcp", fixtures.AnyPort)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().(*net.TCPAddr).Port
	free := func() int {
		l, err := net.Listen("tcp", fixtures.AnyPort)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	err = CheckFree(Ports{Envoy: free(), Admin: free(), IdS: taken, API: free()})
	if err == nil {
		t.Fatal("CheckFree passed with a port in use")
	}
	for _, want := range []string{Addr(taken), "the local identity server", "already in use", "`make run`"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestEnvoyYAMLTLSCluster: the TLS cluster that envoy.yaml shows, commented
// out, is the one docs/configuration.md shows, and Envoy accepts envoy.yaml
// with it in place of the plain cluster and its client certificate lines
// uncommented (Envoy's validate mode, which also opens the certificate
// files: without the CA file it refuses).
func TestEnvoyYAMLTLSCluster(t *testing.T) {
	envoyPath := os.Getenv("ENVOY_PATH")
	if envoyPath == "" {
		t.Fatal("ENVOY_PATH is not set (make e2e sets it)")
	}
	root := repoRoot(t)
	yaml, err := os.ReadFile(filepath.Join(root, "envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs, err := os.ReadFile(filepath.Join(root, "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	// The commented-out cluster: its name and the indented lines after it.
	var cluster strings.Builder
	lines := strings.Split(string(yaml), "\n")
	for i, line := range lines {
		if line != "  # - name: idsvr" {
			continue
		}
		cluster.WriteString("- name: idsvr\n")
		for _, l := range lines[i+1:] {
			rest, ok := strings.CutPrefix(l, "  #  ")
			if !ok {
				break
			}
			cluster.WriteString(" " + rest + "\n")
		}
		break
	}
	if !strings.Contains(cluster.String(), "UpstreamTlsContext") {
		t.Fatalf("envoy.yaml has no commented-out TLS cluster for idsvr:\n%s", cluster.String())
	}
	if !strings.Contains(string(docs), "```yaml\n"+cluster.String()+"```") {
		t.Errorf("docs/configuration.md does not show envoy.yaml's TLS cluster:\n%s", cluster.String())
	}

	// With the client certificate, indented as a cluster of envoy.yaml, in
	// place of the plain idsvr cluster (its lines up to the next comment).
	withCert := regexp.MustCompile(`(?m)^(\s*)# (tls_certificates:|- certificate_chain:|  private_key:)`).
		ReplaceAllString(cluster.String(), "$1$2")
	if strings.Count(withCert, "tls_certificates:\n") != 1 || strings.Contains(withCert, "# - certificate_chain") || strings.Contains(withCert, "#   private_key") {
		t.Fatalf("cannot uncomment the client certificate:\n%s", withCert)
	}
	start := strings.Index(string(yaml), "\n  - name: idsvr\n")
	end := strings.Index(string(yaml), "\n  # A real identity server")
	if start < 0 || end < start {
		t.Fatal("envoy.yaml: cannot find the plain idsvr cluster followed by the TLS one")
	}
	dir := t.TempDir()
	tlsYAML := string(yaml[:start+1]) +
		regexp.MustCompile(`(?m)^(.)`).ReplaceAllString(strings.ReplaceAll(withCert, "/etc/envoy/", dir+"/"), "  $1") +
		string(yaml[end+1:])
	config := filepath.Join(dir, "envoy.yaml")
	if err := os.WriteFile(config, []byte(tlsYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	pki, err := fixtures.NewPKI(dir, "pki", "gateway")
	if err != nil {
		t.Fatal(err)
	}
	for from, to := range map[string]string{
		pki.CAFile: "idsvr-ca.pem", pki.Clients["gateway"].CertFile: "gateway.pem", pki.Clients["gateway"].KeyFile: "gateway-key.pem",
	} {
		if err := os.Rename(from, filepath.Join(dir, to)); err != nil {
			t.Fatal(err)
		}
	}
	validate := func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, envoyPath, "--mode", "validate", "-c", config, "--disable-hot-restart", "--log-level", "warn")
		cmd.Dir = root // the module's path in envoy.yaml is relative
		cmd.Env = append(os.Environ(), "PHANTOM_TOKEN_CLIENT_SECRET=validate")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := validate(); err != nil {
		t.Fatalf("Envoy refuses envoy.yaml with the TLS cluster: %v\n%s\n%s", err, out, tlsYAML)
	}
	if err := os.Remove(filepath.Join(dir, "idsvr-ca.pem")); err != nil {
		t.Fatal(err)
	}
	if out, err := validate(); err == nil || !strings.Contains(out, "idsvr-ca.pem") {
		t.Errorf("without its CA file: %v\n%s", err, out)
	}
}
