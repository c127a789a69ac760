package introspection

import (
	"encoding/base64"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/internal/config"
	"github.com/phantom-token/envoy-phantom-token/internal/testjwt"
)

func cfg(t *testing.T, extra string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(`{"introspection_url":"https://ids.example:8443/introspect?v=1","cluster":"ids","client_id":"gate way","client_secret":"p@ss:wörd&+"`+extra+`}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRequest(t *testing.T) {
	headers, body := Request(cfg(t, ""), "a+b/c=")
	want := [][2]string{
		{":method", "POST"},
		{":path", "/introspect?v=1"},
		{":authority", "ids.example:8443"},
		{"content-type", "application/x-www-form-urlencoded"},
		{"accept", "application/jwt"},
		{"authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("gate+way:p%40ss%3Aw%C3%B6rd%26%2B"))},
	}
	if !reflect.DeepEqual(headers, want) {
		t.Errorf("headers\n got %q\nwant %q", headers, want)
	}
	if string(body) != "token=a%2Bb%2Fc%3D" {
		t.Errorf("body %q", body)
	}
	headers, _ = Request(cfg(t, `,"response_type":"application/token-introspection+jwt"`), "x")
	if headers[4][1] != "application/token-introspection+jwt" {
		t.Errorf("accept %q", headers[4][1])
	}
}

func TestStatusTable(t *testing.T) {
	want := func(s int) Outcome {
		switch s {
		case 200:
			return Active
		case 204:
			return Inactive
		case 503:
			return Unavailable
		case 401, 403, 404, 500, 502:
			return BadGateway
		}
		if s >= 504 && s <= 599 {
			return BadGateway
		}
		return ServerError
	}
	c := cfg(t, "")
	for s := 100; s <= 599; s++ {
		if s == 200 {
			continue
		}
		if got := Classify(c, upstream(s), []byte(testjwt.Make(`{}`)), time.Now()).Outcome; got != want(s) {
			t.Errorf("status %d: got %v, want %v", s, got, want(s))
		}
	}
	for _, s := range []int{600, 999} {
		if got := Classify(c, upstream(s), nil, time.Now()).Outcome; got != ServerError {
			t.Errorf("status %d: got %v", s, got)
		}
	}
	if got := Classify(c, nil, nil, time.Now()).Outcome; got != BadGateway {
		t.Errorf("no response: got %v", got)
	}
	envoy503 := [][2]string{{":status", "503"}, {"content-type", "text/plain"}}
	if got := Classify(c, envoy503, []byte("upstream connect error or disconnect/reset before headers"), time.Now()).Outcome; got != BadGateway {
		t.Errorf("Envoy's own 503 (connection failure): got %v, want BadGateway", got)
	}
}

func TestClassify200(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	in := func(d time.Duration) string { return `"exp":` + itoa(now.Add(d).Unix()) }
	jwtMode, rfc9701 := cfg(t, ""), cfg(t, `,"response_type":"application/token-introspection+jwt"`)
	big := testjwt.Make(`{"pad":"` + strings.Repeat("x", 16384) + `"}`)
	tests := []struct {
		name    string
		c       *config.Config
		body    string
		outcome Outcome
	}{
		{"phantom JWT", jwtMode, testjwt.Make(`{"sub":"a",` + in(time.Hour) + `}`), Active},
		{"JWT with trailing newline", jwtMode, testjwt.Make(`{}`) + "\n", Active},
		{"JWT whose exp has passed", jwtMode, testjwt.Make(`{` + in(-time.Second) + `}`), Inactive},
		{"JWT expiring now", jwtMode, testjwt.Make(`{` + in(0) + `}`), Inactive},
		{"JSON active false", jwtMode, `{"active":false}`, Inactive},
		{"JSON active true is not a JWT", jwtMode, `{"active":true,"sub":"a"}`, BadGateway},
		{"empty body", jwtMode, ``, BadGateway},
		{"whitespace body", jwtMode, " \n", BadGateway},
		{"HTML", jwtMode, `<html>oops</html>`, BadGateway},
		{"garbage", jwtMode, `a.b.c`, BadGateway},
		{"oversize JWT", jwtMode, big, BadGateway},
		{"JWT with active false", jwtMode, testjwt.Make(`{"active":false}`), Inactive},
		{"RFC 9701 active", rfc9701, testjwt.Make(`{"token_introspection":{"active":true,"scope":"a"}}`), Active},
		{"RFC 9701 inactive", rfc9701, testjwt.Make(`{"token_introspection":{"active":false}}`), Inactive},
		{"RFC 9701 expired", rfc9701, testjwt.Make(`{"token_introspection":{"active":true,` + in(-time.Second) + `}}`), Inactive},
		{"RFC 9701 without token_introspection", rfc9701, testjwt.Make(`{"sub":"a"}`), BadGateway},
		{"RFC 9701 without active", rfc9701, testjwt.Make(`{"token_introspection":{"sub":"a"}}`), BadGateway},
		{"RFC 9701 JSON inactive", rfc9701, `{"active":false}`, Inactive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Classify(tt.c, upstream(200), []byte(tt.body), now)
			if a.Outcome != tt.outcome {
				t.Fatalf("got %v (%s), want %v", a.Outcome, a.Reason, tt.outcome)
			}
			if a.Outcome == Active && a.JWT != strings.TrimSpace(tt.body) {
				t.Errorf("JWT %q", a.JWT)
			}
			if a.Outcome != Active && (a.JWT != "" || strings.Contains(a.Reason, tt.body) && tt.body != "") {
				t.Errorf("non-active answer leaks the body: %+v", a)
			}
		})
	}
}

func TestCacheTTL(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	exp := func(d time.Duration) string { return testjwt.Make(`{"exp":` + itoa(now.Add(d).Unix()) + `}`) }
	noExp := testjwt.Make(`{}`)
	def, ignore, off := cfg(t, `,"cache_max_ttl":"60s"`), cfg(t, `,"cache_max_ttl":"60s","cache_ignore_cache_control":true`), cfg(t, `,"cache":false`)
	tests := []struct {
		name         string
		c            *config.Config
		cacheControl []string
		body         string
		ttl          time.Duration
	}{
		{"configured maximum", def, nil, noExp, 60 * time.Second},
		{"max-age smaller", def, []string{"max-age=30"}, noExp, 30 * time.Second},
		{"max-age larger", def, []string{"public, max-age=600"}, noExp, 60 * time.Second},
		{"s-maxage wins over max-age", def, []string{"max-age=50, s-maxage=20"}, noExp, 20 * time.Second},
		{"quoted max-age", def, []string{`max-age="10"`}, noExp, 10 * time.Second},
		{"exp minus skew", def, nil, exp(20 * time.Second), 15 * time.Second},
		{"exp smaller than max-age", def, []string{"max-age=30"}, exp(20 * time.Second), 15 * time.Second},
		{"exp within the skew", def, nil, exp(3 * time.Second), 0},
		{"no-store", def, []string{"no-store"}, noExp, 0},
		{"no-cache", def, []string{"private", "No-Cache"}, noExp, 0},
		{"max-age=0", def, []string{"max-age=0"}, noExp, 0},
		{"unparsable max-age", def, []string{"max-age=soon"}, noExp, 0},
		{"ignore no-store", ignore, []string{"no-store"}, noExp, 60 * time.Second},
		{"ignore max-age but not exp", ignore, []string{"max-age=0"}, exp(20 * time.Second), 15 * time.Second},
		{"cache off", off, nil, noExp, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			headers := upstream(200)
			for _, v := range tt.cacheControl {
				headers = append(headers, [2]string{"Cache-Control", v})
			}
			a := Classify(tt.c, headers, []byte(tt.body), now)
			if a.Outcome != Active || a.CacheTTL != tt.ttl {
				t.Errorf("got %v ttl %v, want ttl %v", a.Outcome, a.CacheTTL, tt.ttl)
			}
		})
	}
}

// upstream is the header list of an answer that came from the identity server
// through Envoy's router.
func upstream(status int) [][2]string {
	return [][2]string{{":status", strconv.Itoa(status)}, {"x-envoy-upstream-service-time", "3"}}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
