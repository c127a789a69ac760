package introspection

import (
	"encoding/base64"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/internal/config"
	"github.com/phantom-token/envoy-phantom-token/internal/jsonlimit"
	"github.com/phantom-token/envoy-phantom-token/internal/jwt"
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
	headers, body := Request(cfg(t, ""), "a+b/c=", nil)
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
	headers, _ = Request(cfg(t, `,"response_type":"application/token-introspection+jwt"`), "x", nil)
	if headers[4][1] != "application/token-introspection+jwt" {
		t.Errorf("accept %q", headers[4][1])
	}
	// tls_client_auth (RFC 8705 §2): the certificate authenticates; no
	// Authorization, and client_id in the body, form-encoded.
	c, err := config.Parse([]byte(`{"introspection_url":"https://ids/i","cluster":"ids","client_id":"gate way&x","client_auth":"tls_client_auth"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	headers, body = Request(c, "a+b", nil)
	wantTLS := [][2]string{{":method", "POST"}, {":path", "/i"}, {":authority", "ids"},
		{"content-type", "application/x-www-form-urlencoded"}, {"accept", "application/jwt"}}
	if !reflect.DeepEqual(headers, wantTLS) || string(body) != "token=a%2Bb&client_id=gate+way%26x" {
		t.Errorf("tls_client_auth: headers %q, body %q", headers, body)
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
	member := cfg(t, `,"jwt_member":"jwt"`)
	big := testjwt.Make(`{"pad":"` + strings.Repeat("x", 16384) + `"}`)
	valid := testjwt.Make(`{"sub":"a",` + in(time.Hour) + `}`)
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
		{"JSON active false twice", jwtMode, `{"active":false,"active":true}`, BadGateway},
		{"JSON active false with a duplicate scope", jwtMode, `{"active":false,"scope":"a","scope":"b"}`, BadGateway},
		{"JSON nested past the depth bound", jwtMode, `{"active":false,"x":` + testjwt.Nest("[", jsonlimit.MaxDepth) + `}`, BadGateway},
		{"JSON nested at the depth bound", jwtMode, `{"active":false,"x":` + testjwt.Nest("[", jsonlimit.MaxDepth-1) + `}`, Inactive},
		{"JSON with a JWT member but no jwt_member configured", jwtMode, keycloak(true, valid), BadGateway},
		{"JSON active false with a JWT, no jwt_member configured", jwtMode, keycloak(false, valid), Inactive},
		{"JWT with a scope array", jwtMode, testjwt.Make(`{"scope":["a","b"]}`), Active},
		{"JWT with a scope number (matters only when scopes are required)", jwtMode, testjwt.Make(`{"scope":1}`), Active},
		{"JWT with a duplicate scope", jwtMode, testjwt.Make(`{"scope":"a","scope":"admin"}`), BadGateway},
		{"RFC 9701 with a duplicate active", rfc9701, testjwt.Make(`{"token_introspection":{"active":false,"active":true}}`), BadGateway},
		{"jwt_member: active true with a JWT", member, keycloak(true, valid), Active},
		{"jwt_member: active true, JWT member escaped", member, `{"active":true,"jwt":"` + strings.Replace(valid, ".", `\u002e`, 1) + `"}`, Active},
		{"jwt_member: active false with a JWT (CVE-2026-18208)", member, keycloak(false, valid), Inactive},
		{"jwt_member: active missing", member, `{"jwt":"` + valid + `"}`, Inactive},
		{"jwt_member: active the string true", member, `{"active":"true","jwt":"` + valid + `"}`, Inactive},
		{"jwt_member: active 1", member, `{"active":1,"jwt":"` + valid + `"}`, Inactive},
		{"jwt_member: active null", member, `{"active":null,"jwt":"` + valid + `"}`, Inactive},
		{"jwt_member: inactive without a JWT", member, `{"active":false}`, Inactive},
		{"jwt_member: active true without the member", member, `{"active":true,"sub":"a"}`, BadGateway},
		{"jwt_member: active true, member another name", member, `{"active":true,"phantom_token":"` + valid + `"}`, BadGateway},
		{"jwt_member: member a number", member, `{"active":true,"jwt":42}`, BadGateway},
		{"jwt_member: member an object", member, `{"active":true,"jwt":{"a":"b"}}`, BadGateway},
		{"jwt_member: member null", member, `{"active":true,"jwt":null}`, BadGateway},
		{"jwt_member: member not a JWT", member, `{"active":true,"jwt":"opaque"}`, BadGateway},
		{"jwt_member: member JWT expired", member, keycloak(true, testjwt.Make(`{`+in(-time.Second)+`}`)), Inactive},
		{"jwt_member: member JWT says inactive", member, keycloak(true, testjwt.Make(`{"active":false}`)), Inactive},
		{"jwt_member: member JWT over max_jwt_size", member, keycloak(true, big), BadGateway},
		{"jwt_member: member JWT with a duplicate exp", member, keycloak(true, testjwt.Make(`{"exp":1,"exp":2000000000}`)), BadGateway},
		{"jwt_member: duplicate member", member, `{"active":true,"jwt":"` + valid + `","jwt":"` + valid + `"}`, BadGateway},
		{"jwt_member: duplicate active", member, `{"active":true,"jwt":"` + valid + `","active":false}`, BadGateway},
		{"jwt_member: other members may be large", member, `{"active":true,"pad":"` + strings.Repeat("x", 3*16384) + `","jwt":"` + valid + `"}`, Active},
		{"jwt_member: answer over 4 × max_jwt_size + 4096", member, `{"active":true,"pad":"` + strings.Repeat("x", 4*16384+4096) + `","jwt":"` + valid + `"}`, BadGateway},
		{"jwt_member: top-level exp passed, active true", member, `{"active":true,"jwt":"` + valid + `",` + in(-time.Second) + `}`, Inactive},
		{"jwt_member: top-level exp now, active true", member, `{"active":true,"jwt":"` + valid + `",` + in(0) + `}`, Inactive},
		{"jwt_member: top-level exp passed, active false", member, `{"active":false,"jwt":"` + valid + `",` + in(-time.Second) + `}`, Inactive},
		{"jwt_member: top-level exp passed, active missing", member, `{"jwt":"` + valid + `",` + in(-time.Hour) + `}`, Inactive},
		{"jwt_member: top-level exp to come, active true", member, `{"active":true,"jwt":"` + valid + `",` + in(time.Minute) + `}`, Active},
		{"jwt_member: top-level exp a string", member, `{"active":true,"jwt":"` + valid + `","exp":"2000000000"}`, BadGateway},
		{"jwt_member: top-level exp negative", member, `{"active":true,"jwt":"` + valid + `","exp":-1}`, BadGateway},
		{"jwt_member: top-level exp twice", member, `{"active":true,"jwt":"` + valid + `",` + in(time.Minute) + `,` + in(-time.Minute) + `}`, BadGateway},
		{"jwt_member: a bare JWT is still accepted", member, valid, Active},
		{"jwt_member: a bare JWT over max_jwt_size", member, big, BadGateway},
		{"jwt_member: JSON nested past the depth bound", member, `{"active":true,"jwt":"` + valid + `","x":` + testjwt.Nest("[", jsonlimit.MaxDepth) + `}`, BadGateway},
		{"jwt_member: JSON not valid", member, `{"active":true,"jwt":"` + valid + `"`, BadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Classify(tt.c, upstream(200), []byte(tt.body), now)
			if a.Outcome != tt.outcome {
				t.Fatalf("got %v (%s), want %v", a.Outcome, a.Reason, tt.outcome)
			}
			if a.Outcome == Active && a.JWT != strings.TrimSpace(tt.body) && a.JWT != valid {
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
	member := cfg(t, `,"cache_max_ttl":"60s","jwt_member":"jwt"`)
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
		{"negative max-age", def, []string{"max-age=-5"}, noExp, 0},
		{"signed max-age", def, []string{"max-age=+5"}, noExp, 0},
		{"max-age too large to represent", def, []string{"max-age=99999999999999999999"}, noExp, 60 * time.Second},
		{"ignore no-store", ignore, []string{"no-store"}, noExp, 60 * time.Second},
		{"ignore max-age but not exp", ignore, []string{"max-age=0"}, exp(20 * time.Second), 15 * time.Second},
		{"cache off", off, nil, noExp, 0},
		{"jwt_member: the answer's exp minus skew", member, nil, `{"active":true,"jwt":"` + noExp + `","exp":` + itoa(now.Add(20*time.Second).Unix()) + `}`, 15 * time.Second},
		{"jwt_member: the JWT's exp when earlier than the answer's", member, nil, `{"active":true,"jwt":"` + exp(20*time.Second) + `","exp":` + itoa(now.Add(40*time.Second).Unix()) + `}`, 15 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := classify200(tt.c, tt.cacheControl, tt.body, now)
			if a.Outcome != Active || a.CacheTTL != tt.ttl {
				t.Errorf("got %v ttl %v, want ttl %v", a.Outcome, a.CacheTTL, tt.ttl)
			}
		})
	}
}

// classify200 classifies a 200 answer with body and these Cache-Control
// values.
func classify200(c *config.Config, cacheControl []string, body string, now time.Time) Answer {
	headers := upstream(200)
	for _, v := range cacheControl {
		headers = append(headers, [2]string{"Cache-Control", v})
	}
	return Classify(c, headers, []byte(body), now)
}

// TestStaleFor has one row per rule of how long an answer may be served
// stale: the configured bound, narrowed by the identity server's RFC 5861
// stale-if-error and by the JWT's exp (less the skew), never for an answer
// that is not cached.
func TestStaleFor(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	exp := func(d time.Duration) string { return testjwt.Make(`{"exp":` + itoa(now.Add(d).Unix()) + `}`) }
	noExp := testjwt.Make(`{}`)
	stale, ignore, off := cfg(t, `,"cache_max_ttl":"60s","stale_if_error":"2m"`), cfg(t, `,"cache_max_ttl":"60s","stale_if_error":"2m","cache_ignore_cache_control":true`), cfg(t, `,"cache_max_ttl":"60s"`)
	member := cfg(t, `,"cache_max_ttl":"60s","stale_if_error":"2m","jwt_member":"jwt"`)
	tests := []struct {
		name         string
		c            *config.Config
		cacheControl []string
		body         string
		want         time.Duration
	}{
		{"off by default", off, nil, noExp, 0},
		{"the configured bound", stale, nil, noExp, 2 * time.Minute},
		{"the identity server's stale-if-error, narrower", stale, []string{"max-age=30, stale-if-error=40"}, noExp, 40 * time.Second},
		{"the identity server's stale-if-error never widens it", stale, []string{"stale-if-error=3600"}, noExp, 2 * time.Minute},
		{"stale-if-error=0 from the identity server", stale, []string{"max-age=30, stale-if-error=0"}, noExp, 0},
		{"an unparsable stale-if-error counts as 0", stale, []string{"stale-if-error=later"}, noExp, 0},
		{"the smallest of repeated stale-if-error", stale, []string{"stale-if-error=50", "Stale-If-Error=\"20\""}, noExp, 20 * time.Second},
		{"ignored with the identity server's cache directives", ignore, []string{"stale-if-error=5"}, noExp, 2 * time.Minute},
		{"ends before the JWT's exp, less the skew", stale, nil, exp(95 * time.Second), 30 * time.Second},
		{"none when exp ends the cache lifetime", stale, nil, exp(30 * time.Second), 0},
		{"none for an answer that is not cached", stale, []string{"no-store"}, noExp, 0},
		{"jwt_member: the answer's exp bounds it", member, nil, `{"active":true,"jwt":"` + noExp + `","exp":` + itoa(now.Add(95*time.Second).Unix()) + `}`, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := classify200(tt.c, tt.cacheControl, tt.body, now)
			if a.Outcome != Active || a.StaleFor != tt.want {
				t.Errorf("got %v stale for %v, want %v", a.Outcome, a.StaleFor, tt.want)
			}
		})
	}
}

// TestTransient: the failures a stale answer may stand in for are those that
// are not the identity server's verdict.
func TestTransient(t *testing.T) {
	c := cfg(t, "")
	transient := func(s int) bool { return s == 429 || s >= 500 && s <= 599 }
	for s := 100; s <= 599; s++ {
		a := Classify(c, upstream(s), []byte(testjwt.Make(`{}`)), time.Now())
		if want := transient(s) && a.Outcome != Active; a.Transient != want {
			t.Errorf("status %d (%v): transient %v, want %v", s, a.Outcome, a.Transient, want)
		}
	}
	for _, tt := range []struct {
		name    string
		headers [][2]string
		body    string
		want    bool
	}{
		{"no response", nil, "", true},
		{"Envoy's own 503 (connection failure)", [][2]string{{":status", "503"}}, "upstream connect error", true},
		{"200 that is not a JWT", upstream(200), "nonsense", false},
		{"inactive", upstream(200), `{"active":false}`, false},
		{"401: the identity server refuses the client", upstream(401), "", false},
	} {
		if got := Classify(c, tt.headers, []byte(tt.body), time.Now()).Transient; got != tt.want {
			t.Errorf("%s: transient %v, want %v", tt.name, got, tt.want)
		}
	}
}

// keycloak is a JSON introspection answer with the JWT in member "jwt".
func keycloak(active bool, jwt string) string {
	return `{"active":` + strconv.FormatBool(active) + `,"scope":"a b","jwt":"` + jwt + `","exp":2000000000}`
}

// TestDeepNesting: an answer nested far past the bound, where gjson's
// recursion would overflow the wasm stack, is a 502 on every path, whose
// reason names the problem.
func TestDeepNesting(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	jwtMode := cfg(t, `,"max_jwt_size":"1MiB"`)
	rfc9701 := cfg(t, `,"max_jwt_size":"1MiB","response_type":"application/token-introspection+jwt"`)
	member := cfg(t, `,"max_jwt_size":"1MiB","jwt_member":"jwt"`)
	for _, open := range []string{"[", `{"a":`} {
		for _, n := range []int{9000, 10000, 100000} {
			deep := testjwt.Nest(open, n)
			for _, tt := range []struct {
				path string
				c    *config.Config
				body string
			}{
				{"JWT header", jwtMode, testjwt.Parts(`{"alg":"RS256","x":`+deep+`}`, `{}`, "abc")},
				{"JWT payload", jwtMode, testjwt.Make(`{"x":` + deep + `}`)},
				{"JSON body", jwtMode, `{"active":false,"x":` + deep + `}`},
				{"JSON body, unclosed", jwtMode, `{"active":false,"x":` + strings.Repeat(open, n)},
				{"token_introspection", rfc9701, testjwt.Make(`{"token_introspection":{"active":true,"x":` + deep + `}}`)},
				{"JSON body with jwt_member", member, `{"active":true,"jwt":"` + testjwt.Make(`{}`) + `","x":` + deep + `}`},
				{"member JWT header", member, keycloak(true, testjwt.Parts(`{"alg":"RS256","x":`+deep+`}`, `{}`, "abc"))},
				{"member JWT payload", member, keycloak(true, testjwt.Make(`{"x":`+deep+`}`))},
			} {
				a := Classify(tt.c, upstream(200), []byte(tt.body), now)
				if a.Outcome != BadGateway || !strings.Contains(a.Reason, "nested deeper than 64 levels") {
					t.Errorf("%s, %d × %s: got %v (%s)", tt.path, n, open, a.Outcome, a.Reason)
				}
			}
		}
	}
}

func TestBodyLimit(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	tests := []struct {
		name  string
		extra string
		limit int
	}{
		{"a bare JWT: one byte past max_jwt_size", ``, 16384 + 1},
		{"a smaller max_jwt_size", `,"max_jwt_size":1000`, 1000 + 1},
		{"jwt_member: 4 × max_jwt_size + 4096, and one byte", `,"jwt_member":"jwt"`, 4*16384 + 4096 + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg(t, tt.extra)
			if got := BodyLimit(c); got != tt.limit {
				t.Fatalf("BodyLimit = %d, want %d", got, tt.limit)
			}
			// A body of BodyLimit bytes, as the filter reads it from a larger
			// answer, is refused; one byte less is judged on its content.
			jwt := testjwt.Make(`{}`)
			pad := func(n int) []byte { return []byte(jwt + strings.Repeat(" ", n-len(jwt))) }
			if a := Classify(c, upstream(200), pad(tt.limit), now); a.Outcome != BadGateway {
				t.Errorf("%d bytes: got %v", tt.limit, a.Outcome)
			}
			if a := Classify(c, upstream(200), pad(tt.limit-1), now); a.Outcome != Active {
				t.Errorf("%d bytes: got %v (%s)", tt.limit-1, a.Outcome, a.Reason)
			}
		})
	}
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{Active: "Active", Inactive: "Inactive", BadGateway: "BadGateway",
		Unavailable: "Unavailable", ServerError: "ServerError", 7: "Outcome(7)"} {
		if o.String() != want {
			t.Errorf("%d prints %q, want %q", int(o), o.String(), want)
		}
	}
}

// upstream is the header list of an answer that came from the identity server
// through Envoy's router.
func upstream(status int) [][2]string {
	return [][2]string{{":status", strconv.Itoa(status)}, {"x-envoy-upstream-service-time", "3"}}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// FuzzCacheControl: no-store or no-cache anywhere forbids caching; a
// cacheable answer gets a positive TTL no longer than the limit.
func FuzzCacheControl(f *testing.F) {
	for _, v := range []string{"max-age=30", "public, max-age=600", "max-age=50, s-maxage=20", `max-age="10"`,
		"no-store", "private\nNo-Cache", "max-age=0", "max-age=soon", "no-cache=\"set-cookie\", max-age=5",
		"max-age=99999999999999999999", " , ,max-age=1,", "s-maxage=0, max-age=9"} {
		f.Add(v)
	}
	const limit = time.Hour
	f.Fuzz(func(t *testing.T, header string) {
		values := strings.Split(header, "\n") // one value per header line
		ttl, cacheable := parseCacheControl(values, limit)
		forbidden := false
		for _, v := range values {
			for _, d := range strings.Split(v, ",") {
				name, _, _ := strings.Cut(d, "=")
				switch strings.ToLower(strings.TrimSpace(name)) {
				case "no-store", "no-cache":
					forbidden = true
				}
			}
		}
		switch {
		case forbidden && cacheable:
			t.Fatalf("%q: cacheable despite no-store/no-cache", values)
		case cacheable && (ttl <= 0 || ttl > limit):
			t.Fatalf("%q: ttl %v", values, ttl)
		case !cacheable && ttl != 0:
			t.Fatalf("%q: not cacheable, ttl %v", values, ttl)
		}
	})
}

// FuzzClassify: whatever a 200 carries, an Active answer holds a JWT within
// max_jwt_size that parses, JSON nested past the bound is never Active, and a
// refused answer carries no JWT.
func FuzzClassify(f *testing.F) {
	valid := testjwt.Make(`{"sub":"a","scope":"a b"}`)
	for _, body := range []string{valid, keycloak(true, valid), keycloak(false, valid), `{"active":false}`,
		`{"active":true,"jwt":"` + valid + `","jwt":"x"}`, `{"active":true,"jwt":` + testjwt.Nest("[", 100) + `}`,
		testjwt.Make(`{"x":` + testjwt.Nest(`{"a":`, 100) + `}`), "", "a.b.c"} {
		f.Add([]byte(body), false)
		f.Add([]byte(body), true)
	}
	f.Add([]byte(`{"active":false,"x":`+testjwt.Nest("[", 10000)+`}`), false)
	f.Add([]byte(keycloak(true, testjwt.Make(`{"x":`+testjwt.Nest(`{"a":`, 10000)+`}`))), true)
	plain, err := config.Parse([]byte(`{"introspection_url":"http://i/","cluster":"c","client_id":"i","client_secret":"s","max_jwt_size":"256KiB"}`), nil)
	if err != nil {
		f.Fatal(err)
	}
	member, err := config.Parse([]byte(`{"introspection_url":"http://i/","cluster":"c","client_id":"i","client_secret":"s","max_jwt_size":"256KiB","jwt_member":"jwt"}`), nil)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1_000_000, 0)
	f.Fuzz(func(t *testing.T, body []byte, withMember bool) {
		c := plain
		if withMember {
			c = member
		}
		a := Classify(c, upstream(200), body, now)
		if a.Outcome != Active {
			if a.JWT != "" || a.CacheTTL != 0 {
				t.Fatalf("%v answer carries %q, ttl %v", a.Outcome, a.JWT, a.CacheTTL)
			}
			return
		}
		if len(body) >= BodyLimit(c) || len(a.JWT) > c.MaxJWTSize {
			t.Fatalf("accepted a body of %d bytes, a JWT of %d", len(body), len(a.JWT))
		}
		if _, err := jwt.Parse(a.JWT); err != nil {
			t.Fatalf("accepted JWT %q: %v", a.JWT, err)
		}
		if text := strings.TrimSpace(string(body)); text[0] == '{' && !jsonlimit.Within(text, jsonlimit.MaxDepth) {
			t.Fatalf("accepted JSON deeper than the bound")
		}
	})
}

// A binding beside the JWT of a JSON answer binds the token, and the answer
// is never stored: the JWT alone would lose it.
func TestBindingBesideTheJWT(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	member := cfg(t, `,"jwt_member":"jwt"`)
	x5t, other := "BimEMugGayniIjvMI6qVBLVq5Qj6vzQ1UIhpucMZDiI", "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	unbound := testjwt.Make(`{"sub":"a","exp":` + itoa(now.Add(time.Hour).Unix()) + `}`)
	bound := testjwt.Make(`{"sub":"a","exp":` + itoa(now.Add(time.Hour).Unix()) + `,"cnf":{"x5t#S256":"` + x5t + `"}}`)
	ok := [][2]string{{":status", "200"}, {"x-envoy-upstream-service-time", "1"}}
	tests := []struct {
		name    string
		body    string
		outcome Outcome
		beside  bool
	}{
		{"beside, JWT unbound", `{"active":true,"jwt":"` + unbound + `","cnf":{"x5t#S256":"` + x5t + `"}}`, Active, true},
		{"beside and in the JWT, agreeing", `{"active":true,"jwt":"` + bound + `","cnf":{"x5t#S256":"` + x5t + `"}}`, Active, false},
		{"in the JWT only", `{"active":true,"jwt":"` + bound + `"}`, Active, false},
		{"beside and in the JWT, disagreeing", `{"active":true,"jwt":"` + bound + `","cnf":{"x5t#S256":"` + other + `"}}`, BadGateway, false},
		{"an unreadable cnf beside", `{"active":true,"jwt":"` + unbound + `","cnf":{"x5t#S256":"x"}}`, BadGateway, false},
		{"cnf twice beside", `{"active":true,"jwt":"` + unbound + `","cnf":{},"cnf":{"jkt":"` + x5t + `"}}`, BadGateway, false},
	}
	for _, tt := range tests {
		a := Classify(member, ok, []byte(tt.body), now)
		if a.Outcome != tt.outcome || a.BindingBeside != tt.beside {
			t.Errorf("%s: %v beside %v (%s)", tt.name, a.Outcome, a.BindingBeside, a.Reason)
			continue
		}
		if a.Outcome == Active && !a.Claims.Binding.CertBound {
			t.Errorf("%s: unbound", tt.name)
		}
		if tt.beside && a.CacheTTL != 0 {
			t.Errorf("%s: cached for %v", tt.name, a.CacheTTL)
		}
	}
}
