package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
	"github.com/tidwall/gjson"

	"github.com/phantom-token/envoy-phantom-token/internal/dpop"
)

// dpopKey is a client's key for one alg (ES256, PS256, RS256 or EdDSA), its
// public JWK and thumbprint.
type dpopKey struct {
	alg  string
	priv crypto.Signer
	jwk  string
	jkt  string
}

// newDPoPKey makes an ES256 key.
func newDPoPKey(t *testing.T) dpopKey { return newDPoPKeyFor(t, "ES256") }

func newDPoPKeyFor(t *testing.T, alg string) dpopKey {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	switch alg {
	case "ES256":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return dpopKeyOf(k)
	case "PS256", "RS256":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		return withThumbprint(alg, k, `{"kty":"RSA","n":"`+enc(k.N.Bytes())+`","e":"`+enc(big.NewInt(int64(k.E)).Bytes())+`"}`)
	case "EdDSA":
		pub, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return withThumbprint(alg, k, `{"kty":"OKP","crv":"Ed25519","x":"`+enc(pub)+`"}`)
	}
	t.Fatalf("no test key for %s", alg)
	return dpopKey{}
}

// dpopKeyOf is the ES256 dpopKey of k.
func dpopKeyOf(k *ecdsa.PrivateKey) dpopKey {
	p, err := k.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		panic(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return withThumbprint("ES256", k, `{"kty":"EC","crv":"P-256","x":"`+enc(p[1:33])+`","y":"`+enc(p[33:])+`"}`)
}

func withThumbprint(alg string, priv crypto.Signer, jwk string) dpopKey {
	jkt, err := dpop.Thumbprint(gjson.Parse(jwk))
	if err != nil {
		panic(err)
	}
	return dpopKey{alg, priv, jwk, jkt}
}

// sign returns the JWS signature of input by k.
func (k dpopKey) sign(t *testing.T, input string) []byte {
	t.Helper()
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	var err error
	switch priv := k.priv.(type) {
	case *ecdsa.PrivateKey:
		var r, s *big.Int
		if r, s, err = ecdsa.Sign(rand.Reader, priv, digest[:]); err == nil {
			sig = make([]byte, 64)
			r.FillBytes(sig[:32])
			s.FillBytes(sig[32:])
		}
	case *rsa.PrivateKey:
		if k.alg == "PS256" {
			sig, err = rsa.SignPSS(rand.Reader, priv, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			sig, err = rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, digest[:])
		}
	case ed25519.PrivateKey:
		sig = ed25519.Sign(priv, []byte(input))
	}
	if err != nil {
		t.Fatal(err)
	}
	return sig
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
	input := enc([]byte(`{"typ":"dpop+jwt","alg":"`+k.alg+`","jwk":`+k.jwk+`}`)) + "." + enc([]byte(payload+"}"))
	return input + "." + enc(k.sign(t, input))
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
	dpopChallenge  = `DPoP realm="api", algs="ES256 PS256 RS256 EdDSA"`
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

// TestDPoPAlgorithms: a proof of each default alg is verified where the
// filter verifies it (ES256 and RS256 by verify_signature, PS256 and EdDSA in
// the module) and admitted; the same proof with the signature of another key
// of the alg is refused.
func TestDPoPAlgorithms(t *testing.T) {
	goMode(t, func(t *testing.T, m mode) {
		h := started(t, m, withConfig(`,"dpop":"allowed"`))
		for _, alg := range []string{"ES256", "PS256", "RS256", "EdDSA"} {
			t.Run(alg, func(t *testing.T) {
				key, other := newDPoPKeyFor(t, alg), newDPoPKeyFor(t, alg)
				tok := token + "-" + alg
				good := key.proof(t, tok, proofOpts{})
				e := h.request(dpopReq(tok, good)...)
				if len(e.callouts()) != 1 {
					t.Fatalf("%d calls, reply %+v", len(e.callouts()), e.local())
				}
				e.answer(idsOK(""), phantomJWT(`"cnf":{"jkt":"`+key.jkt+`"}`))
				if e.finalAction() != types.ActionContinue || e.local() != nil {
					t.Fatalf("not forwarded: %+v", e.local())
				}
				fresh := key.proof(t, tok, proofOpts{})
				dot := strings.LastIndexByte(fresh, '.')
				forged := fresh[:dot] + "." + base64.RawURLEncoding.EncodeToString(other.sign(t, fresh[:dot]))
				e = h.request(dpopReq(tok, forged)...)
				wantChallenges(t, e, bearerNoError, invalidProofCh)
				if len(e.callouts()) != 0 {
					t.Error("a forged proof caused a call")
				}
			})
		}
	})
}

func goMode(t *testing.T, f func(t *testing.T, m mode)) { f(t, modes[0]) }

// The compiled module parses a proof and has its signature verified (ES256
// and RS256 by the host's verify_signature, PS256 and EdDSA by its own code):
// a proof signed by its key gets as far as the iat check (the emulator's
// clock for the module is far in the past), one with a signature of another
// key does not.
func TestDPoPInTheModule(t *testing.T) {
	h := started(t, modes[1], withConfig(`,"dpop":"allowed"`))
	for _, alg := range []string{"ES256", "PS256", "RS256", "EdDSA"} {
		key, other := newDPoPKeyFor(t, alg), newDPoPKeyFor(t, alg)
		good := key.proof(t, token, proofOpts{})
		dot := strings.LastIndexByte(good, '.')
		forged := good[:dot] + "." + base64.RawURLEncoding.EncodeToString(other.sign(t, good[:dot]))
		for _, p := range []string{good, forged} {
			wantChallenges(t, h.request(dpopReq(token, p)...), bearerNoError, invalidProofCh)
		}
	}
	var reasons []string
	for _, line := range h.allLogs() {
		if i := strings.Index(line, "DPoP proof: "); i >= 0 {
			reasons = append(reasons, line[i:])
		}
	}
	if len(reasons) != 8 {
		t.Fatalf("reasons %q", reasons)
	}
	for i := 0; i < len(reasons); i += 2 {
		if !strings.Contains(reasons[i], "iat") || !strings.Contains(reasons[i+1], "signature") {
			t.Errorf("reasons %q", reasons[i:i+2])
		}
	}
}

// TestHitBeforeParsing: the worker's copy of the cache is keyed by the
// Authorization value, and a Bearer value it holds is served before it is
// parsed (serveHit). What could go wrong there does not: another spelling of
// a cached token is looked up again (from the shared table: no call), and a
// value the copy holds as a DPoP token, on a route with DPoP, is another
// scheme on a route without it, as it would be uncached.
func TestHitBeforeParsing(t *testing.T) {
	goMode(t, func(t *testing.T, m mode) {
		h := started(t, m, withConfig(`,"dpop":"allowed","routes":[{"route":"plain","dpop":"off"}]`))
		key := newDPoPKey(t)
		jwt := phantomJWT("")

		h.onRoute("plain")
		sent := req(authBearer(token))
		e := h.request(sent...)
		e.answer(idsOK("max-age=120"), jwt)
		wantForwarded(t, e, sent, "authorization", "Bearer "+jwt)
		for _, v := range []string{"Bearer " + token, "bearer \t" + token + " ", "BEARER " + token} {
			e := h.request([2]string{"authorization", v})
			if len(e.callouts()) != 0 || e.finalAction() != types.ActionContinue {
				t.Errorf("%q: %d calls, %v", v, len(e.callouts()), e.local())
			}
			if got := header(e.upstreamHeaders(), "authorization"); len(got) != 1 || got[0] != "Bearer "+jwt {
				t.Errorf("%q: upstream authorization %q", v, got)
			}
		}
		for _, v := range []string{"Bearer " + token + "x", "Bearer " + token + ",Bearer " + token, "Bearer " + token + "&"} {
			if e := h.request([2]string{"authorization", v}); e.finalAction() == types.ActionContinue && e.local() == nil && len(e.callouts()) == 0 {
				t.Errorf("%q was served from another value's entry", v)
			}
		}

		// An unbound token cached from its DPoP value on a route with DPoP
		// (refused there: the DPoP scheme needs a bound token).
		h.onRoute("dpop")
		dpopToken := token + "-dpop"
		e = h.request(dpopReq(dpopToken, key.proof(t, dpopToken, proofOpts{}))...)
		e.answer(idsOK("max-age=120"), jwt)
		wantChallenges(t, e, bearerNoError, dpopChallenge+`, error="invalid_token"`)
		// The same value on the route without DPoP: another scheme, no token.
		h.onRoute("plain")
		e = h.request(dpopReq(dpopToken, key.proof(t, dpopToken, proofOpts{}))...)
		if e.local() == nil || e.local().StatusCode != 401 || len(e.callouts()) != 0 {
			t.Fatalf("DPoP value on a route without DPoP: %+v, %d calls; want 401 and none", e.local(), len(e.callouts()))
		}
		if ch := header(e.local().Headers, "www-authenticate"); len(ch) != 1 || strings.Contains(ch[0], "error=") {
			t.Errorf("DPoP value on a route without DPoP: challenge %q, want one without an error (no Bearer token)", ch)
		}
	})
}
