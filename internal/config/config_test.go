package config

import (
	"encoding/json"
	"errors"
	"github.com/tidwall/gjson"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/internal/jsonlimit"
)

const minimal = `"introspection_url":"https://login.example.com:8443/oauth/v2/introspect","cluster":"idsvr","client_id":"gateway","client_secret":"s3cret"`

func env(name string) string {
	switch name {
	case "PHANTOM_SECRET":
		return "from-env"
	case "DPOP_SECRET":
		return dpopSecret
	}
	return ""
}

const dpopSecret = "a nonce key of at least 32 bytes, for the tests"

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte(`{`+minimal+`}`), env)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		IntrospectionURL: "https://login.example.com:8443/oauth/v2/introspect",
		Cluster:          "idsvr", Authority: "login.example.com:8443", Path: "/oauth/v2/introspect",
		ClientID: "gateway", ClientSecret: "s3cret", ClientAuth: ClientSecretBasic, Realm: "api", ResponseType: ResponseTypeJWT,
		Timeout: 5 * time.Second, MaxJWTSize: 16384, MaxTokenLength: 4096, UpstreamHeader: "authorization", ToAuthorization: true, PlainHits: true,
		CacheEnabled: true, CacheMaxTTL: 300 * time.Second, CacheMaxEntries: 10000, MaxInFlight: 100,
		ForwardCORSPreflight: true, Enabled: true, CacheNamespace: c.CacheNamespace,
		ClientCertificateSource: CertificateFromConnection,
		DPoP:                    DPoPOff, DPoPAlgs: DefaultDPoPAlgs, DPoPIATWindow: DefaultDPoPIATWindow, DPoPReplayMaxEntries: DefaultDPoPReplayMaxEntries,
		TraceHeaders: []string{"traceparent", "tracestate", "x-request-id"},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
	if len(c.CacheNamespace) != 16 {
		t.Errorf("namespace %q", c.CacheNamespace)
	}
}

func TestValidValues(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		check func(*Config) bool
	}{
		{"secret from the VM environment", `,"client_secret_env":"PHANTOM_SECRET"`, nil},
		{"realm", `,"realm":"orders"`, func(c *Config) bool { return c.Realm == "orders" }},
		{"scopes as a string", `,"scopes":"read write"`, func(c *Config) bool { return reflect.DeepEqual(c.Scopes, []string{"read", "write"}) }},
		{"required scopes as a string", `,"required_scopes":"a b"`, func(c *Config) bool { return reflect.DeepEqual(c.RequiredScopes, []string{"a", "b"}) }},
		{"JWT member (Keycloak)", `,"jwt_member":"jwt"`, func(c *Config) bool { return c.JWTMember == "jwt" }},
		{"JWT member (Curity JSON mode)", `,"jwt_member":"phantom_token"`, func(c *Config) bool { return c.JWTMember == "phantom_token" }},
		{"scopes as an array (repeatable directive)", `,"scopes":["read","write"]`, func(c *Config) bool { return reflect.DeepEqual(c.Scopes, []string{"read", "write"}) }},
		{"required scopes", `,"required_scopes":["orders:read"]`, func(c *Config) bool { return reflect.DeepEqual(c.RequiredScopes, []string{"orders:read"}) }},
		{"RFC 9701 response type", `,"response_type":"application/token-introspection+jwt"`, func(c *Config) bool { return c.ResponseType == ResponseTypeIntrospectionJWT }},
		{"timeout as a duration string", `,"timeout":"250ms"`, func(c *Config) bool { return c.Timeout == 250*time.Millisecond }},
		{"timeout as seconds (Istio float)", `,"timeout":2.5`, func(c *Config) bool { return c.Timeout == 2500*time.Millisecond }},
		{"size as a float", `,"max_jwt_size":8192.0`, func(c *Config) bool { return c.MaxJWTSize == 8192 }},
		{"size with a suffix", `,"max_jwt_size":"32KiB"`, func(c *Config) bool { return c.MaxJWTSize == 32768 }},
		{"size as a digit string", `,"max_token_length":"100"`, func(c *Config) bool { return c.MaxTokenLength == 100 }},
		{"upstream header lower-cased", `,"upstream_header":"X-JWT"`, func(c *Config) bool { return c.UpstreamHeader == "x-jwt" && !c.ToAuthorization }},
		{"upstream header Authorization in any case", `,"upstream_header":"AuthoriZation"`, func(c *Config) bool { return c.ToAuthorization }},
		{"cache off", `,"cache":false`, func(c *Config) bool { return !c.CacheEnabled }},
		{"cache bounds", `,"cache_max_ttl":"30s","cache_max_entries":100`, func(c *Config) bool { return c.CacheMaxTTL == 30*time.Second && c.CacheMaxEntries == 100 }},
		{"cache max TTL of 24h", `,"cache_max_ttl":"24h"`, func(c *Config) bool { return c.CacheMaxTTL == 24*time.Hour }},
		{"cache max TTL of 86400 seconds (Istio float)", `,"cache_max_ttl":86400.0`, func(c *Config) bool { return c.CacheMaxTTL == 24*time.Hour }},
		{"counts as floats (Istio)", `,"max_in_flight":4.0,"cache_max_entries":1000.0,"max_token_length":200.0`, func(c *Config) bool {
			return c.MaxInFlight == 4 && c.CacheMaxEntries == 1000 && c.MaxTokenLength == 200
		}},
		{"counts as digit strings", `,"max_in_flight":"4","cache_max_entries":"1000"`, func(c *Config) bool { return c.MaxInFlight == 4 && c.CacheMaxEntries == 1000 }},
		{"size with a short suffix", `,"max_jwt_size":"16k"`, func(c *Config) bool { return c.MaxJWTSize == 16384 }},
		{"size in MiB", `,"max_jwt_size":"1MiB"`, func(c *Config) bool { return c.MaxJWTSize == 1<<20 }},
		{"upstream header with a proxy-like name that is not proxy-*", `,"upstream_header":"x-proxy-jwt"`, func(c *Config) bool { return c.UpstreamHeader == "x-proxy-jwt" }},
		{"ignore cache control", `,"cache_ignore_cache_control":true`, func(c *Config) bool { return c.CacheIgnoreCacheControl }},
		{"preflight authenticated", `,"forward_cors_preflight":false`, func(c *Config) bool { return !c.ForwardCORSPreflight }},
		{"disabled", `,"enabled":false`, func(c *Config) bool { return !c.Enabled }},
		{"certificate-bound tokens required", `,"require_certificate_bound":true`, func(c *Config) bool { return c.RequireCertificateBound }},
		{"DPoP allowed", `,"dpop":"allowed"`, func(c *Config) bool { return c.DPoP == DPoPAllowed && reflect.DeepEqual(c.DPoPAlgs, DefaultDPoPAlgs) }},
		{"DPoP required with its settings", `,"dpop":"required","dpop_algs":"ES256 RS384 PS512 EdDSA","dpop_iat_window":"30s","dpop_nonce":true,"dpop_keep_header":true`, func(c *Config) bool {
			return c.DPoP == DPoPRequired && reflect.DeepEqual(c.DPoPAlgs, []string{"ES256", "RS384", "PS512", "EdDSA"}) && c.DPoPIATWindow == 30*time.Second && c.DPoPNonce && c.DPoPKeepHeader
		}},
		{"DPoP nonce key and replay bound", `,"dpop_nonce_secret_env":"DPOP_SECRET","dpop_replay_max_entries":1000`, func(c *Config) bool {
			return string(c.DPoPNonceSecret) == dpopSecret && c.DPoPReplayMaxEntries == 1000
		}},
		{"tls_client_auth: no secret", `,"client_auth":"tls_client_auth"`, func(c *Config) bool { return c.ClientAuth == ClientTLS && c.ClientSecret == "" }},
		{"tls_client_auth in a rule drops the top-level secret", `,"routes":[{"route":"r","client_auth":"tls_client_auth"}]`, func(c *Config) bool {
			return c.ClientAuth == ClientSecretBasic && c.Routes[0].Config.ClientAuth == ClientTLS && c.Routes[0].Config.ClientSecret == ""
		}},
		{"certificate from XFCC", `,"client_certificate_source":"x-forwarded-client-cert"`, func(c *Config) bool { return c.ClientCertificateSource == CertificateFromXFCC }},
		{"stale-if-error with its header, stripped from every request", `,"stale_if_error":"45s","stale_header":"X-Stale"`, func(c *Config) bool {
			return c.StaleIfError == 45*time.Second && c.StaleHeader == "x-stale" && reflect.DeepEqual(c.StripHeaders, []string{"x-stale"})
		}},
		{"stale-if-error at its bound, in seconds", `,"stale_if_error":600`, func(c *Config) bool { return c.StaleIfError == MaxStaleIfError && c.StaleHeader == "" }},
		{"refresh ahead", `,"refresh_ahead":0.25`, func(c *Config) bool { return c.RefreshAhead == 0.25 }},
		{"refresh ahead at its bound", `,"refresh_ahead":0.5`, func(c *Config) bool { return c.RefreshAhead == 0.5 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js := `{` + minimal + tt.extra + `}`
			if strings.Contains(tt.extra, "client_secret_env") || strings.HasPrefix(tt.extra, `,"client_auth":"tls_client_auth"`) {
				js = strings.Replace(js, `,"client_secret":"s3cret"`, "", 1)
			}
			c, err := Parse([]byte(js), env)
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil && !tt.check(c) {
				t.Errorf("unexpected config %+v", c)
			}
		})
	}
}

func TestURL(t *testing.T) {
	tests := []struct{ url, authority, path string }{
		{"http://idsvr", "idsvr", "/"},
		{"http://idsvr:8443/introspect?x=1", "idsvr:8443", "/introspect?x=1"},
		{"https://[::1]:8443/i", "[::1]:8443", "/i"},
	}
	for _, tt := range tests {
		c, err := Parse([]byte(`{"introspection_url":"`+tt.url+`","cluster":"c","client_id":"i","client_secret":"s"}`), env)
		if err != nil {
			t.Fatalf("%s: %v", tt.url, err)
		}
		if c.Authority != tt.authority || c.Path != tt.path {
			t.Errorf("%s: got %q %q", tt.url, c.Authority, c.Path)
		}
	}
}

// The query of introspection_url reaches the identity server exactly as
// configured: every RFC 3986 query character, escapes untouched.
func TestURLQueryKeptAsGiven(t *testing.T) {
	for _, query := range []string{
		"x=1",
		"a=%20b&c=d:e@f/g?h",
		"realm=%C3%A9t%C3%A9&flag",
		"s=!$&'()*+,;=-._~",
		"=",
	} {
		c, err := Parse([]byte(`{"introspection_url":"https://idsvr/introspect?`+query+`","cluster":"c","client_id":"i","client_secret":"s"}`), env)
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		if want := "/introspect?" + query; c.Path != want {
			t.Errorf("path %q, want %q", c.Path, want)
		}
	}
}

// Each rule added by the second review refuses with one error that names
// the key and the problem.
func TestRefusedWithTheProblem(t *testing.T) {
	url := func(u string) string {
		return `{"introspection_url":"` + u + `","cluster":"c","client_id":"i","client_secret":"s"}`
	}
	const badQuery = `invalid plugin configuration: "introspection_url" has an invalid query: only RFC 3986 query characters and %XX escapes may appear`
	const count = ` must be a whole number between 1 and 16777216, without a unit`
	tests := []struct{ name, json, want string }{
		{"cache max TTL over 24h", `{` + minimal + `,"cache_max_ttl":"24h0m1s"}`, `invalid plugin configuration: "cache_max_ttl" must be at most 24h0m0s`},
		{"cache max TTL of 25 hours in seconds", `{` + minimal + `,"cache_max_ttl":90000}`, `invalid plugin configuration: "cache_max_ttl" must be at most 24h0m0s`},

		{"query with an invalid escape", url("http://a/i?x=%zz"), badQuery},
		{"query with a cut escape", url("http://a/i?x=%2"), badQuery},
		{"query with a non-ASCII character", url("http://a/i?x=é"), badQuery},
		{"query with a double quote", url(`http://a/i?x=\"`), badQuery},
		{"query with <", url("http://a/i?x=<"), badQuery},
		{"query with >", url("http://a/i?x=>"), badQuery},
		{"query with a backslash", url(`http://a/i?x=\\`), badQuery},
		{"query with ^", url("http://a/i?x=^"), badQuery},
		{"query with a backtick", url("http://a/i?x=`"), badQuery},
		{"query with {", url("http://a/i?x={"), badQuery},
		{"query with |", url("http://a/i?x=|"), badQuery},
		{"query with }", url("http://a/i?x=}"), badQuery},
		{"query with [", url("http://a/i?x=["), badQuery},
		{"query with a space", url("http://a/i?x=a b"), `invalid plugin configuration: "introspection_url" is not a valid URL`},
		{"query with a tab", url(`http://a/i?x=a\tb`), `invalid plugin configuration: "introspection_url" is not a valid URL`},
		{"query with DEL", url(`http://a/i?x=\u007f`), `invalid plugin configuration: "introspection_url" is not a valid URL`},

		{"upstream header :authority", `{` + minimal + `,"upstream_header":":authority"}`, `invalid plugin configuration: "upstream_header" must not be a pseudo-header`},
		{"upstream header connection", `{` + minimal + `,"upstream_header":"Connection"}`, `invalid plugin configuration: "upstream_header" must not be "connection", a hop-by-hop header`},
		{"upstream header te", `{` + minimal + `,"upstream_header":"te"}`, `invalid plugin configuration: "upstream_header" must not be "te", a hop-by-hop header`},
		{"upstream header transfer-encoding", `{` + minimal + `,"upstream_header":"transfer-encoding"}`, `invalid plugin configuration: "upstream_header" must not be "transfer-encoding", a hop-by-hop header`},
		{"upstream header upgrade", `{` + minimal + `,"upstream_header":"upgrade"}`, `invalid plugin configuration: "upstream_header" must not be "upgrade", a hop-by-hop header`},
		{"upstream header keep-alive", `{` + minimal + `,"upstream_header":"keep-alive"}`, `invalid plugin configuration: "upstream_header" must not be "keep-alive", a hop-by-hop header`},
		{"upstream header trailer", `{` + minimal + `,"upstream_header":"trailer"}`, `invalid plugin configuration: "upstream_header" must not be "trailer", a hop-by-hop header`},
		{"upstream header proxy-authorization", `{` + minimal + `,"upstream_header":"Proxy-Authorization"}`, `invalid plugin configuration: "upstream_header" must not be "proxy-authorization", a hop-by-hop header`},
		{"upstream header proxy-connection", `{` + minimal + `,"upstream_header":"proxy-connection"}`, `invalid plugin configuration: "upstream_header" must not be "proxy-connection", a hop-by-hop header`},
		{"upstream header host", `{` + minimal + `,"upstream_header":"Host"}`, `invalid plugin configuration: "upstream_header" must not be "host", which frames or routes the request`},
		{"upstream header content-length", `{` + minimal + `,"upstream_header":"content-length"}`, `invalid plugin configuration: "upstream_header" must not be "content-length", which frames or routes the request`},
		{"upstream header with a space", `{` + minimal + `,"upstream_header":"x jwt"}`, `invalid plugin configuration: "upstream_header" must be an HTTP header name`},

		{"max_in_flight with a k suffix", `{` + minimal + `,"max_in_flight":"1k"}`, `invalid plugin configuration: "max_in_flight"` + count},
		{"cache_max_entries with a k suffix", `{` + minimal + `,"cache_max_entries":"10k"}`, `invalid plugin configuration: "cache_max_entries"` + count},
		{"cache_max_entries with a KiB suffix", `{` + minimal + `,"cache_max_entries":"1KiB"}`, `invalid plugin configuration: "cache_max_entries"` + count},
		{"max_token_length with an M suffix", `{` + minimal + `,"max_token_length":"1M"}`, `invalid plugin configuration: "max_token_length"` + count},
		{"count with spaces", `{` + minimal + `,"max_in_flight":" 4"}`, `invalid plugin configuration: "max_in_flight"` + count},
		{"count with a sign", `{` + minimal + `,"max_in_flight":"+4"}`, `invalid plugin configuration: "max_in_flight"` + count},
		{"count as an empty string", `{` + minimal + `,"max_in_flight":""}`, `invalid plugin configuration: "max_in_flight"` + count},
		{"count fractional", `{` + minimal + `,"max_in_flight":1.5}`, `invalid plugin configuration: "max_in_flight"` + count},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.json), env)
			if err == nil || err.Error() != tt.want {
				t.Errorf("got  %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestNamespaceSeparatesConfigurations(t *testing.T) {
	base, _ := Parse([]byte(`{`+minimal+`}`), env)
	for _, extra := range []string{
		`,"response_type":"application/token-introspection+jwt"`,
		`,"jwt_member":"jwt"`,
	} {
		other, err := Parse([]byte(`{`+minimal+extra+`}`), env)
		if err != nil || other.CacheNamespace == base.CacheNamespace {
			t.Errorf("%s: same namespace (%v)", extra, err)
		}
	}
	other, _ := Parse([]byte(`{`+strings.Replace(minimal, "gateway", "other", 1)+`}`), env)
	if other.CacheNamespace == base.CacheNamespace {
		t.Error("another client shares the namespace")
	}
	other, _ = Parse([]byte(`{`+strings.Replace(minimal, "idsvr", "idsvr2", 1)+`}`), env)
	if other.CacheNamespace == base.CacheNamespace {
		t.Error("another cluster shares the namespace")
	}
	other, _ = Parse([]byte(`{`+strings.Replace(minimal, "/oauth/v2/introspect", "/other", 1)+`}`), env)
	if other.CacheNamespace == base.CacheNamespace {
		t.Error("another endpoint shares the namespace")
	}
}

func TestInvalid(t *testing.T) {
	tests := []struct {
		name, json, key string
	}{
		{"empty", ``, ""},
		{"not JSON", `{`, ""},
		{"not an object", `[1]`, ""},
		{"unknown key", `{` + minimal + `,"introspection_endpoint":"x"}`, "introspection_endpoint"},
		{"duplicate key", `{` + minimal + `,"realm":"a","realm":"b"}`, "realm"},
		{"missing URL", `{"cluster":"c","client_id":"i","client_secret":"s"}`, "introspection_url"},
		{"missing cluster", `{"introspection_url":"http://a/b","client_id":"i","client_secret":"s"}`, "cluster"},
		{"missing client id", `{"introspection_url":"http://a/b","cluster":"c","client_secret":"s"}`, "client_id"},
		{"missing secret", `{"introspection_url":"http://a/b","cluster":"c","client_id":"i"}`, "client_secret"},
		{"unknown client_auth", `{` + minimal + `,"client_auth":"private_key_jwt"}`, "client_auth"},
		{"a secret with tls_client_auth", `{` + minimal + `,"client_auth":"tls_client_auth"}`, "client_secret"},
		{"a secret from the VM with tls_client_auth", `{"introspection_url":"http://a/b","cluster":"c","client_id":"i","client_auth":"tls_client_auth","client_secret_env":"PHANTOM_SECRET"}`, "client_secret_env"},
		{"a rule back to Basic without a secret", `{"introspection_url":"http://a/b","cluster":"c","client_id":"i","client_auth":"tls_client_auth","routes":[{"route":"r","client_auth":"client_secret_basic"}]}`, "routes[0].client_secret"},
		{"secret env not set", `{"introspection_url":"http://a/b","cluster":"c","client_id":"i","client_secret_env":"NOPE"}`, "client_secret_env"},
		{"secret twice", `{` + minimal + `,"client_secret_env":"PHANTOM_SECRET"}`, "client_secret_env"},
		{"URL wrong type", `{"introspection_url":42,"cluster":"c","client_id":"i","client_secret":"s"}`, "introspection_url"},
		{"URL relative", `{"introspection_url":"/introspect","cluster":"c","client_id":"i","client_secret":"s"}`, "introspection_url"},
		{"URL unparsable", `{"introspection_url":"http://a b/%zz","cluster":"c","client_id":"i","client_secret":"s"}`, "introspection_url"},
		{"URL other scheme", `{"introspection_url":"ftp://a/b","cluster":"c","client_id":"i","client_secret":"s"}`, "introspection_url"},
		{"URL with user info", `{"introspection_url":"http://u:p@a/b","cluster":"c","client_id":"i","client_secret":"s"}`, "introspection_url"},
		{"URL with bad port", `{"introspection_url":"http://a:99999/b","cluster":"c","client_id":"i","client_secret":"s"}`, "introspection_url"},
		{"empty cluster", `{"introspection_url":"http://a/b","cluster":"","client_id":"i","client_secret":"s"}`, "cluster"},
		{"realm with quote", `{` + minimal + `,"realm":"a\"b"}`, "realm"},
		{"stale-if-error past its bound", `{` + minimal + `,"stale_if_error":"11m"}`, "stale_if_error"},
		{"stale-if-error of zero", `{` + minimal + `,"stale_if_error":0}`, "stale_if_error"},
		{"stale-if-error without the cache", `{` + minimal + `,"stale_if_error":"30s","cache":false}`, "stale_if_error"},
		{"stale-if-error in a rule", `{` + minimal + `,"routes":[{"route":"r","stale_if_error":"30s"}]}`, "routes[0].stale_if_error"},
		{"stale header without stale-if-error", `{` + minimal + `,"stale_header":"x-stale"}`, "stale_header"},
		{"stale header that is not a header name", `{` + minimal + `,"stale_if_error":"30s","stale_header":"x stale"}`, "stale_header"},
		{"stale header Authorization", `{` + minimal + `,"stale_if_error":"30s","stale_header":"authorization","upstream_header":"x-jwt"}`, "stale_header"},
		{"stale header the upstream header", `{` + minimal + `,"stale_if_error":"30s","stale_header":"x-jwt","upstream_header":"x-jwt"}`, "stale_header"},
		{"stale header a rule's upstream header", `{` + minimal + `,"stale_if_error":"30s","stale_header":"x-jwt","routes":[{"route":"r","upstream_header":"x-jwt"}]}`, "routes[0].stale_header"},
		{"stale header a claim header", `{` + minimal + `,"stale_if_error":"30s","stale_header":"x-sub","claim_headers":[{"claim":"sub","header":"x-sub"}]}`, "stale_header"},
		{"refresh ahead of zero", `{` + minimal + `,"refresh_ahead":0}`, "refresh_ahead"},
		{"refresh ahead past its bound", `{` + minimal + `,"refresh_ahead":0.6}`, "refresh_ahead"},
		{"refresh ahead as a string", `{` + minimal + `,"refresh_ahead":"25%"}`, "refresh_ahead"},
		{"refresh ahead without the cache", `{` + minimal + `,"refresh_ahead":0.2,"cache":false}`, "refresh_ahead"},
		{"scopes wrong type", `{` + minimal + `,"scopes":42}`, "scopes"},
		{"scope with quote", `{` + minimal + `,"scopes":"a\"b"}`, "scopes"},
		{"required scopes array of numbers", `{` + minimal + `,"required_scopes":[1]}`, "required_scopes"},
		{"required scopes empty string", `{` + minimal + `,"required_scopes":""}`, "required_scopes"},
		{"required scopes empty array", `{` + minimal + `,"required_scopes":[]}`, "required_scopes"},
		{"required scopes array with an empty string", `{` + minimal + `,"required_scopes":[""]}`, "required_scopes"},
		{"required scopes double space", `{` + minimal + `,"required_scopes":"a  b"}`, "required_scopes"},
		{"required scopes leading space", `{` + minimal + `,"required_scopes":" a"}`, "required_scopes"},
		{"required scopes trailing space", `{` + minimal + `,"required_scopes":"a "}`, "required_scopes"},
		{"required scopes separated by a tab", `{` + minimal + `,"required_scopes":"a\tb"}`, "required_scopes"},
		{"required scopes separated by a no-break space", `{` + minimal + `,"required_scopes":"a\u00a0b"}`, "required_scopes"},
		{"required scopes array entry with a space", `{` + minimal + `,"required_scopes":["a b"]}`, "required_scopes"},
		{"scopes empty string", `{` + minimal + `,"scopes":""}`, "scopes"},
		{"scopes empty array", `{` + minimal + `,"scopes":[]}`, "scopes"},
		{"scopes array with an empty string", `{` + minimal + `,"scopes":["a",""]}`, "scopes"},
		{"scopes double space", `{` + minimal + `,"scopes":"a  b"}`, "scopes"},
		{"JWT member empty", `{` + minimal + `,"jwt_member":""}`, "jwt_member"},
		{"JWT member not a string", `{` + minimal + `,"jwt_member":true}`, "jwt_member"},
		{"JWT member a claim of its own", `{` + minimal + `,"jwt_member":"active"}`, "jwt_member"},
		{"JWT member with RFC 9701", `{` + minimal + `,"jwt_member":"jwt","response_type":"application/token-introspection+jwt"}`, "jwt_member"},
		{"not UTF-8", "{" + minimal + `,"realm":"\xff"}`, ""},
		{"nested at the bound is only an unknown key", `{` + minimal + `,"x":` + nest(jsonlimit.MaxDepth-1) + `}`, "x"},
		{"nested past the bound", `{` + minimal + `,"x":` + nest(jsonlimit.MaxDepth) + `}`, ""},
		{"unknown response type", `{` + minimal + `,"response_type":"application/json"}`, "response_type"},
		{"timeout zero", `{` + minimal + `,"timeout":0}`, "timeout"},
		{"timeout negative", `{` + minimal + `,"timeout":"-1s"}`, "timeout"},
		{"timeout garbage", `{` + minimal + `,"timeout":"soon"}`, "timeout"},
		{"timeout too long", `{` + minimal + `,"timeout":"1h"}`, "timeout"},
		{"size fractional", `{` + minimal + `,"max_jwt_size":1.5}`, "max_jwt_size"},
		{"size zero", `{` + minimal + `,"max_jwt_size":0}`, "max_jwt_size"},
		{"size garbage", `{` + minimal + `,"max_jwt_size":"big"}`, "max_jwt_size"},
		{"size bool", `{` + minimal + `,"max_token_length":true}`, "max_token_length"},
		{"cache as a string", `{` + minimal + `,"cache":"yes"}`, "cache"},
		{"cache ttl too short", `{` + minimal + `,"cache_max_ttl":"10ms"}`, "cache_max_ttl"},
		{"cache entries over the maximum", `{` + minimal + `,"cache_max_entries":1000001}`, "cache_max_entries"},
		{"cache entries zero", `{` + minimal + `,"cache_max_entries":0}`, "cache_max_entries"},
		{"upstream header pseudo", `{` + minimal + `,"upstream_header":":path"}`, "upstream_header"},
		{"enabled as a number", `{` + minimal + `,"enabled":1}`, "enabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.json), env)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a config error", err)
			}
			if ce.Key != tt.key {
				t.Errorf("error %q names key %q, want %q", err, ce.Key, tt.key)
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "from-env") {
				t.Errorf("error reveals the secret: %v", err)
			}
		})
	}
}

// TestDeepConfiguration: the operator's JSON is bounded too, so that gjson's
// recursion never traps the VM: far too deep is a configuration error.
func TestDeepConfiguration(t *testing.T) {
	for _, open := range []string{"[", `{"a":`} {
		for _, n := range []int{9000, 10000, 100000} {
			_, err := Parse([]byte(`{`+minimal+`,"scopes":`+strings.Repeat(open, n)+`}`), env)
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != "" || !strings.Contains(err.Error(), "deeper than 64") {
				t.Errorf("%d × %s: %v", n, open, err)
			}
		}
	}
}

func nest(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

// document is a configuration as JSON, written back from a Config.
func document(c *Config) []byte {
	m := policyDocument(c)
	for k, v := range map[string]any{
		"max_jwt_size": c.MaxJWTSize, "max_token_length": c.MaxTokenLength,
		"cache": c.CacheEnabled, "cache_max_ttl": c.CacheMaxTTL.String(),
		"cache_max_entries": c.CacheMaxEntries, "cache_ignore_cache_control": c.CacheIgnoreCacheControl,
		"forward_cors_preflight": c.ForwardCORSPreflight, "max_in_flight": c.MaxInFlight,
		"route_metadata": c.RouteMetadata, "reject_claim_headers": c.RejectClaimHeaders,
		"dpop_replay_max_entries": c.DPoPReplayMaxEntries,
		"trace_headers":           append([]string{}, c.TraceHeaders...), // [] for none
	} {
		m[k] = v
	}
	if c.CacheNegativeTTL != 0 {
		m["cache_negative_ttl"] = c.CacheNegativeTTL.String()
	}
	if c.StaleIfError != 0 {
		m["stale_if_error"] = c.StaleIfError.String()
	}
	if c.StaleHeader != "" {
		m["stale_header"] = c.StaleHeader
	}
	if c.RefreshAhead != 0 {
		m["refresh_ahead"] = c.RefreshAhead
	}
	if c.DPoPNonceSecret != nil {
		m["dpop_nonce_secret_env"] = "DPOP_SECRET"
	}
	if c.Routes != nil {
		var rules []any
		for _, r := range c.Routes {
			rule := policyDocument(r.Config)
			if r.Prefix {
				rule["route_prefix"] = r.Route
			} else {
				rule["route"] = r.Route
			}
			rules = append(rules, rule)
		}
		m["routes"] = rules
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// policyDocument writes back the keys a rule may set: a whole identity
// server and the request policy.
func policyDocument(c *Config) map[string]any {
	m := map[string]any{
		"introspection_url": c.IntrospectionURL, "cluster": c.Cluster,
		"client_id": c.ClientID, "client_auth": c.ClientAuth,
		"realm": c.Realm, "response_type": c.ResponseType,
		"timeout": c.Timeout.String(), "upstream_header": c.UpstreamHeader, "enabled": c.Enabled,
		"require_certificate_bound": c.RequireCertificateBound, "client_certificate_source": c.ClientCertificateSource,
		"dpop": c.DPoP, "dpop_algs": c.DPoPAlgs, "dpop_iat_window": c.DPoPIATWindow.String(), "dpop_nonce": c.DPoPNonce,
		"dpop_keep_header": c.DPoPKeepHeader,
	}
	if c.ClientAuth != ClientTLS {
		m["client_secret"] = c.ClientSecret
	}
	if c.ClaimHeaders != nil {
		var list []any
		for _, h := range c.ClaimHeaders {
			list = append(list, map[string]any{"claim": c.ClaimPaths[h.Claim], "header": h.Header})
		}
		m["claim_headers"] = list
	}
	if c.Scopes != nil {
		m["scopes"] = c.Scopes
	}
	if c.RequiredScopes != nil {
		m["required_scopes"] = c.RequiredScopes
	}
	if c.JWTMember != "" {
		m["jwt_member"] = c.JWTMember
	}
	return m
}

// TestPlainHits: a hit is served on the Authorization value alone only
// where nothing else of the request is needed.
func TestPlainHits(t *testing.T) {
	for _, c := range []struct {
		name, extra string
		plain       bool
	}{
		{"the minimal configuration", ``, true},
		{"required scopes (checked on every hit)", `,"required_scopes":"a b"`, true},
		{"refresh ahead (the entry says when)", `,"refresh_ahead":0.25`, true},
		{"stale if error, unmarked", `,"stale_if_error":"30s"`, true},
		{"CORS preflights not forwarded", `,"forward_cors_preflight":false`, true},
		{"upstream header Authorization, spelled otherwise", `,"upstream_header":"Authorization"`, true},
		{"disabled", `,"enabled":false`, false},
		{"no cache", `,"cache":false`, false},
		{"route rules", `,"routes":[{"route":"r","realm":"x"}]`, false},
		{"route metadata", `,"route_metadata":true`, false},
		{"claim headers", `,"claim_headers":[{"claim":"sub","header":"x-user"}]`, false},
		{"a stale header", `,"stale_if_error":"30s","stale_header":"x-stale"`, false},
		{"DPoP allowed", `,"dpop":"allowed"`, false},
		{"DPoP required", `,"dpop":"required"`, false},
		{"certificate binding required", `,"require_certificate_bound":true`, false},
		{"another upstream header", `,"upstream_header":"x-jwt"`, false},
	} {
		cfg, err := Parse([]byte(`{`+minimal+c.extra+`}`), env)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if cfg.PlainHits != c.plain {
			t.Errorf("%s: PlainHits %v, want %v", c.name, cfg.PlainHits, c.plain)
		}
		for _, r := range cfg.Routes {
			if r.Config.PlainHits {
				t.Errorf("%s: a rule's configuration has PlainHits", c.name)
			}
		}
	}
}

// TestDocumentWritesEveryField keeps FuzzConfig's round trip honest: a new
// Config field must be written back by document, or be derived from others.
func TestDocumentWritesEveryField(t *testing.T) {
	handled := map[string]bool{
		"IntrospectionURL": true, "Cluster": true, "ClientID": true, "ClientSecret": true, "ClientAuth": true,
		"Realm": true, "Scopes": true, "RequiredScopes": true, "ResponseType": true, "JWTMember": true,
		"Timeout": true, "MaxJWTSize": true, "MaxTokenLength": true, "UpstreamHeader": true,
		"CacheEnabled": true, "CacheMaxTTL": true, "CacheMaxEntries": true, "CacheIgnoreCacheControl": true,
		"ForwardCORSPreflight": true, "Enabled": true, "CacheNegativeTTL": true, "MaxInFlight": true,
		"RequireCertificateBound": true, "ClientCertificateSource": true,
		"DPoP": true, "DPoPAlgs": true, "DPoPIATWindow": true, "DPoPNonce": true, "DPoPKeepHeader": true,
		"DPoPNonceSecret": true, "DPoPReplayMaxEntries": true,
		"StaleIfError": true, "StaleHeader": true, "RefreshAhead": true,
		"ClaimHeaders": true, "Routes": true, "RouteMetadata": true, "RejectClaimHeaders": true, "TraceHeaders": true,
		"Authority": true, "Path": true, "CacheNamespace": true, "ClaimPaths": true, "StripHeaders": true, "ToAuthorization": true, "PlainHits": true, // derived
	}
	for _, f := range reflect.VisibleFields(reflect.TypeOf(Config{})) {
		if !handled[f.Name] {
			t.Errorf("document does not write Config.%s back: add it there and here", f.Name)
		}
	}
}

// FuzzConfig: an accepted configuration re-validates, and written back as
// JSON it parses to the very same Config. A refused one says which key, or
// nothing, never the secret.
func FuzzConfig(f *testing.F) {
	f.Add([]byte(`{` + minimal + `}`))
	f.Add([]byte(`{` + minimal + `,"scopes":"read write","required_scopes":["a","b:c"],"realm":"x","timeout":2.5,"max_jwt_size":"32KiB","cache_max_ttl":60}`))
	f.Add([]byte(`{"introspection_url":"http://[::1]:80/i?x=%20","cluster":"c","client_id":"i d","client_secret_env":"PHANTOM_SECRET","jwt_member":"jwt","upstream_header":"X-JWT","cache":false}`))
	f.Add([]byte(`{` + minimal + `,"response_type":"application/token-introspection+jwt","forward_cors_preflight":false,"enabled":false}`))
	f.Add([]byte(`{` + minimal + `,"claim_headers":[{"claim":"sub","header":"x-user"}],"routes":[{"route":"a","enabled":false},` +
		`{"route_prefix":"b","required_scopes":"x","claim_headers":[{"claim":["c.d","e"],"header":"X-E"}]},` +
		`{"route":"c","introspection_url":"http://o/i","cluster":"o","client_id":"g","client_secret":"s3cret","jwt_member":"jwt"}]}`))
	f.Add([]byte(`{` + minimal + `,"route_metadata":true,"reject_claim_headers":true}`))
	f.Add([]byte(`{` + minimal + `,"trace_headers":["X-B3-TraceId","traceparent"]}`))
	f.Add([]byte(`{` + minimal + `,"trace_headers":[]}`))
	f.Add([]byte(`{` + minimal + `,"x":` + nest(jsonlimit.MaxDepth) + `}`))
	f.Add([]byte(`{` + minimal + `,"x":` + nest(10000) + `}`))
	f.Add([]byte(`{` + minimal + `,"x":` + strings.Repeat(`{"a":`, 10000) + `}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, env)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a config error", err)
			}
			// The secret of this input, when it has one: "s3cret" inline,
			// or "from-env" through PHANTOM_SECRET (a key may well be
			// called "s3cret" where it is no secret).
			if jsonlimit.Within(data, jsonlimit.MaxDepth) {
				inline := gjson.GetBytes(data, "client_secret").String() == "s3cret"
				fromEnv := gjson.GetBytes(data, "client_secret_env").String() == "PHANTOM_SECRET"
				if inline && strings.Contains(err.Error(), "s3cret") || fromEnv && strings.Contains(err.Error(), "from-env") {
					t.Fatalf("error reveals the secret: %v", err)
				}
			}
			return
		}
		if !jsonlimit.Within(data, jsonlimit.MaxDepth) {
			t.Fatalf("accepted JSON deeper than %d", jsonlimit.MaxDepth)
		}
		again, err := Parse(document(c), env)
		if err != nil {
			t.Fatalf("written back as %s, refused: %v", document(c), err)
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("round trip through %s\n got %+v\nwant %+v", document(c), again, c)
		}
	})
}
