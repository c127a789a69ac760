package config

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// One row per rule of splitURL: what is accepted and what it becomes, and
// what is refused with which problem.
func TestSplitURL(t *testing.T) {
	tests := []struct {
		raw, authority, path, problem string
	}{
		{raw: "http://idsvr", authority: "idsvr", path: "/"},
		{raw: "https://login.example.com:8443/oauth/v2/introspect", authority: "login.example.com:8443", path: "/oauth/v2/introspect"},
		{raw: "HTTPS://idsvr/i", authority: "idsvr", path: "/i"},
		{raw: "http://idsvr:8443/introspect?x=1", authority: "idsvr:8443", path: "/introspect?x=1"},
		{raw: "http://idsvr?x=1", authority: "idsvr", path: "/?x=1"},
		{raw: "http://idsvr/i?", authority: "idsvr", path: "/i"},
		{raw: "https://[::1]:8443/i", authority: "[::1]:8443", path: "/i"},
		{raw: "https://[::ffff:10.0.0.1]/i", authority: "[::ffff:10.0.0.1]", path: "/i"},
		{raw: "http://10.0.0.7:1/i", authority: "10.0.0.7:1", path: "/i"},
		{raw: "http://[2001:db8:0:0:0:0:0:1]/i", authority: "[2001:db8:0:0:0:0:0:1]", path: "/i"},
		{raw: "http://[::]/i", authority: "[::]", path: "/i"},
		{raw: "http://[1::]/i", authority: "[1::]", path: "/i"},
		{raw: "http://id_svr.local-1/i", authority: "id_svr.local-1", path: "/i"},
		{raw: "http://idsvr/a%20b/c;v=1", authority: "idsvr", path: "/a%20b/c;v=1"},
		{raw: "http://idsvr/a\"b<c>", authority: "idsvr", path: "/a%22b%3Cc%3E"},
		{raw: "http://idsvr/é", authority: "idsvr", path: "/%C3%A9"},
		{raw: "http://idsvr/i?a=%20b&c=d:e@f/g?h;!$'()*+,=-._~", authority: "idsvr", path: "/i?a=%20b&c=d:e@f/g?h;!$'()*+,=-._~"},

		{raw: "/introspect", problem: "must be an absolute http or https URL"},
		{raw: "idsvr/introspect", problem: "must be an absolute http or https URL"},
		{raw: "ftp://a/b", problem: "must be an absolute http or https URL"},
		{raw: "http:/a/b", problem: "has no host"},
		{raw: "http:///b", problem: "has no host"},
		{raw: "http://:8080/b", problem: "has no host"},
		{raw: "http://[]:8080/b", problem: "has no host"},
		{raw: "http://u:p@a/b", problem: "must not contain user information: use client_id and client_secret"},
		{raw: "http://a/b#f", problem: "must not contain a fragment"},
		{raw: "http://a/b#", problem: "must not contain a fragment"},
		{raw: "http://a:99999/b", problem: "has an invalid port"},
		{raw: "http://a:0/b", problem: "has an invalid port"},
		{raw: "http://a:/b", problem: "has an invalid port"},
		{raw: "http://a:+80/b", problem: "has an invalid port"},
		{raw: "http://a:8x/b", problem: "has an invalid port"},
		{raw: "http://a b/c", problem: "is not a valid URL"},
		{raw: "http://a/%zz", problem: "is not a valid URL"},
		{raw: "http://a/%2", problem: "is not a valid URL"},
		{raw: "http://a/b\x00", problem: "is not a valid URL"},
		{raw: "http://a\r\nx: y/b", problem: "is not a valid URL"},
		{raw: "http://a<b>/c", problem: "is not a valid URL"},
		{raw: "http://[::1/b", problem: "is not a valid URL"},
		{raw: "http://[::1]x/b", problem: "is not a valid URL"},
		{raw: "http://[fe80::1%25en0]/b", problem: "is not a valid URL"},
		{raw: "http://[0]/b", problem: "is not a valid URL"},
		{raw: "http://[1:2:3:4:5:6:7]/b", problem: "is not a valid URL"},
		{raw: "http://[1:2:3:4:5:6:7:8:9]/b", problem: "is not a valid URL"},
		{raw: "http://[1::2::3]/b", problem: "is not a valid URL"},
		{raw: "http://[12345::1]/b", problem: "is not a valid URL"},
		{raw: "http://[::1.2.3.256]/b", problem: "is not a valid URL"},
		{raw: "http://[::01.2.3.4]/b", problem: "is not a valid URL"},
		{raw: "http://[1:2:3:4:5:6:7:8::]/b", problem: "is not a valid URL"},
		{raw: "http://a/b?x=%zz", problem: "has an invalid query: only RFC 3986 query characters and %XX escapes may appear"},
		{raw: "http://a/b?x=%2", problem: "has an invalid query: only RFC 3986 query characters and %XX escapes may appear"},
		{raw: "http://a/b?x=%", problem: "has an invalid query: only RFC 3986 query characters and %XX escapes may appear"},
		{raw: "http://a/b?x=\u00e9", problem: "has an invalid query: only RFC 3986 query characters and %XX escapes may appear"},
		{raw: "http://a/b?x=\"", problem: "has an invalid query: only RFC 3986 query characters and %XX escapes may appear"},
		{raw: "http://a/b?x=<>", problem: "has an invalid query: only RFC 3986 query characters and %XX escapes may appear"},
		{raw: "http://a/b?x=\\", problem: "has an invalid query: only RFC 3986 query characters and %XX escapes may appear"},
		{raw: "http://a/b?x=^", problem: "has an invalid query: only RFC 3986 query characters and %XX escapes may appear"},
		{raw: "http://a/b?x=`", problem: "has an invalid query: only RFC 3986 query characters and %XX escapes may appear"},
		{raw: "http://a/b?x={|}", problem: "has an invalid query: only RFC 3986 query characters and %XX escapes may appear"},
		{raw: "http://a/b?x=[1]", problem: "has an invalid query: only RFC 3986 query characters and %XX escapes may appear"},
	}
	for _, tt := range tests {
		authority, path, err := splitURL(tt.raw)
		switch {
		case tt.problem == "" && err != nil:
			t.Errorf("%q: %v", tt.raw, err)
		case tt.problem == "" && (authority != tt.authority || path != tt.path):
			t.Errorf("%q: got %q %q, want %q %q", tt.raw, authority, path, tt.authority, tt.path)
		case tt.problem != "" && (err == nil || err.Error() != tt.problem):
			t.Errorf("%q: got %q %q %v, want %q", tt.raw, authority, path, err, tt.problem)
		}
	}
}

// FuzzSplitURL: splitURL is never looser than net/url. What it accepts,
// net/url parses to the same authority and path, with a valid port.
func FuzzSplitURL(f *testing.F) {
	for _, s := range []string{"http://idsvr", "https://[::1]:8443/i?x=%20", "http://a/b c", "http://a:65536/", "HTTP://h/%41", "http://0/!00\"", "http://[::1.2.3.4]/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		authority, path, err := splitURL(raw)
		if err != nil {
			return
		}
		u, uerr := url.Parse(raw)
		if uerr != nil {
			t.Fatalf("%q: accepted as %q %q, net/url refuses it: %v", raw, authority, path, uerr)
		}
		// The path may be escaped differently (RFC 3986 lets sub-delims
		// such as "!" go raw, net/url escapes them): it must mean the same.
		gotPath, gotQuery, _ := strings.Cut(path, "?")
		decoded, derr := url.PathUnescape(gotPath)
		wantPath := u.Path
		if wantPath == "" {
			wantPath = "/"
		}
		if u.Host != authority || derr != nil || decoded != wantPath || gotQuery != u.RawQuery || u.User != nil || u.Fragment != "" {
			t.Fatalf("%q: got %q %q, net/url reads %q %q ? %q", raw, authority, path, u.Host, wantPath, u.RawQuery)
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				t.Fatalf("%q: accepted with port %q", raw, p)
			}
		}
		if s := strings.ToLower(u.Scheme); s != "http" && s != "https" {
			t.Fatalf("%q: accepted with scheme %q", raw, u.Scheme)
		}
	})
}
