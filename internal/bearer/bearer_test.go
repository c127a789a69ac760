package bearer

import (
	"regexp"
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
		{"no-break space is not a separator", []string{"Bearer\u00a0abc"}, "", Missing},
		{"line break is not a separator", []string{"Bearer\nabc"}, "", Missing},
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

func TestResultString(t *testing.T) {
	for r, want := range map[Result]string{Found: "Found", Missing: "Missing", Malformed: "Malformed", Duplicate: "Duplicate", 9: "Result(9)"} {
		if r.String() != want {
			t.Errorf("%d prints %q, want %q", int(r), r.String(), want)
		}
	}
}

var b64token = regexp.MustCompile(`^[A-Za-z0-9\-._~+/]+=*$`)

// FuzzFromHeader: an accepted token is an RFC 6750 b64token within the length
// bound, and it is what follows "Bearer" and spaces or tabs at the start of
// the value, less trailing spaces and tabs. Two values are always Duplicate.
func FuzzFromHeader(f *testing.F) {
	for _, v := range []string{"Bearer abc", "bearer\t a+b/c==", "BEARER x \t", "Bearer", "Bearer ", "Basic dXNlcg==",
		"Bearer abc,Bearer def", "Bearer abc,", "Foo Bearer abc", "Bearer ab=c", "Bearer " + strings.Repeat("a", 64),
		"Bearer " + strings.Repeat("a", 65), "Bearer é", "Bearer\x00abc"} {
		f.Add(v, 64)
	}
	f.Fuzz(func(t *testing.T, v string, maxLen int) {
		if maxLen < 1 || maxLen > 8192 {
			maxLen = 4096
		}
		if _, r := FromHeader([]string{v, v}, maxLen); r != Duplicate {
			t.Fatalf("two values %q: %v", v, r)
		}
		token, result := FromHeader([]string{v}, maxLen)
		if result != Found {
			if token != "" {
				t.Fatalf("%v with token %q", result, token)
			}
			return
		}
		if !b64token.MatchString(token) || len(token) > maxLen {
			t.Fatalf("accepted %q (max %d) from %q", token, maxLen, v)
		}
		trimmed := strings.TrimRight(v, " \t")
		prefix, ok := strings.CutSuffix(trimmed, token)
		if !ok || len(prefix) <= len("bearer") || !strings.EqualFold(prefix[:6], "bearer") || strings.Trim(prefix[6:], " \t") != "" {
			t.Fatalf("token %q is not the rest of %q after the scheme", token, v)
		}
	})
}
