package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
)

// Bodies of the filter's local answers (spec §4).
const (
	body401 = `{"code":"unauthorized_request","message":"Access denied due to missing, invalid or expired credentials"}`
	body5xx = `{"code":"server_error","message":"Problem encountered processing the request"}`
)

// client talks to Envoy; it never follows redirects.
var client = &http.Client{
	Timeout:       20 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// result is a response from Envoy and what the upstream saw of that request.
type result struct {
	status   int
	header   http.Header
	body     string
	upstream []fixtures.Request
}

// call sends one request to a scenario's listener on a path of its own, so the
// upstream requests it caused can be told apart. header values are sent as
// given, duplicates included.
func call(t *testing.T, c *http.Client, scenario, method string, header http.Header, body string) result {
	t.Helper()
	path := uniquePath(t)
	req, err := http.NewRequest(method, suite.envoy.URL(scenario)+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == "" {
		req.Body, req.ContentLength = nil, 0
	}
	for k, v := range header {
		req.Header[k] = v
	}
	r, _ := roundTrip(t, c, req, path)
	return r
}

// roundTrip makes req (on path) and returns its result and the protocol it was
// answered over.
func roundTrip(t *testing.T, c *http.Client, req *http.Request, path string) (result, string) {
	t.Helper()
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{status: res.StatusCode, header: res.Header, body: string(b), upstream: suite.echo.Requests(path)}, res.Proto
}

// uniquePath names the calling test and a random part.
func uniquePath(t *testing.T) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "/" + hex.EncodeToString(b) + "/" + url.PathEscape(strings.ReplaceAll(t.Name(), "/", "."))
}

// bearer is an Authorization header carrying token.
func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// challengeParams parses the auth-params of a Bearer challenge.
func challengeParams(challenge string) map[string]string {
	params := map[string]string{}
	for _, m := range regexp.MustCompile(`([A-Za-z_]+)="([^"]*)"`).FindAllStringSubmatch(challenge, -1) {
		params[m[1]] = m[2]
	}
	return params
}

// expectLocal checks a local answer of the filter: status, exact JSON body
// (none for HEAD), no upstream request.
func expectLocal(t *testing.T, r result, status int, body string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status %d, want %d (body %q, headers %v)", r.status, status, r.body, r.header)
	}
	if r.body != body {
		t.Errorf("body %q, want %q", r.body, body)
	}
	if body != "" {
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type %q, want application/json", ct)
		}
	}
	if len(r.upstream) != 0 {
		t.Errorf("the upstream was called %d times, want 0", len(r.upstream))
	}
}

// introspectionDelta runs f and returns how many introspection calls the Go
// IdS received meanwhile (the suite runs its tests one at a time).
func introspectionDelta(f func()) int64 {
	before := suite.ids.Introspections()
	f()
	return suite.ids.Introspections() - before
}

// dialScenario opens a connection to a scenario's listener, to be used
// within d.
func dialScenario(t *testing.T, scenario string, d time.Duration) net.Conn {
	t.Helper()
	u, _ := url.Parse(suite.envoy.URL(scenario))
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(d))
	return conn
}

// rawRequest writes a request as given on a new connection to a scenario's
// listener and returns the response status.
func rawRequest(t *testing.T, scenario, request string) int {
	t.Helper()
	conn := dialScenario(t, scenario, 10*time.Second)
	defer conn.Close()
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode
}

// testCtx is a bounded context for calls to the fixtures and the admin API.
func testCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}
