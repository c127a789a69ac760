package bearer

import (
	"strings"
	"testing"
)

func TestFromHeader(t *testing.T) {
	long := strings.Repeat("a", 65)
	tests := []struct {
		name   string
		values []string
		token  string
		result Result
	}{
		{"no header", nil, "", Missing},
		{"empty value", []string{""}, "", Missing},
		{"basic scheme", []string{"Basic dXNlcjpwYXNz"}, "", Missing},
		{"bearer without token", []string{"Bearer"}, "", Missing},
		{"bearer with only spaces", []string{"Bearer   "}, "", Missing},
		{"bearer glued to token is another scheme", []string{"Bearerabc"}, "", Missing},
		{"bearer not at the start", []string{"Foo Bearer abc"}, "", Missing},
		{"canonical", []string{"Bearer abc"}, "abc", Found},
		{"lower case scheme", []string{"bearer abc"}, "abc", Found},
		{"upper case scheme", []string{"BEARER abc"}, "abc", Found},
		{"several spaces", []string{"Bearer    abc"}, "abc", Found},
		{"tab separator", []string{"Bearer\tabc"}, "abc", Found},
		{"trailing whitespace trimmed", []string{"Bearer abc \t "}, "abc", Found},
		{"every b64token character", []string{"Bearer AZaz09-._~+/=="}, "AZaz09-._~+/==", Found},
		{"padding in the middle", []string{"Bearer ab=c"}, "", Malformed},
		{"only padding", []string{"Bearer =="}, "", Malformed},
		{"ampersand", []string{"Bearer a&b"}, "", Malformed},
		{"space inside", []string{"Bearer a b"}, "", Malformed},
		{"quote", []string{`Bearer "abc"`}, "", Malformed},
		{"non-ascii", []string{"Bearer abcé"}, "", Malformed},
		{"at the length limit", []string{"Bearer " + long[:64]}, long[:64], Found},
		{"over the length limit", []string{"Bearer " + long}, "", Malformed},
		{"two headers", []string{"Bearer abc", "Bearer def"}, "", Duplicate},
		{"two headers one empty", []string{"Bearer abc", ""}, "", Duplicate},
		{"two headers folded by Envoy", []string{"Bearer abc,Bearer def"}, "", Duplicate},
		{"bearer folded with basic", []string{"Basic dXNlcg==,Bearer def"}, "", Duplicate},
		{"folded with an empty Bearer", []string{"Bearer abc,Bearer"}, "", Duplicate},
		{"comma inside the token", []string{"Bearer abc,def"}, "", Malformed},
		{"trailing comma", []string{"Bearer abc,"}, "", Malformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token, result := FromHeader(tt.values, 64)
			if token != tt.token || result != tt.result {
				t.Errorf("FromHeader(%q) = %q, %v; want %q, %v", tt.values, token, result, tt.token, tt.result)
			}
		})
	}
}

func FuzzFromHeader(f *testing.F) {
	f.Add("Bearer abc")
	f.Add("bearer\t a+b/c==")
	f.Fuzz(func(t *testing.T, v string) {
		token, result := FromHeader([]string{v}, 4096)
		if result == Found && (token == "" || strings.ContainsAny(token, " \t&\"") || len(token) > 4096) {
			t.Fatalf("accepted %q from %q", token, v)
		}
	})
}
