package config

import (
	"strings"
	"testing"
	"time"
)

func TestCachePolicyKeys(t *testing.T) {
	tests := []struct {
		name, extra string
		check       func(*Config) bool
		problem     string // "" when valid
	}{
		{"negative cache off by default", ``, func(c *Config) bool { return c.CacheNegativeTTL == 0 }, ""},
		{"negative cache TTL", `,"cache_negative_ttl":"10s"`, func(c *Config) bool { return c.CacheNegativeTTL == 10*time.Second }, ""},
		{"negative cache TTL as Istio float", `,"cache_negative_ttl":5.0`, func(c *Config) bool { return c.CacheNegativeTTL == 5*time.Second }, ""},
		{"negative cache TTL beyond its bound", `,"cache_negative_ttl":"61s"`, nil, "cache_negative_ttl"},
		{"negative cache TTL of zero", `,"cache_negative_ttl":0`, nil, "cache_negative_ttl"},
		{"max in flight default", ``, func(c *Config) bool { return c.MaxInFlight == DefaultMaxInFlight }, ""},
		{"max in flight", `,"max_in_flight":8`, func(c *Config) bool { return c.MaxInFlight == 8 }, ""},
		{"max in flight beyond its bound", `,"max_in_flight":10001`, nil, "max_in_flight"},
		{"max in flight of zero", `,"max_in_flight":0`, nil, "max_in_flight"},
		{"DPoP nonce key too short", `,"dpop_nonce_secret_env":"PHANTOM_SECRET"`, nil, "dpop_nonce_secret_env"},
		{"DPoP nonce key unset", `,"dpop_nonce_secret_env":"NOPE"`, nil, "dpop_nonce_secret_env"},
		{"DPoP replay bound", `,"dpop_replay_max_entries":1000001`, nil, "dpop_replay_max_entries"},
	}
	for _, tt := range tests {
		c, err := Parse([]byte(`{`+minimal+tt.extra+`}`), env)
		switch {
		case tt.problem != "":
			if e, ok := err.(*Error); !ok || e.Key != tt.problem {
				t.Errorf("%s: error %v, want one naming %q", tt.name, err, tt.problem)
			}
		case err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case !tt.check(c):
			t.Errorf("%s: got %+v", tt.name, c)
		}
	}
}

// Two configurations share cache entries only when they would have stored
// the same ones: every setting that changes what is stored, or for how long,
// is part of the namespace; the per-request checks are not.
func TestNamespaceFollowsTheCachePolicy(t *testing.T) {
	base, err := Parse([]byte(`{`+minimal+`}`), env)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, extra string
		shares      bool
	}{
		{"another cache_max_ttl", `,"cache_max_ttl":"1s"`, false},
		{"cache_ignore_cache_control", `,"cache_ignore_cache_control":true`, false},
		{"a negative cache", `,"cache_negative_ttl":"5s"`, false},
		{"another max_jwt_size", `,"max_jwt_size":1024`, false},
		{"another table size", `,"cache_max_entries":100`, false},
		{"another response type", `,"response_type":"application/token-introspection+jwt"`, false},
		{"required scopes (checked per request)", `,"required_scopes":"read"`, true},
		{"another realm", `,"realm":"orders"`, true},
		{"another upstream header (the header is built per VM)", `,"upstream_header":"x-jwt"`, true},
		{"another in-flight bound", `,"max_in_flight":5`, true},
	}
	for _, tt := range tests {
		c, err := Parse([]byte(`{`+minimal+tt.extra+`}`), env)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := c.CacheNamespace == base.CacheNamespace; got != tt.shares {
			t.Errorf("%s: shares entries = %v, want %v", tt.name, got, tt.shares)
		}
	}
}

// A secret pasted where a key goes is not echoed in the error.
func TestUnknownKeyHoldingTheSecretIsNotShown(t *testing.T) {
	for _, cfg := range []string{
		`{` + minimal + `,"s3cret":1}`,
		`{` + minimal + `,"xs3cretx":1}`,
		`{"introspection_url":"https://i/x","cluster":"c","client_id":"g","client_secret_env":"PHANTOM_SECRET","from-env":1}`,
	} {
		_, err := Parse([]byte(cfg), env)
		if err == nil || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "from-env") {
			t.Errorf("%s: %v", cfg, err)
		}
	}
	// Any other unknown key is named.
	if _, err := Parse([]byte(`{`+minimal+`,"introspection_endpoint":1}`), env); err == nil || !strings.Contains(err.Error(), "introspection_endpoint") {
		t.Errorf("unknown key not named: %v", err)
	}
}
