package reply

import (
	"reflect"
	"testing"

	"github.com/phantom-token/envoy-phantom-token/internal/bearer"
	"github.com/phantom-token/envoy-phantom-token/internal/config"
)

func cfg(t *testing.T, extra string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(`{"introspection_url":"http://i/x","cluster":"c","client_id":"i","client_secret":"s"`+extra+`}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const (
	unauthorized = `{"code":"unauthorized_request","message":"Access denied due to missing, invalid or expired credentials"}`
	serverError  = `{"code":"server_error","message":"Problem encountered processing the request"}`
)

func TestNew(t *testing.T) {
	plain := cfg(t, "")
	scoped := cfg(t, `,"realm":"orders","scopes":"read write"`)
	enforced := cfg(t, `,"required_scopes":["orders:read","orders:write"]`)
	both := cfg(t, `,"scopes":"openid","required_scopes":"orders:read"`)
	tests := []struct {
		name      string
		c         *config.Config
		kind      Kind
		status    uint32
		challenge string
		body      string
	}{
		{"no token", plain, NoToken, 401, `Bearer realm="api"`, unauthorized},
		{"invalid token", plain, InvalidToken, 401, `Bearer realm="api", error="invalid_token"`, unauthorized},
		{"no token, realm and scopes", scoped, NoToken, 401, `Bearer realm="orders", scope="read write"`, unauthorized},
		{"invalid token, realm and scopes", scoped, InvalidToken, 401, `Bearer realm="orders", scope="read write", error="invalid_token"`, unauthorized},
		{"required scopes advertised when none are", enforced, NoToken, 401, `Bearer realm="api", scope="orders:read orders:write"`, unauthorized},
		{"insufficient scope names the required ones", both, InsufficientScope, 403, `Bearer realm="api", scope="orders:read", error="insufficient_scope"`, `{"code":"forbidden","message":"Access denied due to insufficient scope"}`},
		{"invalid request", plain, InvalidRequest, 400, `Bearer realm="api", error="invalid_request"`, `{"code":"invalid_request","message":"The request is malformed"}`},
		{"server error", plain, ServerError, 500, "", serverError},
		{"bad gateway", plain, BadGateway, 502, "", serverError},
		{"unavailable", plain, Unavailable, 503, "", serverError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := [][2]string{{"content-type", "application/json"}}
			if tt.challenge != "" {
				want = append([][2]string{{"www-authenticate", tt.challenge}}, want...)
			}
			r := New(tt.kind, tt.c, false)
			if r.Status != tt.status || string(r.Body) != tt.body || !reflect.DeepEqual(r.Headers, want) {
				t.Errorf("got %d %q %q\nwant %d %q %q", r.Status, r.Headers, r.Body, tt.status, want, tt.body)
			}
			head := New(tt.kind, tt.c, true)
			if head.Status != tt.status || head.Body != nil || !reflect.DeepEqual(head.Headers, want) {
				t.Errorf("HEAD: got %d %q %q", head.Status, head.Headers, head.Body)
			}
		})
	}
}

func TestDPoPChallenges(t *testing.T) {
	allowed := cfg(t, `,"dpop":"allowed","dpop_algs":"ES256 RS384"`)
	required := cfg(t, `,"dpop":"required","required_scopes":"a"`)
	const (
		bearerPlain = `Bearer realm="api"`
		dpopPlain   = `DPoP realm="api", algs="ES256 RS384"`
	)
	tests := []struct {
		name       string
		c          *config.Config
		kind       Kind
		scheme     bearer.Scheme
		challenges []string
	}{
		{"allowed, no token: both, no error", allowed, NoToken, bearer.Bearer, []string{bearerPlain, dpopPlain}},
		{"allowed, invalid Bearer token", allowed, InvalidToken, bearer.Bearer, []string{bearerPlain + `, error="invalid_token"`, dpopPlain}},
		{"allowed, invalid DPoP token", allowed, InvalidToken, bearer.DPoP, []string{bearerPlain, dpopPlain + `, error="invalid_token"`}},
		{"allowed, invalid proof", allowed, InvalidDPoPProof, bearer.DPoP, []string{bearerPlain, dpopPlain + `, error="invalid_dpop_proof"`}},
		{"allowed, nonce", allowed, UseDPoPNonce, bearer.DPoP, []string{bearerPlain, dpopPlain + `, error="use_dpop_nonce"`}},
		{"required: DPoP alone", required, NoToken, bearer.Bearer, []string{`DPoP realm="api", scope="a", algs="ES256 PS256 RS256 EdDSA"`}},
		{"required, insufficient scope", required, InsufficientScope, bearer.DPoP, []string{`DPoP realm="api", scope="a", algs="ES256 PS256 RS256 EdDSA", error="insufficient_scope"`}},
		{"required, a Bearer token: no error on a scheme not offered", required, InvalidToken, bearer.Bearer, []string{`DPoP realm="api", scope="a", algs="ES256 PS256 RS256 EdDSA"`}},
		{"off: Bearer alone", cfg(t, ""), InvalidToken, bearer.Bearer, []string{bearerPlain + `, error="invalid_token"`}},
		{"server error: none", allowed, ServerError, bearer.DPoP, nil},
	}
	for _, tt := range tests {
		r := For(tt.kind, tt.c, false, tt.scheme, "n0nce")
		var got []string
		nonce := ""
		for _, h := range r.Headers {
			switch h[0] {
			case "www-authenticate":
				got = append(got, h[1])
			case "dpop-nonce":
				nonce = h[1]
			}
		}
		if !reflect.DeepEqual(got, tt.challenges) {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.challenges)
		}
		if (nonce != "") != (tt.kind == UseDPoPNonce) {
			t.Errorf("%s: DPoP-Nonce %q", tt.name, nonce)
		}
	}
}
