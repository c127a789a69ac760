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
		value  string
		absent bool
		token  string
		result Result
	}{
		{"no header", "", true, "", Missing},
		{"empty value", "", false, "", Missing},
		{"basic scheme", "Basic dXNlcjpwYXNz", false, "", Missing},
		{"bearer without token", "Bearer", false, "", Missing},
		{"bearer with only spaces", "Bearer   ", false, "", Missing},
		{"bearer glued to token is another scheme", "Bearerabc", false, "", Missing},
		{"bearer not at the start", "Foo Bearer abc", false, "", Missing},
		{"canonical", "Bearer abc", false, "abc", Found},
		{"lower case scheme", "bearer abc", false, "abc", Found},
		{"upper case scheme", "BEARER abc", false, "abc", Found},
		{"several spaces", "Bearer    abc", false, "abc", Found},
		{"tab separator", "Bearer\tabc", false, "abc", Found},
		{"trailing whitespace trimmed", "Bearer abc \t ", false, "abc", Found},
		{"every b64token character", "Bearer AZaz09-._~+/==", false, "AZaz09-._~+/==", Found},
		{"padding in the middle", "Bearer ab=c", false, "", Malformed},
		{"only padding", "Bearer ==", false, "", Malformed},
		{"ampersand", "Bearer a&b", false, "", Malformed},
		{"space inside", "Bearer a b", false, "", Malformed},
		{"quote", `Bearer "abc"`, false, "", Malformed},
		{"non-ascii", "Bearer abcé", false, "", Malformed},
		{"at the length limit", "Bearer " + long[:64], false, long[:64], Found},
		{"over the length limit", "Bearer " + long, false, "", Malformed},
		{"two headers folded by Envoy", "Bearer abc,Bearer def", false, "", Duplicate},
		{"bearer folded with basic", "Basic dXNlcg==,Bearer def", false, "", Duplicate},
		{"folded with an empty Bearer", "Bearer abc,Bearer", false, "", Duplicate},
		{"comma inside the token", "Bearer abc,def", false, "", Malformed},
		{"trailing comma", "Bearer abc,", false, "", Malformed},
		{"no-break space is not a separator", "Bearer\u00a0abc", false, "", Missing},
		{"line break is not a separator", "Bearer\nabc", false, "", Missing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token, result := FromHeader(tt.value, !tt.absent, 64)
			if token != tt.token || result != tt.result {
				t.Errorf("FromHeader(%q) = %q, %v; want %q, %v", tt.value, token, result, tt.token, tt.result)
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
// the value, less trailing spaces and tabs. Two values folded by Envoy are
// never one token.
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
		if _, r := FromHeader(v+","+v, true, maxLen); r == Found {
			t.Fatalf("two folded values %q: %v", v, r)
		}
		token, result := FromHeader(v, true, maxLen)
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

func TestWithScheme(t *testing.T) {
	tests := []struct {
		name   string
		value  string
		dpop   bool
		token  string
		scheme Scheme
		result Result
	}{
		{"Bearer, DPoP off", "Bearer abc", false, "abc", Bearer, Found},
		{"Bearer, DPoP on", "Bearer abc", true, "abc", Bearer, Found},
		{"DPoP scheme, DPoP off: another scheme", "DPoP abc", false, "", Bearer, Missing},
		{"DPoP scheme", "DPoP abc", true, "abc", DPoP, Found},
		{"DPoP scheme, any case", "dpop abc", true, "abc", DPoP, Found},
		{"DPoP scheme, tab", "DPoP\tabc", true, "abc", DPoP, Found},
		{"DPoP without a token", "DPoP  ", true, "", DPoP, Missing},
		{"DPoP glued", "DPoPabc", true, "", Bearer, Missing},
		{"DPoP malformed token", "DPoP a&b", true, "", DPoP, Malformed},
		{"DPoP and Bearer folded", "DPoP abc,Bearer abc", true, "", Bearer, Duplicate},
		{"DPoP not at the start", "Foo DPoP abc", true, "", Bearer, Missing},
	}
	for _, tt := range tests {
		token, scheme, result := WithScheme(tt.value, true, 64, tt.dpop)
		if token != tt.token || scheme != tt.scheme || result != tt.result {
			t.Errorf("%s: %q %v %v", tt.name, token, scheme, result)
		}
	}
}

// FuzzWithSchemeAsWritten checks WithScheme, whose hot path is written as
// plain loops, against the same rules written with the strings package.
func FuzzWithSchemeAsWritten(f *testing.F) {
	for _, v := range []string{"Bearer abc", "DPoP abc", "dpop\tabc ", "Bearer abc,Bearer def", "Basic x,Bearer y",
		"Bearer a,", "bearer , x", "DPoPabc", "Bearer\t", "BEARER a=b"} {
		f.Add(v, 64, true)
	}
	f.Fuzz(func(t *testing.T, v string, maxLen int, dpop bool) {
		maxLen = max(1, min(maxLen, 8192))
		token, scheme, r := WithScheme(v, true, maxLen, dpop)
		wToken, wScheme, wR := withSchemeAsWritten(v, maxLen, dpop)
		if token != wToken || scheme != wScheme || r != wR {
			t.Fatalf("%q: %q %v %v, want %q %v %v", v, token, scheme, r, wToken, wScheme, wR)
		}
	})
}

func withSchemeAsWritten(v string, maxLen int, dpop bool) (string, Scheme, Result) {
	if folded(v) { // first, on every value (WithScheme looks only when it needs to)
		return "", Bearer, Duplicate
	}
	scheme, name := Bearer, "bearer"
	if dpop && len(v) > 4 && strings.EqualFold(v[:4], "dpop") && isSpace(v[4]) {
		scheme, name = DPoP, "dpop"
	}
	if len(v) <= len(name) || !strings.EqualFold(v[:len(name)], name) || !isSpace(v[len(name)]) {
		return "", Bearer, Missing
	}
	token := strings.Trim(v[len(name):], " \t")
	switch {
	case token == "":
		return "", scheme, Missing
	case len(token) > maxLen || !b64token.MatchString(token):
		return "", scheme, Malformed
	}
	return token, scheme, Found
}
