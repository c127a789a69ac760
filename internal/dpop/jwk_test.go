package dpop_test

import (
	"testing"

	"github.com/tidwall/gjson"

	"github.com/phantom-token/envoy-phantom-token/internal/dpop"
	"github.com/phantom-token/envoy-phantom-token/internal/jsonlimit"
)

// The RSA key of RFC 7638 §3.1.
const rfc7638N = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"

func TestThumbprint(t *testing.T) {
	tests := []struct {
		name string
		jwk  string
		want string // "" when refused
	}{
		{"RFC 7638 §3.1 RSA example", `{"kty":"RSA","n":"` + rfc7638N + `","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`,
			"NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"},
		{"RFC 7638: member order does not matter", `{"e":"AQAB","kid":"2011-04-29","n":"` + rfc7638N + `","kty":"RSA"}`,
			"NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"},
		{"RFC 7638: whitespace does not matter", "{\n \"kty\" : \"RSA\",\n \"n\": \"" + rfc7638N + "\",\t\"e\":\"AQAB\"\n}",
			"NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"},
		{"RFC 7638 §3.3: escapes are undone", `{"kty":"RSA","n":"` + rfc7638N + `","e":"\u0041QAB"}`,
			"NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"},
		{"RFC 8037 A.3 Ed25519 example", `{"crv":"Ed25519","kty":"OKP","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`,
			"kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"},
		{"RFC 9449 §6.1 EC example (cnf.jkt)", `{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}`,
			"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
		{"private members are not hashed", `{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}`,
			"kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"},
		{"no kty", `{"n":"` + rfc7638N + `","e":"AQAB"}`, ""},
		{"kty oct", `{"kty":"oct","k":"c2VjcmV0"}`, ""},
		{"kty in lower case", `{"kty":"rsa","n":"` + rfc7638N + `","e":"AQAB"}`, ""},
		{"kty a number", `{"kty":1}`, ""},
		{"a required member missing", `{"kty":"EC","crv":"P-256","x":"AA"}`, ""},
		{"a required member a number", `{"kty":"RSA","n":"` + rfc7638N + `","e":65537}`, ""},
		{"a required member empty", `{"kty":"RSA","n":"","e":"AQAB"}`, ""},
		{"a required member with a quote", `{"kty":"RSA","n":"a\"b","e":"AQAB"}`, ""},
		{"a required member with a control character", `{"kty":"RSA","n":"a\nb","e":"AQAB"}`, ""},
		{"a required member twice", `{"kty":"RSA","n":"` + rfc7638N + `","e":"AQAB","e":"AQAC"}`, ""},
		{"not an object", `["kty","RSA"]`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dpop.Thumbprint(gjson.Parse(tt.jwk))
			if tt.want == "" {
				if err == nil {
					t.Fatalf("Thumbprint = %q, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Thumbprint = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestNormalizeURI(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // "" when refused
	}{
		{"already normal", "https://api.example.com/orders/42", "https://api.example.com/orders/42"},
		{"scheme in upper case", "HTTPS://api.example.com/a", "https://api.example.com/a"},
		{"host in upper case", "https://API.Example.COM/a", "https://api.example.com/a"},
		{"path case kept", "https://a.example/A/b", "https://a.example/A/b"},
		{"empty path", "https://a.example", "https://a.example/"},
		{"empty path with a query", "https://a.example?x", "https://a.example/"},
		{"query dropped", "https://a.example/p?q=1", "https://a.example/p"},
		{"fragment dropped", "https://a.example/p#f", "https://a.example/p"},
		{"https default port dropped", "https://a.example:443/p", "https://a.example/p"},
		{"http default port dropped", "http://a.example:80/p", "http://a.example/p"},
		{"empty port dropped", "https://a.example:/p", "https://a.example/p"},
		{"port with leading zeros", "https://a.example:0443/p", "https://a.example/p"},
		{"other port kept", "https://a.example:8443/p", "https://a.example:8443/p"},
		{"port 80 kept for https", "https://a.example:80/p", "https://a.example:80/p"},
		{"port out of range", "https://a.example:65536/p", ""},
		{"port not digits", "https://a.example:x/p", ""},
		{"IPv4 host", "http://127.0.0.1:8080/p", "http://127.0.0.1:8080/p"},
		{"IPv6 literal", "https://[2001:DB8::1]:443/p", "https://[2001:db8::1]/p"},
		{"IPv6 literal with a port", "https://[::1]:8443/p", "https://[::1]:8443/p"},
		{"IPv6 literal with a zone", "https://[fe80::1%25eth0]/p", ""},
		{"IPv6 literal unclosed", "https://[::1/p", ""},
		{"IPv6 literal empty", "https://[]/p", ""},
		{"text after an IPv6 literal", "https://[::1]x/p", ""},
		{"percent-encoding hex in upper case", "https://a.example/a%2fb", "https://a.example/a%2Fb"},
		{"encoded unreserved characters decoded", "https://a.example/%41%7e%2D%5f%2e", "https://a.example/A~-_."},
		{"encoded reserved characters kept", "https://a.example/%3F%23%25", "https://a.example/%3F%23%25"},
		{"bytes a path may not hold encoded", "https://a.example/a b\"c", "https://a.example/a%20b%22c"},
		{"non-ASCII encoded", "https://a.example/\xc3\xa9", "https://a.example/%C3%A9"},
		{"broken percent-encoding", "https://a.example/%zz", ""},
		{"truncated percent-encoding", "https://a.example/%4", ""},
		{"dot segments", "https://a.example/a/./b/../c", "https://a.example/a/c"},
		{"trailing dot-dot", "https://a.example/a/b/..", "https://a.example/a/"},
		{"trailing dot", "https://a.example/a/.", "https://a.example/a/"},
		{"dot-dot above the root", "https://a.example/../../a", "https://a.example/a"},
		{"encoded dot segments", "https://a.example/a/%2E%2e/b", "https://a.example/b"},
		{"dots inside a segment kept", "https://a.example/a..b/.c", "https://a.example/a..b/.c"},
		{"empty segments kept", "https://a.example//a//b", "https://a.example//a//b"},
		{"sub-delims, colon and at in the path", "https://a.example/!$&'()*+,;=:@", "https://a.example/!$&'()*+,;=:@"},
		{"scheme ftp", "ftp://a.example/p", ""},
		{"no authority", "https:/a.example/p", ""},
		{"empty host", "https:///p", ""},
		{"empty host with a port", "https://:443/p", ""},
		{"userinfo", "https://u:p@a.example/p", ""},
		{"percent-encoded host", "https://%61.example/p", ""},
		{"relative", "/p", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := dpop.NormalizeURI(tt.in)
			if ok != (tt.want != "") || got != tt.want {
				t.Fatalf("dpop.NormalizeURI(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
			}
			if ok {
				if again, _ := dpop.NormalizeURI(got); again != got {
					t.Errorf("not idempotent: %q becomes %q", got, again)
				}
			}
		})
	}
}

func mustObject(t testing.TB, s string) gjson.Result {
	t.Helper()
	o, err := jsonlimit.Object(s)
	if err != nil {
		t.Fatalf("%v: %.60s", err, s)
	}
	return o
}
