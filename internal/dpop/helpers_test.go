package dpop_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/phantom-token/envoy-phantom-token/internal/dpop"
)

// A client key for tests: an alg, the private key, and the public JWK
// members as JSON (without braces, so rows can add members).
type clientKey struct {
	alg  string
	priv crypto.Signer
	jwk  string // e.g. `"kty":"EC","crv":"P-256","x":"…","y":"…"`
}

var (
	keysOnce sync.Once
	keys     map[string]clientKey // by name: ES256, ES384, ES512, RS256, PS256, EdDSA, RSA1024, ES256b, …
)

// key returns a test key, generating them all once.
func key(t testing.TB, name string) clientKey {
	t.Helper()
	keysOnce.Do(func() {
		keys = map[string]clientKey{}
		ec := func(name, alg string, c elliptic.Curve) {
			k, err := ecdsa.GenerateKey(c, rand.Reader)
			if err != nil {
				panic(err)
			}
			keys[name] = clientKey{alg, k, ecJWK(k)}
		}
		ec("ES256", "ES256", elliptic.P256())
		ec("ES256b", "ES256", elliptic.P256())
		ec("ES384", "ES384", elliptic.P384())
		ec("ES512", "ES512", elliptic.P521())
		r := func(name, alg string, bits int) {
			k, err := rsa.GenerateKey(rand.Reader, bits)
			if err != nil {
				panic(err)
			}
			keys[name] = clientKey{alg, k, rsaJWK(k.N.Bytes(), big.NewInt(int64(k.E)).Bytes())}
		}
		r("RS256", "RS256", 2048)
		r("RSA1024", "RS256", 1024)
		rs := keys["RS256"]
		keys["PS256"] = clientKey{"PS256", rs.priv, rs.jwk}
		keys["RS512"] = clientKey{"RS512", rs.priv, rs.jwk}
		keys["PS384"] = clientKey{"PS384", rs.priv, rs.jwk}
		_, ed, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		keys["EdDSA"] = clientKey{"EdDSA", ed, `"kty":"OKP","crv":"Ed25519","x":"` + b64(ed.Public().(ed25519.PublicKey)) + `"`}
	})
	k, ok := keys[name]
	if !ok {
		t.Fatalf("no test key %q", name)
	}
	return k
}

func b64(b []byte) string  { return base64.RawURLEncoding.EncodeToString(b) }
func b64s(s string) string { return b64([]byte(s)) }

func ecJWK(k *ecdsa.PrivateKey) string {
	p, err := k.PublicKey.Bytes()
	if err != nil {
		panic(err)
	}
	n := (len(p) - 1) / 2
	return `"kty":"EC","crv":"` + k.Curve.Params().Name + `","x":"` + b64(p[1:1+n]) + `","y":"` + b64(p[1+n:]) + `"`
}

func rsaJWK(n, e []byte) string {
	return `"kty":"RSA","n":"` + b64(n) + `","e":"` + b64(e) + `"`
}

// header is a proof header for k with extra header members and extra JWK
// members.
func (k clientKey) header(extraHeader, extraJWK string) string {
	jwk := k.jwk
	if extraJWK != "" {
		jwk += "," + extraJWK
	}
	h := `{"typ":"dpop+jwt","alg":"` + k.alg + `","jwk":{` + jwk + `}`
	if extraHeader != "" {
		h += "," + extraHeader
	}
	return h + "}"
}

// sign returns the compact JWS of header and payload (JSON text) signed by
// k with k.alg.
func (k clientKey) sign(header, payload string) string {
	input := b64s(header) + "." + b64s(payload)
	return input + "." + b64(k.signature(input))
}

func (k clientKey) signature(input string) []byte {
	digest := func(h crypto.Hash) []byte {
		switch h {
		case crypto.SHA256:
			d := sha256.Sum256([]byte(input))
			return d[:]
		case crypto.SHA384:
			d := sha512.Sum384([]byte(input))
			return d[:]
		}
		d := sha512.Sum512([]byte(input))
		return d[:]
	}
	hash := map[string]crypto.Hash{"256": crypto.SHA256, "384": crypto.SHA384, "512": crypto.SHA512}[k.alg[2:]]
	switch k.alg[:2] {
	case "ES":
		priv := k.priv.(*ecdsa.PrivateKey)
		r, s, err := ecdsa.Sign(rand.Reader, priv, digest(hash))
		if err != nil {
			panic(err)
		}
		size := (priv.Curve.Params().BitSize + 7) / 8
		sig := make([]byte, 2*size)
		r.FillBytes(sig[:size])
		s.FillBytes(sig[size:])
		return sig
	case "RS":
		sig, err := rsa.SignPKCS1v15(rand.Reader, k.priv.(*rsa.PrivateKey), hash, digest(hash))
		if err != nil {
			panic(err)
		}
		return sig
	case "PS":
		sig, err := rsa.SignPSS(rand.Reader, k.priv.(*rsa.PrivateKey), hash, digest(hash), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		if err != nil {
			panic(err)
		}
		return sig
	}
	return ed25519.Sign(k.priv.(ed25519.PrivateKey), []byte(input))
}

// The request most tests make, and a payload for it.
const (
	testToken  = "an-opaque-access-token"
	testMethod = "GET"
	testURI    = "https://api.example.com/orders/42"
	testIAT    = 1_800_000_000
)

// payload is a proof payload for the test request with some members
// replaced or added: members maps a name to its JSON value, "" to drop it.
func payload(members ...string) string {
	m := map[string]string{
		"jti": `"e1j3V_bKic8-LAEB"`,
		"htm": `"` + testMethod + `"`,
		"htu": `"` + testURI + `"`,
		"iat": strconv.Itoa(testIAT),
		"ath": `"` + dpop.TokenHash(testToken) + `"`,
	}
	order := []string{"jti", "htm", "htu", "iat", "ath"}
	for i := 0; i+1 < len(members); i += 2 {
		if _, ok := m[members[i]]; !ok {
			order = append(order, members[i])
		}
		m[members[i]] = members[i+1]
	}
	var parts []string
	for _, name := range order {
		if v := m[name]; v != "" {
			parts = append(parts, `"`+name+`":`+v)
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// allAlgs are the algorithms the tests accept unless a row says otherwise.
var allAlgs = dpop.Algorithms
