// Package dpop checks DPoP proofs (RFC 9449): the proof's shape and signature
// (Parse), the proof against the request it came with (Proof.Check), the JWK
// thumbprint a DPoP-bound token names in cnf.jkt (Thumbprint), and stateless
// server nonces (NewNonce, ValidNonce). It makes no host calls: the filter
// reads the headers, keeps the replay cache and answers.
//
// The signature is verified by the Verifier the caller passes to Parse. The
// filter's sends ES* and RS* to Envoy's verify_signature foreign function
// (BoringSSL in Envoy) with the arguments VerifySignatureArgs makes, PS* to
// package pss and EdDSA to Go's crypto/ed25519, both in the module;
// gosig.Verify (Go's crypto/ecdsa, rsa and ed25519) is the measurements'
// reference. The package itself links no signature code, and uses no fmt,
// encoding/json or reflection: the module's size costs Envoy memory
// (measure/linkcost, measure/sigcost).
//
// Errors say what is wrong in words that are safe to log; they never quote
// the proof, the token or key material.
package dpop

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/phantom-token/envoy-phantom-token/internal/jsonlimit"
	"github.com/phantom-token/envoy-phantom-token/internal/jwt"
)

// Bounds on what Parse reads. A proof signed with a 4096-bit RSA key, the
// largest accepted, is about 2 KB; real proofs are under 1 KB (ES256).
const (
	MaxProofLen = 8192
	MaxJTILen   = 256 // the replay cache keeps jti values
	MaxNonceLen = 256
)

// Proof is a DPoP proof that Parse accepted: well-formed and signed by the
// key in its header. Check tells whether it was made for a request.
type Proof struct {
	// JKT is the RFC 7638 thumbprint of the proof's key (base64url SHA-256,
	// 43 characters), to compare with the token's cnf.jkt.
	JKT string
	// JTI is the proof's unique identifier, for the replay cache.
	JTI string
	// HTM is the HTTP method the proof was made for.
	HTM string
	// HTU is the URI the proof was made for, normalised (see Check): scheme
	// and host in lower case, no default port, no query or fragment.
	HTU string
	// ATH is the base64url SHA-256 of the access token; empty when absent.
	ATH string
	// Nonce is the server nonce the client echoed; empty when absent.
	Nonce string
	// IAT is when the client made the proof.
	IAT time.Time
}

// Header and payload members Parse reads; each may appear once (gjson reads
// the first of two members, other parsers the last).
var (
	headerMembers  = []string{"typ", "alg", "jwk", "crit"}
	payloadMembers = []string{"jti", "htm", "htu", "iat", "ath", "nonce"}
)

// Parse checks a DPoP proof's shape and signature, RFC 9449 §4.3 items 2 to
// 7: a compact JWS of three canonical base64url parts (no padding, no stray
// bits); a JSON header with typ "dpop+jwt", an alg that is both supported and
// in algs (never "none" or an HMAC), no crit, and a jwk that is a public key
// of the alg's type (see publicKey); a JSON payload with jti (a non-empty
// string of at most MaxJTILen bytes), htm, htu (an http or https URI), iat
// (a NumericDate), and optional ath and nonce strings; and a signature that
// verify accepts. The cheap checks come first; verify is called last.
func Parse(proof string, algs []string, verify Verifier) (Proof, error) {
	return (*HeaderCache)(nil).Parse(proof, algs, verify)
}

// HeaderCache remembers the headers of proofs whose signature verified: a
// client puts the same header (its key) in every proof, so the header's
// decoding, its JWK's checks and its thumbprint are done once per key and
// worker rather than on every request. It holds at most MaxCachedHeaders,
// and starts over when full. Only the header is remembered: every proof is
// still checked whole (its alg against algs, its payload, its signature).
type HeaderCache struct {
	m map[string]parsedHeader
}

type parsedHeader struct {
	alg *algorithm
	key Key
	jkt string
}

// MaxCachedHeaders bounds a HeaderCache.
const MaxCachedHeaders = 1024

// Len is the number of headers held.
func (c *HeaderCache) Len() int { return len(c.m) }

// NewHeaderCache is an empty cache.
func NewHeaderCache() *HeaderCache { return &HeaderCache{m: map[string]parsedHeader{}} }

// Parse is the package's Parse, with the headers of c (nil: none).
func (c *HeaderCache) Parse(proof string, algs []string, verify Verifier) (Proof, error) {
	var p Proof
	if len(proof) > MaxProofLen {
		return p, errors.New("proof longer than " + strconv.Itoa(MaxProofLen) + " bytes")
	}
	header, rest, ok1 := strings.Cut(proof, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.IndexByte(sig, '.') >= 0 {
		return p, errors.New("proof is not three dot-separated parts")
	}
	ph, cached := parsedHeader{}, false
	if c != nil {
		ph, cached = c.m[header]
	}
	if cached {
		if !accepted(ph.alg.name, algs) {
			return p, errors.New("proof alg is not an accepted algorithm")
		}
	} else {
		var err error
		if ph, err = parseHeader(header, algs); err != nil {
			return p, err
		}
	}
	sigBytes, err := decodePart(sig)
	if err != nil {
		return p, errors.New("proof signature: " + err.Error())
	}
	claims, err := decodeObject(payload, payloadMembers)
	if err != nil {
		return p, errors.New("proof payload: " + err.Error())
	}
	if err := p.readClaims(claims); err != nil {
		return Proof{}, err
	}
	if !verify(ph.key, []byte(proof[:len(header)+1+len(payload)]), sigBytes) {
		return Proof{}, errors.New("proof signature is not valid")
	}
	p.JKT = ph.jkt
	if c != nil && !cached {
		if len(c.m) >= MaxCachedHeaders {
			clear(c.m)
		}
		c.m[header] = ph
	}
	return p, nil
}

// parseHeader checks a proof's header: typ, an accepted alg, no crit, and a
// public jwk of the alg's type and size; it returns the key and its
// thumbprint.
func parseHeader(header string, algs []string) (parsedHeader, error) {
	var ph parsedHeader
	h, err := decodeObject(header, headerMembers)
	if err != nil {
		return ph, errors.New("proof header: " + err.Error())
	}
	if typ := h.Get("typ"); typ.Type != gjson.String || typ.Str != "dpop+jwt" {
		return ph, errors.New(`proof typ is not "dpop+jwt"`)
	}
	if ph.alg, err = algorithmOf(h.Get("alg"), algs); err != nil {
		return ph, err
	}
	if h.Get("crit").Exists() {
		return ph, errors.New("proof header has crit")
	}
	jwk := h.Get("jwk")
	if !jwk.IsObject() {
		return ph, errors.New("proof jwk: not a JSON object")
	}
	fields := readJWK(jwk)
	if ph.key, err = publicKey(ph.alg, &fields); err != nil {
		return ph, errors.New("proof jwk: " + err.Error())
	}
	if ph.jkt, err = thumbprint(&fields); err != nil {
		return ph, errors.New("proof jwk: " + err.Error()) // not reached: publicKey checked the members
	}
	return ph, nil
}

// accepted reports whether alg is in algs.
func accepted(alg string, algs []string) bool { return slices.Contains(algs, alg) }

// readClaims reads the payload's claims into p.
func (p *Proof) readClaims(c gjson.Result) error {
	jti := c.Get("jti")
	if jti.Type != gjson.String || jti.Str == "" || len(jti.Str) > MaxJTILen {
		return errors.New("proof jti is not a string of 1 to " + strconv.Itoa(MaxJTILen) + " bytes")
	}
	htm := c.Get("htm")
	if htm.Type != gjson.String || htm.Str == "" {
		return errors.New("proof htm is not a method")
	}
	htu := c.Get("htu")
	if htu.Type != gjson.String {
		return errors.New("proof htu is not a string")
	}
	u, ok := normalizeURI(htu.Str)
	if !ok {
		return errors.New("proof htu is not an http or https URI")
	}
	iat := c.Get("iat")
	if iat.Type != gjson.Number || math.IsNaN(iat.Num) || iat.Num < 0 || iat.Num > 1<<40 {
		return errors.New("proof iat is not a NumericDate")
	}
	sec, frac := math.Modf(iat.Num)
	p.IAT = time.Unix(int64(sec), int64(frac*float64(time.Second)))
	for _, m := range []struct {
		name string
		dst  *string
	}{{"ath", &p.ATH}, {"nonce", &p.Nonce}} {
		switch v := c.Get(m.name); {
		case !v.Exists():
		case v.Type != gjson.String || v.Str == "" || len(v.Str) > MaxNonceLen:
			return errors.New("proof " + m.name + " is not a string of 1 to " + strconv.Itoa(MaxNonceLen) + " bytes")
		default:
			*m.dst = v.Str
		}
	}
	p.JTI, p.HTM, p.HTU = jti.Str, htm.Str, u
	return nil
}

// Check checks the proof against the request it came with, RFC 9449 §4.3
// items 8, 9, 11 and 12:
//
//	htm  equals method (methods are case-sensitive)
//	htu  equals uri (scheme://authority/path; a query or fragment is ignored),
//	     both normalised as RFC 3986 §6.2.2 and §6.2.3 say: scheme and host in
//	     lower case, the default port and an empty port dropped, an empty path
//	     made "/", percent-encodings in upper case and those of unreserved
//	     characters decoded, dot segments removed
//	iat  at most window from now, either side
//	ath  equals base64url(SHA-256(token)) when token is not empty; a proof
//	     without ath is refused then
//
// The nonce and the jti are the caller's: see ValidNonce.
func (p Proof) Check(method, uri, token string, now time.Time, window time.Duration) error {
	if p.HTM != method {
		return errors.New("proof htm is not the request's method")
	}
	if u, ok := normalizeURI(uri); !ok || u != p.HTU {
		return errors.New("proof htu is not the request's URI")
	}
	if d := now.Sub(p.IAT); d > window || d < -window {
		return errors.New("proof iat is outside the accepted window")
	}
	if token != "" {
		if p.ATH == "" {
			return errors.New("proof has no ath")
		}
		if p.ATH != TokenHash(token) {
			return errors.New("proof ath is not the access token's hash")
		}
	}
	return nil
}

// TokenHash is the ath of a proof for token: base64url(SHA-256(token)).
func TokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// decodeObject decodes a base64url part holding a JSON object in which none
// of unique repeats, bounding its nesting before gjson sees it.
func decodeObject(part string, unique []string) (gjson.Result, error) {
	raw, err := decodePart(part)
	if err != nil {
		return gjson.Result{}, err
	}
	return jsonlimit.Object(string(raw), unique...)
}

// decodePart decodes canonical base64url: the alphabet only (Go's decoder
// skips CR and LF), no padding, and zero unused bits in the last character
// (Strict), so that one value has one encoding.
func decodePart(s string) ([]byte, error) {
	if !jwt.IsBase64URL(s) {
		return nil, errors.New("empty or not base64url")
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, errors.New("not canonical base64url")
	}
	return b, nil
}
