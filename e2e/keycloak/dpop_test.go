package keycloak

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
)

// Challenges of the filter's DPoP answers (docs/sender-constrained.md), with
// the default dpop_algs.
const (
	bearerChallenge = `Bearer realm="api"`
	dpopChallenge   = `DPoP realm="api", algs="ES256 PS256 RS256 EdDSA"`
	invalidProof    = dpopChallenge + `, error="invalid_dpop_proof"`
	useNonce        = dpopChallenge + `, error="use_dpop_nonce"`
)

// dpopKey makes a client key.
func dpopKey(t *testing.T) *fixtures.DPoPKey {
	t.Helper()
	k, err := fixtures.NewDPoPKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// dpopToken gets a DPoP-bound token for key from Keycloak (client
// credentials with a proof at the token endpoint).
func dpopToken(t *testing.T, key *fixtures.DPoPKey) string {
	t.Helper()
	tok, err := suite.keycloak.ClientCredentialsDPoP(ctx(t), dpopAppClient, key)
	if err != nil {
		t.Fatal(err)
	}
	remember(tok)
	return tok
}

// resourceURL is a fresh URL on a scenario's listener, with a path of its
// own (so that the upstream requests it caused can be told apart) and a
// query, which htu leaves out.
func resourceURL(t *testing.T, scenario string) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return suite.envoy.URL(scenario) + "/" + hex.EncodeToString(b) + "/" +
		url.PathEscape(strings.ReplaceAll(t.Name(), "/", ".")) + "?page=2"
}

// proof makes key's proof for a request.
func proof(t *testing.T, key *fixtures.DPoPKey, r fixtures.DPoPRequest) string {
	t.Helper()
	p, err := key.Proof(r)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// send sends method to u with Authorization: <auth> and, unless empty, a
// DPoP header. Its result's upstream holds the upstream requests this one
// added on u's path.
func send(t *testing.T, method, u, auth, dpopProof string) result {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", auth)
	if dpopProof != "" {
		req.Header.Set("DPoP", dpopProof)
	}
	before := len(suite.echo.Requests(req.URL.Path))
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, req.URL.Path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{status: res.StatusCode, header: res.Header, body: string(body), upstream: suite.echo.Requests(req.URL.Path)[before:]}
}

// expectRefused checks a 401 with exactly the given challenges, in order,
// and that the upstream saw nothing.
func expectRefused(t *testing.T, r result, challenges ...string) {
	t.Helper()
	if r.status != http.StatusUnauthorized || r.body != body401 || len(r.upstream) != 0 {
		t.Errorf("%v; want status 401, no upstream request, body %q", r, body401)
	}
	if got := r.header.Values("WWW-Authenticate"); strings.Join(got, "\n") != strings.Join(challenges, "\n") {
		t.Errorf("WWW-Authenticate %q, want %q", got, challenges)
	}
}

// expectAdmitted checks that the request reached the upstream once, as
// Authorization: Bearer <the full token> bound to key and without a DPoP
// header, and returns the JWT.
func expectAdmitted(t *testing.T, r result, key *fixtures.DPoPKey) string {
	t.Helper()
	jwt := upstreamJWT(t, r)
	if n := len(r.upstream[0].Header.Values("DPoP")); n != 0 {
		t.Errorf("the upstream got %d DPoP headers, want none", n)
	}
	full, err := suite.keycloak.VerifyJWT(ctx(t), jwt)
	if err != nil {
		t.Fatalf("the upstream's JWT: %v", err)
	}
	if got := jkt(full); got != key.Thumbprint {
		t.Errorf("the upstream's JWT has cnf.jkt %q, want the key's thumbprint %q", got, key.Thumbprint)
	}
	if full["azp"] != dpopAppClient {
		t.Errorf("the upstream's JWT has azp %v, want %s", full["azp"], dpopAppClient)
	}
	return jwt
}

// refusals counts the filter's debug lines in Envoy's log that refuse a
// request for reason (a part of the line).
func refusals(t *testing.T, reason string) int {
	t.Helper()
	log, err := suite.envoy.Log()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "phantom-token: token ") && strings.Contains(line, reason) && strings.HasSuffix(line, ": answering 401") {
			n++
		}
	}
	return n
}

// expectReason checks that one more request was refused for reason than
// before, so that a row's 401 is the one it is about (all
// invalid_dpop_proof answers look alike). Envoy writes its log as it goes;
// the check waits up to 2 s for the line.
func expectReason(t *testing.T, reason string, before int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		n := refusals(t, reason)
		if n == before+1 {
			return
		}
		if n > before+1 || time.Now().After(deadline) {
			t.Errorf("%d log lines refusing a request for %q, want %d", n, reason, before+1)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// jkt is the cnf.jkt of claims, or "".
func jkt(claims map[string]any) string {
	cnf, _ := claims["cnf"].(map[string]any)
	s, _ := cnf["jkt"].(string)
	return s
}

// TestKeycloakDPoPAnswers pins what Keycloak gives for a DPoP-bound token,
// asked directly: token_type DPoP (ClientCredentialsDPoP checks it); cnf.jkt,
// the RFC 7638 thumbprint of the client's key as the fixture computes it, in
// the lightweight token and in the full token of the introspection answer,
// so that the filter caches the answer; and the same cnf beside that JWT
// (with Keycloak's own kc-jkt-type member), which the filter reads too. A
// token request without a proof is refused: dpop.bound.access.tokens is the
// attribute's name.
func TestKeycloakDPoPAnswers(t *testing.T) {
	if _, err := suite.keycloak.ClientCredentials(ctx(t), dpopAppClient); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("a token request without a proof: %v, want status 400 (is dpop.bound.access.tokens set?)", err)
	} else {
		t.Logf("a token request without a proof: %v", err)
	}
	key := dpopKey(t)
	tok := dpopToken(t, key)
	if got := jkt(claims(t, tok)); got != key.Thumbprint {
		t.Errorf("the lightweight token's cnf.jkt is %q, want %q", got, key.Thumbprint)
	}

	answer, _ := introspectDirect(t, tok)
	if answer["active"] != true {
		t.Fatalf("active = %v, want true", answer["active"])
	}
	jwt, _ := answer["jwt"].(string)
	if strings.Count(jwt, ".") != 2 {
		t.Fatal(`the answer has no JWT in "jwt"`)
	}
	if got := jkt(claims(t, jwt)); got != key.Thumbprint {
		t.Errorf("the full token's cnf.jkt is %q, want %q", got, key.Thumbprint)
	}
	if got := jkt(answer); got != key.Thumbprint {
		t.Errorf("the answer's cnf.jkt (beside the JWT) is %q, want %q", got, key.Thumbprint)
	}
}

// TestKeycloakDPoP: a Keycloak DPoP-bound token is admitted with a proof made
// for the request, and refused without one, with a proof for another
// request, or with a proof by another key. A refused proof costs no
// introspection.
func TestKeycloakDPoP(t *testing.T) {
	key, other := dpopKey(t), dpopKey(t)

	t.Run("a valid proof", func(t *testing.T) {
		tok := dpopToken(t, key)
		u := resourceURL(t, scDPoP)
		p := proof(t, key, fixtures.DPoPRequest{Method: http.MethodGet, URL: u, Token: tok})
		before := introspections(t, scDPoP)
		expectAdmitted(t, send(t, http.MethodGet, u, "DPoP "+tok, p), key)

		// Another request with a new proof: the cached answer, the proof and
		// the binding checked again.
		u2 := resourceURL(t, scDPoP)
		expectAdmitted(t, send(t, http.MethodGet, u2, "DPoP "+tok,
			proof(t, key, fixtures.DPoPRequest{Method: http.MethodGet, URL: u2, Token: tok})), key)
		if n := introspections(t, scDPoP) - before; n != 1 {
			t.Errorf("%d introspections for 2 requests, want 1 (cache_ignore_cache_control; the binding is in the JWT)", n)
		}

		// The first request again, proof and all: replayed.
		logged := refusals(t, "replayed")
		expectRefused(t, send(t, http.MethodGet, u, "DPoP "+tok, p), bearerChallenge, invalidProof)
		expectReason(t, "replayed", logged)
	})

	// Each row has a fresh token and URL.
	rows := []struct {
		name string
		// request returns the scheme and the DPoP header ("" for none) for a
		// GET of u with tok.
		request     func(t *testing.T, u, tok string) (scheme, dpopProof string)
		challenges  []string
		introspects int
		reason      string // in the filter's debug line
	}{
		{"no proof", func(t *testing.T, u, tok string) (string, string) {
			return "DPoP", ""
		}, []string{bearerChallenge, invalidProof}, 0, "not exactly one DPoP header"},
		{"another htu: path", func(t *testing.T, u, tok string) (string, string) {
			return "DPoP", proof(t, key, fixtures.DPoPRequest{Method: http.MethodGet, URL: strings.Replace(u, "?", "x?", 1), Token: tok})
		}, []string{bearerChallenge, invalidProof}, 0, "proof htu"},
		{"another htu: https", func(t *testing.T, u, tok string) (string, string) {
			return "DPoP", proof(t, key, fixtures.DPoPRequest{Method: http.MethodGet, URL: "https" + strings.TrimPrefix(u, "http"), Token: tok})
		}, []string{bearerChallenge, invalidProof}, 0, "proof htu"},
		{"another htu: host", func(t *testing.T, u, tok string) (string, string) {
			return "DPoP", proof(t, key, fixtures.DPoPRequest{Method: http.MethodGet, URL: strings.Replace(u, "127.0.0.1", "localhost", 1), Token: tok})
		}, []string{bearerChallenge, invalidProof}, 0, "proof htu"},
		{"another htm", func(t *testing.T, u, tok string) (string, string) {
			return "DPoP", proof(t, key, fixtures.DPoPRequest{Method: http.MethodPost, URL: u, Token: tok})
		}, []string{bearerChallenge, invalidProof}, 0, "proof htm"},
		{"iat 5 minutes old", func(t *testing.T, u, tok string) (string, string) {
			return "DPoP", proof(t, key, fixtures.DPoPRequest{Method: http.MethodGet, URL: u, Token: tok, IssuedAt: time.Now().Add(-5 * time.Minute)})
		}, []string{bearerChallenge, invalidProof}, 0, "proof iat"},
		{"ath of another token", func(t *testing.T, u, tok string) (string, string) {
			return "DPoP", proof(t, key, fixtures.DPoPRequest{Method: http.MethodGet, URL: u, Token: dpopToken(t, key)})
		}, []string{bearerChallenge, invalidProof}, 0, "proof ath"},
		{"a proof by another key", func(t *testing.T, u, tok string) (string, string) {
			return "DPoP", proof(t, other, fixtures.DPoPRequest{Method: http.MethodGet, URL: u, Token: tok})
		}, []string{bearerChallenge, dpopChallenge + `, error="invalid_token"`}, 1, "bound to another DPoP key"},
		{"the bound token as Bearer", func(t *testing.T, u, tok string) (string, string) {
			return "Bearer", ""
		}, []string{challenge401, dpopChallenge}, 1, "came as a Bearer token"},
		{"the bound token as Bearer, with a valid proof", func(t *testing.T, u, tok string) (string, string) {
			return "Bearer", proof(t, key, fixtures.DPoPRequest{Method: http.MethodGet, URL: u, Token: tok})
		}, []string{challenge401, dpopChallenge}, 1, "came as a Bearer token"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			tok := dpopToken(t, key)
			u := resourceURL(t, scDPoP)
			scheme, p := row.request(t, u, tok)
			before, logged := introspections(t, scDPoP), refusals(t, row.reason)
			expectRefused(t, send(t, http.MethodGet, u, scheme+" "+tok, p), row.challenges...)
			expectReason(t, row.reason, logged)
			if n := introspections(t, scDPoP) - before; n != row.introspects {
				t.Errorf("%d introspections, want %d", n, row.introspects)
			}
		})
	}
}

// TestKeycloakDPoPNonce: with dpop required and dpop_nonce, a proof without
// the server's nonce gets 401 use_dpop_nonce and a DPoP-Nonce header; the
// retry with that nonce is admitted, and so is a later proof with it.
func TestKeycloakDPoPNonce(t *testing.T) {
	key := dpopKey(t)
	tok := dpopToken(t, key)

	u := resourceURL(t, scNonce)
	logged := refusals(t, "without a current nonce")
	r := send(t, http.MethodGet, u, "DPoP "+tok, proof(t, key, fixtures.DPoPRequest{Method: http.MethodGet, URL: u, Token: tok}))
	expectRefused(t, r, useNonce)
	expectReason(t, "without a current nonce", logged)
	nonce := r.header.Values("DPoP-Nonce")
	if len(nonce) != 1 || nonce[0] == "" {
		t.Fatalf("%d DPoP-Nonce headers (or an empty one), want 1", len(nonce))
	}

	expectAdmitted(t, send(t, http.MethodGet, u, "DPoP "+tok,
		proof(t, key, fixtures.DPoPRequest{Method: http.MethodGet, URL: u, Token: tok, Nonce: nonce[0]})), key)

	u2 := resourceURL(t, scNonce)
	expectAdmitted(t, send(t, http.MethodGet, u2, "DPoP "+tok,
		proof(t, key, fixtures.DPoPRequest{Method: http.MethodGet, URL: u2, Token: tok, Nonce: nonce[0]})), key)

	u3 := resourceURL(t, scNonce)
	logged = refusals(t, "without a current nonce")
	expectRefused(t, send(t, http.MethodGet, u3, "DPoP "+tok,
		proof(t, key, fixtures.DPoPRequest{Method: http.MethodGet, URL: u3, Token: tok, Nonce: "not-a-nonce-of-this-proxy"})), useNonce)
	expectReason(t, "without a current nonce", logged)

	// dpop required: a Bearer token, bound or not, is another scheme.
	expectRefused(t, send(t, http.MethodGet, resourceURL(t, scNonce), "Bearer "+token(t, appClient), ""), dpopChallenge)
}
