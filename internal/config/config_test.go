package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

const minimal = `"introspection_url":"https://login.example.com:8443/oauth/v2/introspect","cluster":"idsvr","client_id":"gateway","client_secret":"s3cret"`

func env(name string) string {
	if name == "PHANTOM_SECRET" {
		return "from-env"
	}
	return ""
}

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte(`{`+minimal+`}`), env)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Cluster: "idsvr", Authority: "login.example.com:8443", Path: "/oauth/v2/introspect",
		ClientID: "gateway", ClientSecret: "s3cret", Realm: "api", ResponseType: ResponseTypeJWT,
		Timeout: 5 * time.Second, MaxJWTSize: 16384, MaxTokenLength: 4096, UpstreamHeader: "authorization",
		CacheEnabled: true, CacheMaxTTL: 300 * time.Second, CacheMaxEntries: 10000, MaxInFlight: 100,
		ForwardCORSPreflight: true, Enabled: true, CacheNamespace: c.CacheNamespace,
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
		{"scopes as a string", `,"scopes":"read  write"`, func(c *Config) bool { return reflect.DeepEqual(c.Scopes, []string{"read", "write"}) }},
		{"scopes as an array (repeatable directive)", `,"scopes":["read","write"]`, func(c *Config) bool { return reflect.DeepEqual(c.Scopes, []string{"read", "write"}) }},
		{"required scopes", `,"required_scopes":["orders:read"]`, func(c *Config) bool { return reflect.DeepEqual(c.RequiredScopes, []string{"orders:read"}) }},
		{"RFC 9701 response type", `,"response_type":"application/token-introspection+jwt"`, func(c *Config) bool { return c.ResponseType == ResponseTypeIntrospectionJWT }},
		{"timeout as a duration string", `,"timeout":"250ms"`, func(c *Config) bool { return c.Timeout == 250*time.Millisecond }},
		{"timeout as seconds (Istio float)", `,"timeout":2.5`, func(c *Config) bool { return c.Timeout == 2500*time.Millisecond }},
		{"size as a float", `,"max_jwt_size":8192.0`, func(c *Config) bool { return c.MaxJWTSize == 8192 }},
		{"size with a suffix", `,"max_jwt_size":"32KiB"`, func(c *Config) bool { return c.MaxJWTSize == 32768 }},
		{"size as a digit string", `,"max_token_length":"100"`, func(c *Config) bool { return c.MaxTokenLength == 100 }},
		{"upstream header lower-cased", `,"upstream_header":"X-JWT"`, func(c *Config) bool { return c.UpstreamHeader == "x-jwt" }},
		{"cache off", `,"cache":false`, func(c *Config) bool { return !c.CacheEnabled }},
		{"cache bounds", `,"cache_max_ttl":"30s","cache_max_entries":100`, func(c *Config) bool { return c.CacheMaxTTL == 30*time.Second && c.CacheMaxEntries == 100 }},
		{"ignore cache control", `,"cache_ignore_cache_control":true`, func(c *Config) bool { return c.CacheIgnoreCacheControl }},
		{"preflight authenticated", `,"forward_cors_preflight":false`, func(c *Config) bool { return !c.ForwardCORSPreflight }},
		{"disabled", `,"enabled":false`, func(c *Config) bool { return !c.Enabled }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js := `{` + minimal + tt.extra + `}`
			if strings.Contains(tt.extra, "client_secret_env") {
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

func TestNamespaceSeparatesConfigurations(t *testing.T) {
	base, _ := Parse([]byte(`{`+minimal+`}`), env)
	for _, extra := range []string{
		`,"response_type":"application/token-introspection+jwt"`,
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
		{"scopes wrong type", `{` + minimal + `,"scopes":42}`, "scopes"},
		{"scope with quote", `{` + minimal + `,"scopes":"a\"b"}`, "scopes"},
		{"required scopes array of numbers", `{` + minimal + `,"required_scopes":[1]}`, "required_scopes"},
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
