package dpop_test

import (
	"crypto/rsa"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/internal/dpop"
	"github.com/phantom-token/envoy-phantom-token/internal/dpop/gosig"
	"github.com/phantom-token/envoy-phantom-token/internal/jsonlimit"
)

// TestParseAlgorithms: a proof signed with each supported algorithm parses
// and returns its claims and the thumbprint of its key.
func TestParseAlgorithms(t *testing.T) {
	for _, name := range []string{"ES256", "ES384", "ES512", "RS256", "PS256", "PS384", "RS512", "EdDSA"} {
		t.Run(name, func(t *testing.T) {
			k := key(t, name)
			proof := k.sign(k.header("", ""), payload("nonce", `"n-1"`))
			p, err := dpop.Parse(proof, allAlgs, gosig.Verify)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			jkt, err := dpop.Thumbprint(mustObject(t, "{"+k.jwk+"}"))
			if err != nil {
				t.Fatal(err)
			}
			want := dpop.Proof{JKT: jkt, JTI: "e1j3V_bKic8-LAEB", HTM: testMethod, HTU: testURI,
				ATH: dpop.TokenHash(testToken), Nonce: "n-1", IAT: time.Unix(testIAT, 0)}
			if p != want {
				t.Errorf("Parse = %+v\nwant %+v", p, want)
			}
		})
	}
}

// TestParse has one row per rule of RFC 9449 §4.3 items 2 to 7 that dpop.Parse
// checks, and per kind of hostile input. Each row builds its proof from the
// ES256 test key unless it says otherwise.
func TestParse(t *testing.T) {
	es := key(t, "ES256")
	rs := key(t, "RS256")
	ed := key(t, "EdDSA")
	good := es.header("", "")
	pl := payload()
	okProof := es.sign(good, pl)
	h, p, s := splitProof(okProof)

	// A header naming alg and holding the jwk members; rows sign it with
	// whichever key they test.
	withJWK := func(alg, jwk string) string {
		return `{"typ":"dpop+jwt","alg":"` + alg + `","jwk":{` + jwk + `}}`
	}
	rsaPub := rs.priv.Public().(*rsa.PublicKey)
	n, e := rsaPub.N.Bytes(), big.NewInt(int64(rsaPub.E)).Bytes()
	small := key(t, "RSA1024")
	huge := append([]byte{0x80}, make([]byte, 1025)...) // 8201 bits
	huge[len(huge)-1] = 1
	even := append([]byte(nil), n...)
	even[len(even)-1] &^= 1
	ecX, ecY := jwkMember(t, es.jwk, "x"), jwkMember(t, es.jwk, "y")
	offCurve := append([]byte(nil), ecY...)
	offCurve[31] ^= 1
	zeros := b64(make([]byte, 32))

	tests := []struct {
		name  string
		proof string
		algs  []string
		err   string // a part of the error; "" when the proof is accepted
	}{
		{"a proof signed by its jwk", okProof, nil, ""},

		// Item 2: one well-formed JWT, canonical base64url.
		{"two parts", h + "." + p, nil, "three dot-separated parts"},
		{"four parts", okProof + ".x", nil, "three dot-separated parts"},
		{"empty header", "." + p + "." + s, nil, "header: empty or not base64url"},
		{"empty signature", h + "." + p + ".", nil, "signature: empty or not base64url"},
		{"padded header", b64s(good+" ") + "=." + p + "." + s, nil, "header: empty or not base64url"},
		{"padded signature", h + "." + p + "." + s + "=", nil, "signature: empty or not base64url"},
		{"line break in the payload", h + "." + p[:4] + "\n" + p[4:] + "." + s, nil, "payload: empty or not base64url"},
		{"standard base64 alphabet", h + "." + p + "." + strings.NewReplacer("-", "+", "_", "/").Replace(s) + "+", nil, "signature: empty or not base64url"},
		{"unused bits set in the signature's last character", h + "." + p + "." + setLastBits(s), nil, "signature: not canonical base64url"},
		{"unused bits set in the header's last character", setLastBits(b64s(good+" ")) + "." + p + "." + s, nil, "header: not canonical base64url"},
		{"one character too many", h + "." + p + "." + s + "AA" + "A", nil, "signature: not canonical base64url"},
		{"header not JSON", es.sign(`{"typ":"dpop+jwt",`, pl), nil, "header: not JSON"},
		{"header an array", es.sign(`["dpop+jwt"]`, pl), nil, "header: not a JSON object"},
		{"payload not JSON", es.sign(good, `{"jti":`), nil, "payload: not JSON"},
		{"payload a string", es.sign(good, `"x"`), nil, "payload: not a JSON object"},
		{"longer than 8192 bytes", es.sign(es.header(`"x":"`+strings.Repeat("a", dpop.MaxProofLen)+`"`, ""), pl), nil, "longer than 8192 bytes"},
		{"header nested deeper than the bound", es.sign(es.header(`"x":`+nest(jsonlimit.MaxDepth), ""), pl), nil, "header: JSON nested deeper"},
		{"payload nested deeper than the bound", es.sign(good, payload("x", nest(jsonlimit.MaxDepth))), nil, "payload: JSON nested deeper"},
		{"nesting within the bound", es.sign(es.header(`"x":`+nest(jsonlimit.MaxDepth-2), ""), pl), nil, ""},
		{"header repeats alg", es.sign(es.header(`"alg":"ES256"`, ""), pl), nil, `header: duplicate member "alg"`},
		{"header repeats alg, escaped", es.sign(es.header(`"a\u006cg":"ES256"`, ""), pl), nil, `header: duplicate member "alg"`},
		{"header repeats jwk", es.sign(es.header(`"jwk":{`+rs.jwk+`}`, ""), pl), nil, `header: duplicate member "jwk"`},
		{"header repeats typ", es.sign(es.header(`"typ":"JWT"`, ""), pl), nil, `header: duplicate member "typ"`},
		{"payload repeats htu", es.sign(good, pl[:len(pl)-1]+`,"htu":"https://evil.example/"}`), nil, `payload: duplicate member "htu"`},
		{"payload repeats jti", es.sign(good, pl[:len(pl)-1]+`,"jti":"other"}`), nil, `payload: duplicate member "jti"`},

		// Item 3: the required claims, of the right types.
		{"no jti", es.sign(good, payload("jti", "")), nil, "jti is not a string"},
		{"jti empty", es.sign(good, payload("jti", `""`)), nil, "jti is not a string"},
		{"jti a number", es.sign(good, payload("jti", `1`)), nil, "jti is not a string"},
		{"jti of 256 bytes", es.sign(good, payload("jti", `"`+strings.Repeat("j", dpop.MaxJTILen)+`"`)), nil, ""},
		{"jti of 257 bytes", es.sign(good, payload("jti", `"`+strings.Repeat("j", dpop.MaxJTILen+1)+`"`)), nil, "jti is not a string of 1 to 256 bytes"},
		{"no htm", es.sign(good, payload("htm", "")), nil, "htm is not a method"},
		{"htm empty", es.sign(good, payload("htm", `""`)), nil, "htm is not a method"},
		{"htm an array", es.sign(good, payload("htm", `["GET"]`)), nil, "htm is not a method"},
		{"no htu", es.sign(good, payload("htu", "")), nil, "htu is not a string"},
		{"htu a relative URI", es.sign(good, payload("htu", `"/orders/42"`)), nil, "htu is not an http or https URI"},
		{"htu of another scheme", es.sign(good, payload("htu", `"wss://api.example.com/orders/42"`)), nil, "htu is not an http or https URI"},
		{"htu with userinfo", es.sign(good, payload("htu", `"https://user@api.example.com/orders/42"`)), nil, "htu is not an http or https URI"},
		{"no iat", es.sign(good, payload("iat", "")), nil, "iat is not a NumericDate"},
		{"iat a string", es.sign(good, payload("iat", `"1800000000"`)), nil, "iat is not a NumericDate"},
		{"iat negative", es.sign(good, payload("iat", `-1`)), nil, "iat is not a NumericDate"},
		{"iat past 2^40", es.sign(good, payload("iat", `1e13`)), nil, "iat is not a NumericDate"},
		{"iat fractional", es.sign(good, payload("iat", `1800000000.25`)), nil, ""},
		{"no ath (Check decides)", es.sign(good, payload("ath", "")), nil, ""},
		{"ath a number", es.sign(good, payload("ath", `1`)), nil, "ath is not a string"},
		{"ath empty", es.sign(good, payload("ath", `""`)), nil, "ath is not a string"},
		{"nonce a number", es.sign(good, payload("nonce", `1`)), nil, "nonce is not a string"},
		{"nonce too long", es.sign(good, payload("nonce", `"`+strings.Repeat("n", dpop.MaxNonceLen+1)+`"`)), nil, "nonce is not a string"},

		// Item 4: typ.
		{"no typ", es.sign(strings.Replace(good, `"typ":"dpop+jwt",`, "", 1), pl), nil, `typ is not "dpop+jwt"`},
		{"typ JWT", es.sign(strings.Replace(good, `dpop+jwt`, "JWT", 1), pl), nil, `typ is not "dpop+jwt"`},
		{"typ with the application/ prefix", es.sign(strings.Replace(good, `dpop+jwt`, "application/dpop+jwt", 1), pl), nil, `typ is not "dpop+jwt"`},
		{"typ an array", es.sign(strings.Replace(good, `"dpop+jwt"`, `["dpop+jwt"]`, 1), pl), nil, `typ is not "dpop+jwt"`},

		// Item 5: alg, a supported asymmetric algorithm in the list.
		{"alg none", es.sign(strings.Replace(good, "ES256", "none", 1), pl), nil, "alg is not a supported algorithm"},
		{"alg none, unsigned", b64s(strings.Replace(good, "ES256", "none", 1)) + "." + p + ".AA", nil, "alg is not a supported algorithm"},
		{"alg HS256", es.sign(strings.Replace(good, "ES256", "HS256", 1), pl), nil, "alg is not a supported algorithm"},
		{"alg HS256 even when listed", es.sign(strings.Replace(good, "ES256", "HS256", 1), pl), []string{"HS256", "ES256"}, "alg is not a supported algorithm"},
		{"alg none even when listed", es.sign(strings.Replace(good, "ES256", "none", 1), pl), []string{"none"}, "alg is not a supported algorithm"},
		{"alg in lower case", es.sign(strings.Replace(good, "ES256", "es256", 1), pl), nil, "alg is not a supported algorithm"},
		{"alg not in the list", okProof, []string{"RS256", "EdDSA"}, "alg is not an accepted algorithm"},
		{"no alg", es.sign(strings.Replace(good, `"alg":"ES256",`, "", 1), pl), nil, "alg is not a string"},
		{"crit", es.sign(es.header(`"crit":["b64"],"b64":false`, ""), pl), nil, "header has crit"},

		// Keys of the alg's type and size.
		{"no jwk", es.sign(`{"typ":"dpop+jwt","alg":"ES256"}`, pl), nil, "jwk: not a JSON object"},
		{"jwk a string", es.sign(`{"typ":"dpop+jwt","alg":"ES256","jwk":"x"}`, pl), nil, "jwk: not a JSON object"},
		{"an RSA key for ES256", es.sign(withJWK("ES256", rs.jwk), pl), nil, `jwk: kty is not "EC" for ES256`},
		{"an EC key for RS256", rs.sign(withJWK("RS256", es.jwk), pl), nil, `jwk: kty is not "RSA" for RS256`},
		{"an EC key for EdDSA", ed.sign(withJWK("EdDSA", es.jwk), pl), nil, `jwk: kty is not "OKP" for EdDSA`},
		{"a P-384 key for ES256", es.sign(withJWK("ES256", key(t, "ES384").jwk), pl), nil, `jwk: crv is not "P-256" for ES256`},
		{"a P-256 key for ES512", es.sign(withJWK("ES512", es.jwk), pl), nil, `jwk: crv is not "P-521" for ES512`},
		{"an X25519 key for EdDSA", ed.sign(withJWK("EdDSA", strings.Replace(ed.jwk, "Ed25519", "X25519", 1)), pl), nil, `jwk: crv is not "Ed25519" for EdDSA`},
		{"an Ed448 key for EdDSA", ed.sign(withJWK("EdDSA", `"kty":"OKP","crv":"Ed448","x":"`+b64(make([]byte, 57))+`"`), pl), nil, `jwk: crv is not "Ed25519"`},
		{"an Ed25519 x of 31 bytes", ed.sign(withJWK("EdDSA", `"kty":"OKP","crv":"Ed25519","x":"`+b64(make([]byte, 31))+`"`), pl), nil, "jwk: x is not 32 bytes"},
		{"a symmetric key", es.sign(withJWK("ES256", `"kty":"oct","k":"c2VjcmV0"`), pl), nil, `jwk: has the private member "k"`},
		{"RSA modulus of 1024 bits", small.sign(small.header("", ""), pl), nil, "jwk: n is not an odd modulus of 2048 to 4096 bits"},
		{"RSA modulus of 2047 bits", rs.sign(withJWK("RS256", rsaJWK(append([]byte{0x7f}, n[1:]...), e)), pl), nil, "jwk: n is not an odd modulus"},
		{"RSA modulus of 8201 bits", rs.sign(withJWK("RS256", rsaJWK(huge, e)), pl), nil, "jwk: n is not an odd modulus"},
		{"RSA modulus even", rs.sign(withJWK("RS256", rsaJWK(even, e)), pl), nil, "jwk: n is not an odd modulus"},
		{"RSA modulus with a leading zero byte", rs.sign(withJWK("RS256", rsaJWK(append([]byte{0}, n...), e)), pl), nil, "jwk: n or e has a leading zero byte"},
		{"RSA exponent 1", rs.sign(withJWK("RS256", rsaJWK(n, []byte{1})), pl), nil, "jwk: e is not odd or out of range"},
		{"RSA exponent even", rs.sign(withJWK("RS256", rsaJWK(n, []byte{1, 0, 0})), pl), nil, "jwk: e is not odd or out of range"},
		{"RSA exponent 2^31+1", rs.sign(withJWK("RS256", rsaJWK(n, []byte{0x80, 0, 0, 1})), pl), nil, "jwk: e is not odd or out of range"},
		{"RSA exponent 65539, over 65537", rs.sign(withJWK("RS256", rsaJWK(n, []byte{1, 0, 3})), pl), nil, "jwk: e is not odd or out of range"},
		{"RSA exponent of 5 bytes", rs.sign(withJWK("RS256", rsaJWK(n, []byte{1, 0, 0, 0, 1})), pl), nil, "jwk: e is out of range"},
		{"RSA exponent with a leading zero byte", rs.sign(withJWK("RS256", rsaJWK(n, []byte{0, 1, 0, 1})), pl), nil, "jwk: n or e has a leading zero byte"},
		{"RSA exponent 3 (signature then fails)", rs.sign(withJWK("RS256", rsaJWK(n, []byte{3})), pl), nil, "signature is not valid"},
		{"RSA n not a string", rs.sign(withJWK("RS256", `"kty":"RSA","n":1,"e":"AQAB"`), pl), nil, "jwk: n is not a string"},
		{"RSA n padded", rs.sign(withJWK("RS256", `"kty":"RSA","n":"`+b64(n)+`==","e":"AQAB"`), pl), nil, "jwk: n is empty or not base64url"},
		{"EC point off the curve (the verifier refuses it)", es.sign(withJWK("ES256", `"kty":"EC","crv":"P-256","x":"`+b64(ecX)+`","y":"`+b64(offCurve)+`"`), pl), nil, "signature is not valid"},
		{"EC point at infinity (the verifier refuses it)", es.sign(withJWK("ES256", `"kty":"EC","crv":"P-256","x":"`+zeros+`","y":"`+zeros+`"`), pl), nil, "signature is not valid"},
		{"EC x of 31 bytes", es.sign(withJWK("ES256", `"kty":"EC","crv":"P-256","x":"`+b64(ecX[1:])+`","y":"`+b64(ecY)+`"`), pl), nil, "jwk: x or y is not 32 bytes"},
		{"EC x with a leading zero byte", es.sign(withJWK("ES256", `"kty":"EC","crv":"P-256","x":"`+b64(append([]byte{0}, ecX...))+`","y":"`+b64(ecY)+`"`), pl), nil, "jwk: x or y is not 32 bytes"},
		{"EC y missing", es.sign(withJWK("ES256", `"kty":"EC","crv":"P-256","x":"`+b64(ecX)+`"`), pl), nil, "jwk: y is not a string"},
		{"EC x with unused bits set", es.sign(withJWK("ES256", `"kty":"EC","crv":"P-256","x":"`+setLastBits(b64(ecX))+`","y":"`+b64(ecY)+`"`), pl), nil, "jwk: x is not canonical base64url"},
		{"jwk repeats x", es.sign(es.header("", `"x":"`+zeros+`"`), pl), nil, `jwk: duplicate member "x"`},
		{"jwk repeats kty", es.sign(es.header("", `"kty":"RSA"`), pl), nil, `jwk: duplicate member "kty"`},
		{"jwk with use, kid and alg", es.sign(es.header("", `"use":"sig","kid":"k1","alg":"ES256"`), pl), nil, ""},

		// Item 7: no private key in the jwk.
		{"EC jwk with d", es.sign(es.header("", `"d":"`+zeros+`"`), pl), nil, `jwk: has the private member "d"`},
		{"RSA jwk with p", rs.sign(rs.header("", `"p":"AQAB"`), pl), nil, `jwk: has the private member "p"`},
		{"RSA jwk with q", rs.sign(rs.header("", `"q":"AQAB"`), pl), nil, `jwk: has the private member "q"`},
		{"RSA jwk with dp", rs.sign(rs.header("", `"dp":"AQAB"`), pl), nil, `jwk: has the private member "dp"`},
		{"RSA jwk with dq", rs.sign(rs.header("", `"dq":"AQAB"`), pl), nil, `jwk: has the private member "dq"`},
		{"RSA jwk with qi", rs.sign(rs.header("", `"qi":"AQAB"`), pl), nil, `jwk: has the private member "qi"`},
		{"RSA jwk with oth", rs.sign(rs.header("", `"oth":[]`), pl), nil, `jwk: has the private member "oth"`},
		{"OKP jwk with d", ed.sign(ed.header("", `"d":"`+zeros+`"`), pl), nil, `jwk: has the private member "d"`},
		{"private member null", es.sign(es.header("", `"d":null`), pl), nil, `jwk: has the private member "d"`},
		{"private member with an escaped name", es.sign(es.header("", `"\u0064":"`+zeros+`"`), pl), nil, `jwk: has the private member "d"`},

		// Item 6: the signature, by the jwk's key, of these bytes.
		{"signed by another key", key(t, "ES256b").sign(good, pl), nil, "signature is not valid"},
		{"payload changed after signing", h + "." + b64s(payload("htm", `"POST"`)) + "." + s, nil, "signature is not valid"},
		{"header changed after signing", b64s(es.header(`"kid":"x"`, "")) + "." + p + "." + s, nil, "signature is not valid"},
		{"signature one byte short", h + "." + p + "." + b64(mustDecode(t, s)[1:]), nil, "signature is not valid"},
		{"signature in ASN.1, not r||s", h + "." + p + "." + b64(asn1Signature(mustDecode(t, s))), nil, "signature is not valid"},
		{"signature of zeros", h + "." + p + "." + b64(make([]byte, 64)), nil, "signature is not valid"},
		{"RS256 signature presented as PS256", psAsRS(t, rs, pl), nil, "signature is not valid"},
		{"EdDSA signature of 63 bytes", b64s(ed.header("", "")) + "." + p + "." + b64(make([]byte, 63)), nil, "signature is not valid"},
	}
	// One header cache for every row: rows whose header an earlier row
	// verified are parsed with it, and must get what Parse gives.
	cache := dpop.NewHeaderCache()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			algs := tt.algs
			if algs == nil {
				algs = allAlgs
			}
			got, err := dpop.Parse(tt.proof, algs, gosig.Verify)
			for range 2 { // the first may fill the cache, the second reads it
				cached, cerr := cache.Parse(tt.proof, algs, gosig.Verify)
				if cached != got || (cerr == nil) != (err == nil) || err != nil && cerr.Error() != err.Error() {
					t.Fatalf("with the header cache: %+v, %v; without: %+v, %v", cached, cerr, got, err)
				}
			}
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("Parse: %v", err)
			case tt.err != "" && err == nil:
				t.Fatalf("Parse accepted the proof, want an error with %q", tt.err)
			case tt.err != "" && !strings.Contains(err.Error(), tt.err):
				t.Fatalf("Parse error %q, want one with %q", err, tt.err)
			case err != nil && got != (dpop.Proof{}) && got.JKT != "":
				t.Fatalf("Parse refused the proof but returned a key thumbprint")
			case err == nil && len(got.JKT) != 43:
				t.Fatalf("JKT %q is not 43 characters", got.JKT)
			}
			if err != nil && len(err.Error()) > 100 {
				t.Errorf("error of %d bytes: %.100q…", len(err.Error()), err)
			}
		})
	}
}

// TestCheck has one row per rule of RFC 9449 §4.3 items 8, 9, 11 and 12.
func TestCheck(t *testing.T) {
	now := time.Unix(testIAT, 0)
	window := 60 * time.Second
	proof := func(members ...string) dpop.Proof {
		k := key(t, "ES256")
		p, err := dpop.Parse(k.sign(k.header("", ""), payload(members...)), allAlgs, gosig.Verify)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := proof()
	tests := []struct {
		name   string
		proof  dpop.Proof
		method string
		uri    string
		token  string
		now    time.Time
		err    string
	}{
		{"the request the proof was made for", base, "GET", testURI, testToken, now, ""},

		// Item 8: htm.
		{"another method", base, "POST", testURI, testToken, now, "htm is not the request's method"},
		{"method case matters", base, "get", testURI, testToken, now, "htm is not the request's method"},

		// Item 9: htu, ignoring query and fragment, after normalisation.
		{"request with a query", base, "GET", testURI + "?page=2", testToken, now, ""},
		{"proof htu with a query and fragment", proof("htu", `"`+testURI+`?a=b#c"`), "GET", testURI, testToken, now, ""},
		{"another path", base, "GET", "https://api.example.com/orders/43", testToken, now, "htu is not the request's URI"},
		{"path with a trailing slash", base, "GET", testURI + "/", testToken, now, "htu is not the request's URI"},
		{"path case matters", base, "GET", "https://api.example.com/Orders/42", testToken, now, "htu is not the request's URI"},
		{"another host", base, "GET", "https://evil.example.com/orders/42", testToken, now, "htu is not the request's URI"},
		{"another scheme", base, "GET", "http://api.example.com/orders/42", testToken, now, "htu is not the request's URI"},
		{"another port", base, "GET", "https://api.example.com:8443/orders/42", testToken, now, "htu is not the request's URI"},
		{"scheme and host case", base, "GET", "HTTPS://API.Example.COM/orders/42", testToken, now, ""},
		{"default port written out", base, "GET", "https://api.example.com:443/orders/42", testToken, now, ""},
		{"proof htu with the default port and upper case", proof("htu", `"HTTPS://Api.Example.com:443/orders/42"`), "GET", testURI, testToken, now, ""},
		{"percent-encoded unreserved characters", proof("htu", `"https://api.example.com/%6Frders/%34%32"`), "GET", testURI, testToken, now, ""},
		{"dot segments", proof("htu", `"https://api.example.com/public/../orders/./42"`), "GET", testURI, testToken, now, ""},
		{"dot segments in the request", base, "GET", "https://api.example.com/a/b/../../orders/42", testToken, now, ""},
		{"encoded slash is not a slash", proof("htu", `"https://api.example.com/orders%2F42"`), "GET", testURI, testToken, now, "htu is not the request's URI"},
		{"request URI not http(s)", base, "GET", "/orders/42", testToken, now, "htu is not the request's URI"},
		{"empty request URI", base, "GET", "", testToken, now, "htu is not the request's URI"},

		// Item 11: iat within the window, either side.
		{"iat window seconds ago", base, "GET", testURI, testToken, now.Add(window), ""},
		{"iat window seconds ahead", base, "GET", testURI, testToken, now.Add(-window), ""},
		{"iat too old", base, "GET", testURI, testToken, now.Add(window + time.Millisecond), "iat is outside the accepted window"},
		{"iat too far ahead", base, "GET", testURI, testToken, now.Add(-window - time.Millisecond), "iat is outside the accepted window"},

		// Item 12: ath.
		{"ath of another token", base, "GET", testURI, "another-token", now, "ath is not the access token's hash"},
		{"no ath with a token", proof("ath", ""), "GET", testURI, testToken, now, "proof has no ath"},
		{"ath of the token with padding", proof("ath", `"`+dpop.TokenHash(testToken)+`="`), "GET", testURI, testToken, now, "ath is not the access token's hash"},
		{"no token, no ath", proof("ath", ""), "GET", testURI, "", now, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.proof.Check(tt.method, tt.uri, tt.token, tt.now, window)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("Check: %v", err)
			case tt.err != "" && err == nil:
				t.Fatalf("Check accepted, want an error with %q", tt.err)
			case tt.err != "" && !strings.Contains(err.Error(), tt.err):
				t.Fatalf("Check error %q, want one with %q", err, tt.err)
			}
		})
	}
}

// TestTokenHash: RFC 9449 §7.1's example token and its ath.
func TestTokenHash(t *testing.T) {
	const token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
	if got, want := dpop.TokenHash(token), "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"; got != want {
		t.Errorf("TokenHash = %q, want %q", got, want)
	}
}

// TestErrorsAreSafeToLog: no error quotes the proof's members.
func TestErrorsAreSafeToLog(t *testing.T) {
	es := key(t, "ES256")
	secret := "SECRET-VALUE-1234"
	proofs := []string{
		es.sign(es.header(`"alg":"`+secret+`"`, ""), payload()),
		es.sign(strings.Replace(es.header("", ""), "ES256", secret, 1), payload()),
		es.sign(strings.Replace(es.header("", ""), "dpop+jwt", secret, 1), payload()),
		es.sign(es.header("", ""), payload("jti", `"`+secret+strings.Repeat("x", 300)+`"`)),
		es.sign(es.header("", ""), payload("htu", `"`+secret+`"`)),
		es.sign(es.header("", `"`+secret+`":1,"d":"`+secret+`"`), payload()),
		secret + "." + secret + "." + secret,
	}
	for i, proof := range proofs {
		_, err := dpop.Parse(proof, allAlgs, gosig.Verify)
		if err == nil {
			t.Fatalf("proof %d accepted", i)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("proof %d: error %q quotes the proof", i, err)
		}
	}
}

func splitProof(s string) (h, p, sig string) {
	parts := strings.Split(s, ".")
	return parts[0], parts[1], parts[2]
}

// setLastBits sets the unused low bits of the last character of an unpadded
// base64url string whose length is not a multiple of 4 (the decoded value
// stays the same for a lenient decoder).
func setLastBits(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, s[len(s)-1])
	unused := map[int]int{2: 0xf, 3: 0x3}[len(s)%4]
	if unused == 0 {
		panic("setLastBits: no unused bits")
	}
	return s[:len(s)-1] + string(alphabet[last|unused])
}

func nest(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := dpop.DecodePart(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jwkMember decodes a member of a test JWK's members.
func jwkMember(t *testing.T, members, name string) []byte {
	t.Helper()
	return mustDecode(t, mustObject(t, "{"+members+"}").Get(name).Str)
}

// asn1Signature is r||s as an ASN.1 SEQUENCE of two INTEGERs (for 32-byte
// r and s; short form lengths suffice).
func asn1Signature(rs []byte) []byte {
	integer := func(b []byte) []byte {
		for len(b) > 1 && b[0] == 0 && b[1] < 0x80 {
			b = b[1:]
		}
		if b[0] >= 0x80 {
			b = append([]byte{0}, b...)
		}
		return append([]byte{2, byte(len(b))}, b...)
	}
	body := append(integer(rs[:32]), integer(rs[32:])...)
	return append([]byte{0x30, byte(len(body))}, body...)
}

// psAsRS is a PS256 signature under an RS256 header by the same key.
func psAsRS(t *testing.T, rs clientKey, pl string) string {
	t.Helper()
	ps := key(t, "PS256")
	input := b64s(rs.header("", "")) + "." + b64s(pl)
	return input + "." + b64(ps.signature(input))
}

// A cached header is checked against each call's algorithms, and the cache
// is bounded.
func TestHeaderCache(t *testing.T) {
	es := key(t, "ES256")
	proof := es.sign(es.header("", ""), payload())
	c := dpop.NewHeaderCache()
	if _, err := c.Parse(proof, []string{"ES256"}, gosig.Verify); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Parse(proof, []string{"RS256"}, gosig.Verify); err == nil || !strings.Contains(err.Error(), "not an accepted algorithm") {
		t.Errorf("a cached ES256 header where only RS256 is accepted: %v", err)
	}
	for i := range dpop.MaxCachedHeaders + 5 {
		h := es.header(`"kid":"`+strconv.Itoa(i)+`"`, "")
		if _, err := c.Parse(es.sign(h, payload()), []string{"ES256"}, gosig.Verify); err != nil {
			t.Fatal(err)
		}
		if n := c.Len(); n > dpop.MaxCachedHeaders {
			t.Fatalf("%d headers cached", n)
		}
	}
}
