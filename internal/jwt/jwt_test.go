package jwt

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/phantom-token/envoy-phantom-token/internal/jsonlimit"

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
		{"one-character signature", testjwt.Parts(`{"alg":"RS256"}`, `{}`, "a"), Claims{}, false},
		{"line break inside the payload", strings.Replace(testjwt.Make(`{"sub":"abcdef"}`), ".eyJ", ".ey\nJ", 1), Claims{}, false},
		{"empty header", "." + testjwt.Make(`{}`)[strings.IndexByte(testjwt.Make(`{}`), '.')+1:], Claims{}, false},
		{"alg none", testjwt.Parts(`{"alg":"none"}`, `{}`, "abc"), Claims{}, false},
		{"no alg", testjwt.Parts(`{"typ":"JWT"}`, `{}`, "abc"), Claims{}, false},
		{"header not JSON", testjwt.Parts(`nope`, `{}`, "abc"), Claims{}, false},
		{"payload not JSON", testjwt.Parts(`{"alg":"RS256"}`, `nope`, "abc"), Claims{}, false},
		{"payload an array", testjwt.Parts(`{"alg":"RS256"}`, `[1]`, "abc"), Claims{}, false},
		{"payload not base64url", "eyJhbGciOiJSUzI1NiJ9.***.abc", Claims{}, false},
		{"exp a string", testjwt.Make(`{"exp":"tomorrow"}`), Claims{}, false},
		{"active a string", testjwt.Make(`{"active":"true"}`), Claims{}, false},
		{"scope split on %x20 only: no-break space", testjwt.Make(`{"scope":"read\u00a0write"}`), Claims{Scopes: []string{"read\u00a0write"}}, true},
		{"scope split on %x20 only: tab", testjwt.Make(`{"scope":"read\twrite"}`), Claims{Scopes: []string{"read\twrite"}}, true},
		{"scope with extra spaces", testjwt.Make(`{"scope":" a  b "}`), Claims{Scopes: []string{"a", "b"}}, true},
		{"scope empty string", testjwt.Make(`{"scope":""}`), Claims{}, true},
		{"scope an array of strings", testjwt.Make(`{"scope":["a","b c"]}`), Claims{Scopes: []string{"a", "b c"}}, true},
		{"scope an array with an empty string: no scope (found by FuzzParse)", testjwt.Make(`{"scope":["","a"]}`), Claims{Scopes: []string{"a"}}, true},
		{"scope an empty array", testjwt.Make(`{"scope":[]}`), Claims{}, true},
		{"scope an array with a number", testjwt.Make(`{"scope":["a",1]}`), Claims{BadScope: true}, true},
		{"scope a number", testjwt.Make(`{"scope":42}`), Claims{BadScope: true}, true},
		{"scope null", testjwt.Make(`{"scope":null}`), Claims{BadScope: true}, true},
		{"scope an object", testjwt.Make(`{"scope":{"a":true}}`), Claims{BadScope: true}, true},
		{"RFC 9701 scope array", testjwt.Make(`{"token_introspection":{"active":true,"scope":["a"]}}`),
			Claims{Introspection: true, HasActive: true, Active: true, Scopes: []string{"a"}}, true},
		{"duplicate scope", testjwt.Make(`{"scope":"a","scope":"admin"}`), Claims{}, false},
		{"duplicate scope through an escape", testjwt.Make(`{"scope":"a","sc\u006fpe":"admin"}`), Claims{}, false},
		{"duplicate exp", testjwt.Make(`{"exp":1,"exp":2000000000}`), Claims{}, false},
		{"duplicate active", testjwt.Make(`{"active":false,"active":true}`), Claims{}, false},
		{"duplicate token_introspection", testjwt.Make(`{"token_introspection":{"active":false},"token_introspection":{"active":true}}`), Claims{}, false},
		{"duplicate active in token_introspection", testjwt.Make(`{"token_introspection":{"active":false,"active":true}}`), Claims{}, false},
		{"duplicate scope in token_introspection", testjwt.Make(`{"token_introspection":{"active":true,"scope":"a","scope":"b"}}`), Claims{}, false},
		{"duplicate alg", testjwt.Parts(`{"alg":"none","alg":"RS256"}`, `{}`, "abc"), Claims{}, false},
		{"other claims may repeat", testjwt.Make(`{"sub":"a","sub":"b"}`), Claims{}, true},
		{"payload at the depth bound", testjwt.Make(`{"x":` + testjwt.Nest("[", jsonlimit.MaxDepth-1) + `}`), Claims{}, true},
		{"payload past the depth bound", testjwt.Make(`{"x":` + testjwt.Nest("[", jsonlimit.MaxDepth) + `}`), Claims{}, false},
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

// TestDeepNesting: JSON nested far past the bound, where gjson's recursion
// would overflow the wasm stack, is refused on every path before gjson sees
// it, with an error that says so.
func TestDeepNesting(t *testing.T) {
	for _, open := range []string{"[", `{"a":`} {
		for _, n := range []int{9000, 10000, 100000} {
			deep := testjwt.Nest(open, n)
			for name, jwt := range map[string]string{
				"header":              testjwt.Parts(`{"alg":"RS256","x":`+deep+`}`, `{}`, "abc"),
				"payload":             testjwt.Make(`{"x":` + deep + `}`),
				"token_introspection": testjwt.Make(`{"token_introspection":{"active":true,"x":` + deep + `}}`),
				"unclosed payload":    testjwt.Make(`{"x":` + strings.Repeat(open, n)),
			} {
				_, err := Parse(jwt)
				if err == nil || !strings.Contains(err.Error(), "nested deeper than 64") {
					t.Errorf("%s, %d × %s: err = %v", name, n, open, err)
				}
			}
		}
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
		{"unreadable scope claim, scopes required", Claims{BadScope: true}, []string{"a"}, UnreadableScope},
		{"unreadable scope claim, no scope required", Claims{BadScope: true}, nil, Valid},
		{"no-break space is not a separator", mustParse(t, `{"scope":"read\u00a0write"}`), []string{"read", "write"}, InsufficientScope},
		{"scope array grants each", mustParse(t, `{"scope":["write","read"]}`), []string{"read", "write"}, Valid},
	}
	for _, tt := range tests {
		if got := tt.claims.Check(now, tt.required); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func mustParse(t *testing.T, payload string) Claims {
	t.Helper()
	c, err := Parse(testjwt.Make(payload))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestVerdictString(t *testing.T) {
	for v, want := range map[Verdict]string{Valid: "Valid", Expired: "Expired", InsufficientScope: "InsufficientScope",
		UnreadableScope: "UnreadableScope", 9: "Verdict(9)"} {
		if v.String() != want {
			t.Errorf("%d prints %q, want %q", int(v), v.String(), want)
		}
	}
}

var base64url = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// FuzzParse builds a JWS from a header, a payload and a signature part. An
// accepted JWT has the shape Parse promises, nests no deeper than the bound,
// and claims consistent with its payload.
func FuzzParse(f *testing.F) {
	hdr := `{"alg":"RS256"}`
	f.Add(hdr, `{"exp":1}`, "abc")
	f.Add(hdr, `{"sub":"a","exp":2000000000,"scope":"read write","active":true}`, "c2ln")
	f.Add(hdr, `{"token_introspection":{"active":true,"scope":["a","b"],"exp":2000000000}}`, "c2ln")
	f.Add(hdr, `{"scope":"a","sc\u006fpe":"b"}`, "x")
	f.Add(`{"alg":"none"}`, `{}`, "x")
	for _, n := range []int{jsonlimit.MaxDepth - 1, jsonlimit.MaxDepth, 10000} {
		f.Add(hdr, `{"x":`+testjwt.Nest("[", n)+`}`, "x")
		f.Add(`{"alg":"RS256","x":`+testjwt.Nest(`{"a":`, n)+`}`, `{}`, "x")
	}
	f.Fuzz(func(t *testing.T, header, payload, sig string) {
		s := testjwt.Parts(header, payload, sig)
		c, err := Parse(s)
		if err != nil {
			if c.Introspection || c.HasActive || c.Scopes != nil {
				t.Fatalf("refused (%v) but returned claims %+v", err, c)
			}
			return
		}
		if strings.Count(s, ".") != 2 || sig == "" || !jsonlimit.Within(header, jsonlimit.MaxDepth) || !jsonlimit.Within(payload, jsonlimit.MaxDepth) {
			t.Fatalf("accepted %q", s)
		}
		if !base64url.MatchString(sig) || len(sig)%4 == 1 {
			t.Fatalf("accepted signature %q", sig)
		}
		p := gjson.Parse(payload)
		if !p.IsObject() || !gjson.Valid(payload) {
			t.Fatalf("accepted payload %q", payload)
		}
		if alg := gjson.Get(header, "alg"); alg.Type != gjson.String || strings.EqualFold(alg.Str, "none") || alg.Str == "" {
			t.Fatalf("accepted header %q", header)
		}
		claims := p
		if ti := p.Get("token_introspection"); ti.Exists() {
			claims = ti
		}
		if c.Introspection != p.Get("token_introspection").Exists() {
			t.Fatalf("Introspection %v for %q", c.Introspection, payload)
		}
		if a := claims.Get("active"); c.HasActive != a.IsBool() || c.Active != (a.Type == gjson.True) {
			t.Fatalf("active %v/%v for %q", c.HasActive, c.Active, payload)
		}
		if !c.Exp.IsZero() && c.Exp.Before(time.Unix(0, 0)) {
			t.Fatalf("exp %v", c.Exp)
		}
		for _, sc := range c.Scopes {
			if sc == "" || claims.Get("scope").Type == gjson.String && strings.Contains(sc, " ") {
				t.Fatalf("scope %q from %q", sc, payload)
			}
		}
		if c.BadScope && c.Scopes != nil {
			t.Fatalf("bad scope claim with scopes %q", c.Scopes)
		}
		if again, _ := Parse(s); !reflect.DeepEqual(again, c) {
			t.Fatalf("two parses differ: %+v, %+v", c, again)
		}
	})
}

// An exp past 2262 (beyond what a Duration in nanoseconds holds) is read as
// the date it is, not wrapped into the past.
func TestExpFarInTheFuture(t *testing.T) {
	c, err := Parse(testjwt.Make(`{"exp":10000000000.5}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(10_000_000_000, 5e8); !c.Exp.Equal(want) {
		t.Errorf("exp %v, want %v", c.Exp, want)
	}
	if c.Check(time.Now(), nil) != Valid {
		t.Error("a JWT valid until 2286 is expired")
	}
}

func TestBinding(t *testing.T) {
	x5t := "BimEMugGayniIjvMI6qVBLVq5Qj6vzQ1UIhpucMZDiI" // 32 bytes
	jkt := "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	other := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	tests := []struct {
		name    string
		payload string
		cert    bool
		jkt     string
		err     bool
	}{
		{"unbound", `{"sub":"a"}`, false, "", false},
		{"certificate-bound", `{"cnf":{"x5t#S256":"` + x5t + `"}}`, true, "", false},
		{"DPoP-bound", `{"cnf":{"jkt":"` + jkt + `"}}`, false, jkt, false},
		{"both", `{"cnf":{"x5t#S256":"` + x5t + `","jkt":"` + jkt + `"}}`, true, jkt, false},
		{"other confirmation methods only", `{"cnf":{"kid":"k1"}}`, false, "", false},
		{"cnf not an object", `{"cnf":"x"}`, false, "", true},
		{"x5t#S256 not a string", `{"cnf":{"x5t#S256":1}}`, false, "", true},
		{"x5t#S256 too short", `{"cnf":{"x5t#S256":"` + x5t[:40] + `"}}`, false, "", true},
		{"x5t#S256 with padding", `{"cnf":{"x5t#S256":"` + x5t + `="}}`, false, "", true},
		{"x5t#S256 standard base64", `{"cnf":{"x5t#S256":"+` + x5t[1:] + `"}}`, false, "", true},
		{"jkt empty", `{"cnf":{"jkt":""}}`, false, "", true},
		{"duplicate cnf", `{"cnf":{"jkt":"` + jkt + `"},"cnf":{}}`, false, "", true},
		{"duplicate jkt", `{"cnf":{"jkt":"` + jkt + `","jkt":"` + other + `"}}`, false, "", true},
		{"RFC 9701: inside token_introspection", `{"token_introspection":{"active":true,"cnf":{"jkt":"` + jkt + `"}}}`, false, jkt, false},
		{"RFC 9701: both, agreeing", `{"cnf":{"jkt":"` + jkt + `"},"token_introspection":{"active":true,"cnf":{"jkt":"` + jkt + `"}}}`, false, jkt, false},
		{"RFC 9701: both, disagreeing", `{"cnf":{"jkt":"` + jkt + `"},"token_introspection":{"active":true,"cnf":{"jkt":"` + other + `"}}}`, false, "", true},
		{"RFC 9701: a certificate outside, a key inside", `{"cnf":{"x5t#S256":"` + x5t + `"},"token_introspection":{"active":true,"cnf":{"jkt":"` + jkt + `"}}}`, true, jkt, false},
	}
	for _, tt := range tests {
		c, err := Parse(testjwt.Make(tt.payload))
		if (err != nil) != tt.err {
			t.Errorf("%s: error %v", tt.name, err)
			continue
		}
		if err == nil && (c.Binding.CertBound != tt.cert || c.Binding.JKT != tt.jkt || c.Binding.Bound() != (tt.cert || tt.jkt != "")) {
			t.Errorf("%s: %+v", tt.name, c.Binding)
		}
	}
}
