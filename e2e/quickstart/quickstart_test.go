package quickstart

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestQuickStart runs the root envoy.yaml as `make run` does and follows the
// README's steps: get a token, call the API, call it with a bad token.
func TestQuickStart(t *testing.T) {
	envoyPath := os.Getenv("ENVOY_PATH")
	if envoyPath == "" {
		t.Fatal("ENVOY_PATH is not set (make e2e sets it)")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(t.TempDir(), "envoy.log"))
	if err != nil {
		t.Fatal(err)
	}
	stack, err := Start(root, envoyPath, logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer stack.Stop()

	// curl -u demo-app:… -d grant_type=client_credentials -d scope=read …
	req, _ := http.NewRequest("POST", "http://"+IdSAddr+"/oauth/v2/oauth-token",
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
		req, _ := http.NewRequest("GET", EnvoyURL+"/hello", nil)
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
	if n := stack.Echo.Count(); n != 1 {
		t.Errorf("the API was called %d times, want 1", n)
	}
}
