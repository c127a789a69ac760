package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
	"github.com/tidwall/gjson"

	"github.com/phantom-token/envoy-phantom-token/internal/dpop"
)

// dpopKey is a client's ES256 key, its public JWK and thumbprint.
type dpopKey struct {
	priv *ecdsa.PrivateKey
	jwk  string
	jkt  string
}

func newDPoPKey(t *testing.T) dpopKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return dpopKeyOf(k)
}

func dpopKeyOf(k *ecdsa.PrivateKey) dpopKey {
	p, err := k.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		panic(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	jwk := `{"kty":"EC","crv":"P-256","x":"` + enc(p[1:33]) + `","y":"` + enc(p[33:]) + `"}`
	jkt, err := dpop.Thumbprint(gjson.Parse(jwk))
	if err != nil {
		panic(err)
	}
	return dpopKey{k, jwk, jkt}
}

// proofOpts are a proof's claims; zero values take the request's.
type proofOpts struct {
	htm, htu, jti, nonce, ath string
	iat                       time.Time
}

var proofCount int

// proof signs a DPoP proof for a GET of https://api.example.com/api/orders
// with token (see dpopReq), changed by o.
func (k dpopKey) proof(t *testing.T, token string, o proofOpts) string {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	if o.htm == "" {
		o.htm = "GET"
	}
	if o.htu == "" {
		o.htu = "https://api.example.com/api/orders"
	}
	if o.jti == "" {
		proofCount++
		o.jti = "jti-" + strconv.Itoa(proofCount)
	}
	if o.iat.IsZero() {
		o.iat = time.Now()
	}
	if o.ath == "" {
		o.ath = dpop.TokenHash(token)
	}
	payload := `{"jti":"` + o.jti + `","htm":"` + o.htm + `","htu":"` + o.htu + `","iat":` + strconv.FormatInt(o.iat.Unix(), 10) + `,"ath":"` + o.ath + `"`
	if o.nonce != "" {
		payload += `,"nonce":"` + o.nonce + `"`
	}
	input := enc([]byte(`{"typ":"dpop+jwt","alg":"ES256","jwk":`+k.jwk+`}`)) + "." + enc([]byte(payload+"}"))
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, k.priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + enc(sig)
}

// dpopReq is a request with a DPoP token and its proofs.
func dpopReq(tok string, proofs ...string) [][2]string {
	h := [][2]string{{":method", "GET"}, {":scheme", "https"}, {":path", "/api/orders?page=2"}, {":authority", "api.example.com"},
		{"authorization", "DPoP " + tok}}
	for _, p := range proofs {
		h = append(h, [2]string{"dpop", p})
	}
	return h
}

const (
	dpopChallenge  = `DPoP realm="api", algs="ES256 RS256"`
	bearerNoError  = `Bearer realm="api"`
	invalidProofCh = dpopChallenge + `, error="invalid_dpop_proof"`
)

// wantChallenges checks a 401's status and WWW-Authenticate headers.
func wantChallenges(t *testing.T, e *exchange, want ...string) {
	t.Helper()
	r := e.local()
	if r == nil {
		t.Fatalf("no local reply; want 401 %q", want)
	}
	got := header(r.Headers, "www-authenticate")
	if r.StatusCode != 401 || strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("reply %d %q, want 401 %q", r.StatusCode, got, want)
	}
}

// The DPoP tests run in Go mode: proxytest gives the compiled module a clock
// far in the past, and a proof's iat must be near now.
// TestDPoPInTheModule checks what the module itself does with a proof.
func TestDPoP(t *testing.T) {
	goMode(t, func(t *testing.T, m mode) {
		h := started(t, m, withConfig(`,"dpop":"allowed"`))
		key, other := newDPoPKey(t), newDPoPKey(t)
		jwt := phantomJWT(`"cnf":{"jkt":"` + key.jkt + `"}`)

		// A valid proof: the API gets the JWT, and no DPoP header.
		sent := dpopReq(token, key.proof(t, token, proofOpts{}))
		e := h.request(sent...)
		if len(e.callouts()) != 1 {
			t.Fatalf("%d calls", len(e.callouts()))
		}
		e.answer(idsOK(""), jwt)
		if e.finalAction() != types.ActionContinue || e.local() != nil {
			t.Fatalf("not forwarded: %+v", e.local())
		}
		if got := header(e.upstreamHeaders(), "authorization"); len(got) != 1 || got[0] != "Bearer "+jwt {
			t.Errorf("upstream authorization %q", got)
		}
		if got := header(e.upstreamHeaders(), "dpop"); got != nil {
			t.Errorf("DPoP header forwarded: %d", len(got))
		}
		// A new proof for the cached token: checked again, admitted.
		if e := h.request(dpopReq(token, key.proof(t, token, proofOpts{}))...); e.finalAction() != types.ActionContinue || len(e.callouts()) != 0 {
			t.Errorf("cache hit with a new proof: %v, %d calls", e.local(), len(e.callouts()))
		}
		// The same proof again: replayed.
		e = h.request(sent...)
		wantChallenges(t, e, bearerNoError, invalidProofCh)
		if len(e.callouts()) != 0 {
			t.Error("a replayed proof caused a call")
		}

		bad := []struct {
			name    string
			headers [][2]string
			want    []string
		}{
			{"no proof", dpopReq(token), []string{bearerNoError, invalidProofCh}},
			{"two proofs", dpopReq(token, key.proof(t, token, proofOpts{}), key.proof(t, token, proofOpts{})), []string{bearerNoError, invalidProofCh}},
			{"not a proof", dpopReq(token, "a.b.c"), []string{bearerNoError, invalidProofCh}},
			{"another method", dpopReq(token, key.proof(t, token, proofOpts{htm: "POST"})), []string{bearerNoError, invalidProofCh}},
			{"another URI", dpopReq(token, key.proof(t, token, proofOpts{htu: "https://api.example.com/api/admin"})), []string{bearerNoError, invalidProofCh}},
			{"another host", dpopReq(token, key.proof(t, token, proofOpts{htu: "https://evil.example.com/api/orders"})), []string{bearerNoError, invalidProofCh}},
			{"stale iat", dpopReq(token, key.proof(t, token, proofOpts{iat: time.Now().Add(-2 * time.Minute)})), []string{bearerNoError, invalidProofCh}},
			{"iat ahead", dpopReq(token, key.proof(t, token, proofOpts{iat: time.Now().Add(2 * time.Minute)})), []string{bearerNoError, invalidProofCh}},
			{"another token's ath", dpopReq(token, key.proof(t, token, proofOpts{ath: dpop.TokenHash("other")})), []string{bearerNoError, invalidProofCh}},
			{"another key's proof", dpopReq(token, other.proof(t, token, proofOpts{})), []string{bearerNoError, dpopChallenge + `, error="invalid_token"`}},
			{"the bound token as Bearer", req(authBearer(token)), []string{bearerNoError + `, error="invalid_token"`, dpopChallenge}},
		}
		for _, b := range bad {
			e := h.request(b.headers...)
			if len(e.callouts()) != 0 {
				t.Errorf("%s: a call", b.name)
			}
			t.Run(b.name, func(t *testing.T) { wantChallenges(t, e, b.want...) })
		}

		// An unbound token with the DPoP scheme.
		e = h.request(dpopReq(token+"-2", key.proof(t, token+"-2", proofOpts{}))...)
		e.answer(idsOK(""), phantomJWT(""))
		wantChallenges(t, e, bearerNoError, dpopChallenge+`, error="invalid_token"`)
	})
}

func TestDPoPModes(t *testing.T) {
	goMode(t, func(t *testing.T, m mode) {
		key := newDPoPKey(t)
		t.Run("off: another scheme", func(t *testing.T) {
			off := started(t, m, withConfig(``))
			wantChallenges(t, off.request(dpopReq(token, key.proof(t, token, proofOpts{}))...), bearerNoError)
		})
		t.Run("required", func(t *testing.T) {
			required := started(t, m, withConfig(`,"dpop":"required","dpop_keep_header":true`))
			wantChallenges(t, required.request(req(authBearer(token))...), dpopChallenge)
			p := key.proof(t, token, proofOpts{})
			e := required.request(dpopReq(token, p)...)
			e.answer(idsOK(""), phantomJWT(`"cnf":{"jkt":"`+key.jkt+`"}`))
			if got := header(e.upstreamHeaders(), "dpop"); len(got) != 1 || got[0] != p {
				t.Errorf("dpop_keep_header: DPoP %d", len(got))
			}
		})
	})
}

func TestDPoPNonce(t *testing.T) {
	goMode(t, func(t *testing.T, m mode) {
		h := started(t, m, withConfig(`,"dpop":"required","dpop_nonce":true`))
		key := newDPoPKey(t)
		e := h.request(dpopReq(token, key.proof(t, token, proofOpts{}))...)
		wantChallenges(t, e, dpopChallenge+`, error="use_dpop_nonce"`)
		nonce := header(e.local().Headers, "dpop-nonce")
		if len(nonce) != 1 || nonce[0] == "" {
			t.Fatalf("DPoP-Nonce %q", nonce)
		}
		wantChallenges(t, h.request(dpopReq(token, key.proof(t, token, proofOpts{nonce: "forged"}))...), dpopChallenge+`, error="use_dpop_nonce"`)
		e = h.request(dpopReq(token, key.proof(t, token, proofOpts{nonce: nonce[0]}))...)
		e.answer(idsOK(""), phantomJWT(`"cnf":{"jkt":"`+key.jkt+`"}`))
		if e.finalAction() != types.ActionContinue {
			t.Errorf("refused with the nonce: %+v", e.local())
		}
	})
}

func goMode(t *testing.T, f func(t *testing.T, m mode)) { f(t, modes[0]) }

// The compiled module parses a proof and has its signature verified by the
// host (verify_signature): a proof signed by its key gets as far as the iat
// check (the emulator's clock for the module is far in the past), one with
// a signature of another key does not.
func TestDPoPInTheModule(t *testing.T) {
	h := started(t, modes[1], withConfig(`,"dpop":"allowed"`))
	key, other := newDPoPKey(t), newDPoPKey(t)
	good := key.proof(t, token, proofOpts{})
	forged := good[:strings.LastIndexByte(good, '.')] + other.proof(t, token, proofOpts{})[strings.LastIndexByte(good, '.'):]
	for _, p := range []string{good, forged} {
		wantChallenges(t, h.request(dpopReq(token, p)...), bearerNoError, invalidProofCh)
	}
	var reasons []string
	for _, line := range h.allLogs() {
		if i := strings.Index(line, "DPoP proof: "); i >= 0 {
			reasons = append(reasons, line[i:])
		}
	}
	if len(reasons) != 2 || !strings.Contains(reasons[0], "iat") || !strings.Contains(reasons[1], "signature") {
		t.Errorf("reasons %q", reasons)
	}
}
