package dpop_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/phantom-token/envoy-phantom-token/internal/dpop"
	"github.com/phantom-token/envoy-phantom-token/internal/dpop/gosig"
	"github.com/phantom-token/envoy-phantom-token/internal/jsonlimit"
)

// fuzzKey is a fixed ES256 key, so that seeds written to testdata/fuzz hold
// its JWK in every run.
func fuzzKey() clientKey {
	d := sha256.Sum256([]byte("dpop fuzz key"))
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		panic(err)
	}
	return clientKey{"ES256", k, ecJWK(k)}
}

// fuzzAlgs is what FuzzParse accepts: not every supported algorithm, so that
// the invariant "alg is accepted" can fail.
var fuzzAlgs = []string{"ES256", "RS256", "EdDSA"}

// FuzzParse: dpop.Parse never panics, and a proof it accepts has typ dpop+jwt,
// an accepted alg, a thumbprint of 43 base64url characters that is its
// header jwk's, a jti within bounds and a normalised htu. When sign is true
// the header and payload are signed with fuzzKey, so that inputs reach the
// checks after the signature's.
func FuzzParse(f *testing.F) {
	k := fuzzKey()
	h := k.header("", "")
	f.Add(h, payload(), "", true)
	f.Add(h, payload("nonce", `"n"`, "iat", "1.5"), "", true)
	f.Add(k.header(`"kid":"a","x":`+nest(jsonlimit.MaxDepth-2), `"use":"sig"`), payload("htu", `"HTTPS://A.example:443/%7e/../x?y#z"`), "", true)
	f.Add(k.header("", `"d":"AA"`), payload(), "", true)
	f.Add(strings.Replace(h, "ES256", "none", 1), payload(), "", false)
	f.Add(strings.Replace(h, "ES256", "HS256", 1), payload(), "c2ln", false)
	f.Add(h, payload("jti", `"`+strings.Repeat("j", dpop.MaxJTILen+1)+`"`), "", true)
	f.Add(h, `{"x":`+nest(10000)+`}`, "", true)
	f.Add(`{"typ":"dpop+jwt","alg":"RS256","jwk":{"kty":"RSA","n":"AQAB","e":"AQ"}}`, payload(), "AAAA", false)
	f.Add(`{"typ":"dpop+jwt","alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}`, payload(), b64(make([]byte, 64)), false)
	f.Fuzz(func(t *testing.T, header, payload, sig string, sign bool) {
		var proof string
		if sign {
			proof = k.sign(header, payload)
		} else {
			proof = b64s(header) + "." + b64s(payload) + "." + sig
		}
		p, err := dpop.Parse(proof, fuzzAlgs, gosig.Verify)
		if err != nil {
			if p != (dpop.Proof{}) {
				t.Fatalf("refused (%v) but returned %+v", err, p)
			}
			return
		}
		if len(proof) > dpop.MaxProofLen {
			t.Fatalf("accepted a proof of %d bytes", len(proof))
		}
		hdr := gjson.Parse(header)
		if typ := hdr.Get("typ"); typ.Type != gjson.String || typ.Str != "dpop+jwt" {
			t.Fatalf("accepted typ %s", typ.Raw)
		}
		if alg := hdr.Get("alg").Str; alg != "ES256" && alg != "RS256" && alg != "EdDSA" {
			t.Fatalf("accepted alg %q", alg)
		}
		if len(p.JKT) != 43 || !dpop.IsBase64URL(p.JKT) {
			t.Fatalf("thumbprint %q", p.JKT)
		}
		if jkt, err := dpop.Thumbprint(hdr.Get("jwk")); err != nil || jkt != p.JKT {
			t.Fatalf("JKT %q, the jwk's thumbprint %q, %v", p.JKT, jkt, err)
		}
		if p.JTI == "" || len(p.JTI) > dpop.MaxJTILen || p.HTM == "" {
			t.Fatalf("accepted jti %q, htm %q", p.JTI, p.HTM)
		}
		if u, ok := dpop.NormalizeURI(p.HTU); !ok || u != p.HTU {
			t.Fatalf("htu %q is not normal (%q)", p.HTU, u)
		}
		if err := p.Check(p.HTM, p.HTU, "", p.IAT, 0); err != nil {
			t.Fatalf("a proof does not match its own request: %v", err)
		}
	})
}

// FuzzThumbprint: dpop.Thumbprint never panics; a thumbprint is 43 base64url
// characters (a SHA-256), and the same for the JWK of the required members
// alone, in another order, with another member added.
func FuzzThumbprint(f *testing.F) {
	f.Add(`{"kty":"RSA","n":"` + rfc7638N + `","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`)
	f.Add(`{"crv":"Ed25519","kty":"OKP","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`)
	f.Add(`{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}`)
	f.Add(`{"kty":"EC","crv":"P-256","x":"\u0041","y":"B","y":"C"}`)
	f.Add(`{"kty":"oct","k":"AA"}`)
	f.Add(`{"kty":"RSA","n":` + nest(100) + `}`)
	f.Fuzz(func(t *testing.T, jwk string) {
		if !jsonlimit.Within(jwk, jsonlimit.MaxDepth) {
			return // gjson recurses; dpop.Parse bounds the depth first
		}
		obj := gjson.Parse(jwk)
		tp, err := dpop.Thumbprint(obj)
		if err != nil {
			if tp != "" {
				t.Fatalf("refused (%v) but returned %q", err, tp)
			}
			return
		}
		if !gjson.Valid(jwk) {
			return // gjson reads broken JSON its own way; Parse validates first
		}
		if raw, err := dpop.DecodePart(tp); err != nil || len(raw) != sha256.Size {
			t.Fatalf("thumbprint %q is not a base64url SHA-256", tp)
		}
		names := dpop.ThumbprintMembers[obj.Get("kty").Str]
		var b strings.Builder
		b.WriteString(`{"kid":"another member"`)
		for i := len(names) - 1; i >= 0; i-- {
			b.WriteString(`,"` + names[i] + `":"` + obj.Get(names[i]).Str + `"`)
		}
		b.WriteString("}")
		if again, err := dpop.Thumbprint(gjson.Parse(b.String())); err != nil || again != tp {
			t.Fatalf("the required members alone give %q, %v; the JWK %q", again, err, tp)
		}
	})
}
