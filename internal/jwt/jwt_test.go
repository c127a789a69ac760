package jwt

import (
	"reflect"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/internal/testjwt"
)

func TestParse(t *testing.T) {
	exp := time.Unix(2000000000, 0)
	tests := []struct {
		name   string
		jwt    string
		claims Claims
		ok     bool
	}{
		{"plain phantom JWT", testjwt.Make(`{"sub":"a","exp":2000000000,"scope":"read write"}`),
			Claims{Exp: exp, Scopes: []string{"read", "write"}}, true},
		{"no exp, no scope", testjwt.Make(`{"sub":"a"}`), Claims{}, true},
		{"fractional exp", testjwt.Make(`{"exp":2000000000.5}`), Claims{Exp: exp.Add(500 * time.Millisecond)}, true},
		{"active true", testjwt.Make(`{"active":true}`), Claims{HasActive: true, Active: true}, true},
		{"active false", testjwt.Make(`{"active":false}`), Claims{HasActive: true}, true},
		{"RFC 9701", testjwt.Make(`{"iss":"x","token_introspection":{"active":true,"scope":"a","exp":2000000000}}`),
			Claims{Introspection: true, HasActive: true, Active: true, Exp: exp, Scopes: []string{"a"}}, true},
		{"RFC 9701 earliest exp wins", testjwt.Make(`{"exp":2000000001,"token_introspection":{"active":true,"exp":2000000000}}`),
			Claims{Introspection: true, HasActive: true, Active: true, Exp: exp}, true},
		{"RFC 9701 inactive", testjwt.Make(`{"token_introspection":{"active":false}}`), Claims{Introspection: true, HasActive: true}, true},
		{"two parts", "a.b", Claims{}, false},
		{"four parts", testjwt.Make(`{}`) + ".x", Claims{}, false},
		{"empty signature", testjwt.Parts(`{"alg":"RS256"}`, `{}`, ""), Claims{}, false},
		{"padded signature", testjwt.Parts(`{"alg":"RS256"}`, `{}`, "abc="), Claims{}, false},
		{"alg none", testjwt.Parts(`{"alg":"none"}`, `{}`, "abc"), Claims{}, false},
		{"no alg", testjwt.Parts(`{"typ":"JWT"}`, `{}`, "abc"), Claims{}, false},
		{"header not JSON", testjwt.Parts(`nope`, `{}`, "abc"), Claims{}, false},
		{"payload not JSON", testjwt.Parts(`{"alg":"RS256"}`, `nope`, "abc"), Claims{}, false},
		{"payload an array", testjwt.Parts(`{"alg":"RS256"}`, `[1]`, "abc"), Claims{}, false},
		{"payload not base64url", "eyJhbGciOiJSUzI1NiJ9.***.abc", Claims{}, false},
		{"exp a string", testjwt.Make(`{"exp":"tomorrow"}`), Claims{}, false},
		{"active a string", testjwt.Make(`{"active":"true"}`), Claims{}, false},
		{"scope an array", testjwt.Make(`{"scope":["a"]}`), Claims{}, false},
		{"token_introspection a string", testjwt.Make(`{"token_introspection":"x"}`), Claims{}, false},
		{"opaque text", "not-a-jwt", Claims{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.jwt)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && !reflect.DeepEqual(c, tt.claims) {
				t.Errorf("got %+v, want %+v", c, tt.claims)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	now := time.Unix(1000, 0)
	tests := []struct {
		name     string
		claims   Claims
		required []string
		want     Verdict
	}{
		{"no exp", Claims{}, nil, Valid},
		{"exp in the future", Claims{Exp: now.Add(time.Second)}, nil, Valid},
		{"exp now", Claims{Exp: now}, nil, Expired},
		{"exp passed", Claims{Exp: now.Add(-time.Second)}, nil, Expired},
		{"all required scopes", Claims{Scopes: []string{"a", "b", "c"}}, []string{"c", "a"}, Valid},
		{"a required scope missing", Claims{Scopes: []string{"a"}}, []string{"a", "b"}, InsufficientScope},
		{"no scope claim", Claims{}, []string{"a"}, InsufficientScope},
		{"scope prefix is not the scope", Claims{Scopes: []string{"read:all"}}, []string{"read"}, InsufficientScope},
		{"expiry before scopes", Claims{Exp: now}, []string{"a"}, Expired},
	}
	for _, tt := range tests {
		if got := tt.claims.Check(now, tt.required); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(testjwt.Make(`{"exp":1}`))
	f.Fuzz(func(t *testing.T, s string) { Parse(s) })
}
