package dpop

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"

	"github.com/tidwall/gjson"
)

// Algorithms are the JWS algorithms (RFC 7518 §3, RFC 8037 §3.1) a proof may
// be signed with. Parse accepts the ones both here and in its algs: never
// "none" nor an HMAC, whose key a proof cannot carry in public.
var Algorithms = []string{"ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512", "EdDSA"}

// algorithm is what checking a key for one JWS alg takes.
type algorithm struct {
	name string
	kty  string // the JWK key type it needs
	crv  string // EC and OKP: the curve
	size int    // EC: bytes of a coordinate, and of r and s
}

var algorithms = [...]algorithm{
	{name: "ES256", kty: "EC", crv: "P-256", size: 32},
	{name: "ES384", kty: "EC", crv: "P-384", size: 48},
	{name: "ES512", kty: "EC", crv: "P-521", size: 66},
	{name: "PS256", kty: "RSA"},
	{name: "PS384", kty: "RSA"},
	{name: "PS512", kty: "RSA"},
	{name: "RS256", kty: "RSA"},
	{name: "RS384", kty: "RSA"},
	{name: "RS512", kty: "RSA"},
	{name: "EdDSA", kty: "OKP", crv: "Ed25519"},
}

// algorithmOf returns the algorithm the header's alg names, when it is
// supported and in algs.
func algorithmOf(alg gjson.Result, algs []string) (*algorithm, error) {
	if alg.Type != gjson.String {
		return nil, errors.New("proof alg is not a string")
	}
	for i := range algorithms {
		if algorithms[i].name != alg.Str {
			continue
		}
		if accepted(alg.Str, algs) {
			return &algorithms[i], nil
		}
		return nil, errors.New("proof alg is not an accepted algorithm")
	}
	return nil, errors.New("proof alg is not a supported algorithm")
}

// RSA bounds: moduli of 2048 to 4096 bits (smaller ones are breakable;
// larger ones cost verification time), and an odd public exponent of 3 to
// 65537 (what keys use). A proof is verified on every request before its
// token is looked up: with 8192-bit moduli and exponents up to 2^31-1, one
// hostile PS* proof cost about 13 ms under wazero (BenchmarkPublicOpWorst in
// internal/dpop/pss).
const (
	minRSABits = 2048
	maxRSABits = 4096
	maxRSAE    = 65537
)

// jwkFields are the members of a JWK that publicKey and Thumbprint read,
// found in one pass over it (each gjson Get would be a pass of its own).
type jwkFields struct {
	kty, crv, x, y, n, e gjson.Result
	// private is the first member that holds private or symmetric key
	// material (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2), if any.
	private string
	// dup is the first of kty, crv, x, y, n and e that repeats, if any
	// (names compared unescaped).
	dup string
}

// readJWK reads the members of the JSON object jwk.
func readJWK(jwk gjson.Result) jwkFields {
	var f jwkFields
	jwk.ForEach(func(k, v gjson.Result) bool {
		var dst *gjson.Result
		switch name := k.String(); name {
		case "kty", "crv", "x", "y", "n", "e":
			dst = f.field(name)
		case "d", "p", "q", "dp", "dq", "qi", "oth", "k":
			if f.private == "" {
				f.private = name
			}
			return true
		default:
			return true
		}
		if dst.Exists() {
			f.dup = k.String()
			return false
		}
		*dst = v
		return true
	})
	return f
}

// field returns the member called name, one of kty, crv, x, y, n, e.
func (f *jwkFields) field(name string) *gjson.Result {
	switch name {
	case "kty":
		return &f.kty
	case "crv":
		return &f.crv
	case "x":
		return &f.x
	case "y":
		return &f.y
	case "n":
		return &f.n
	}
	return &f.e
}

// Key is a proof's public key, as its jwk gives it, for the proof's alg:
// of the alg's type, in canonical encodings, within the bounds Parse checks.
// Whether an EC point is on its curve is the Verifier's to check (Go's
// crypto/ecdsa and BoringSSL both refuse a point off the curve).
type Key struct {
	Alg  string // the proof's alg, one of Algorithms
	X, Y []byte // EC: the point's coordinates, each of the curve's size; OKP: X, 32 bytes
	N, E []byte // RSA: modulus and public exponent, big-endian, without leading zero bytes
}

// A Verifier reports whether sig is a valid signature of input by k with
// k.Alg, sig as JWS carries it (RFC 7518 §3: ECDSA's r and s as two
// fixed-size big-endian numbers). Package gosig verifies with Go's crypto in
// the module; VerifySignatureArgs prepares Envoy's verify_signature.
type Verifier func(k Key, input, sig []byte) bool

// publicKey reads jwk as a public key for alg:
//
//	EC   kty "EC", crv the alg's curve, x and y of the curve's full size
//	RSA  kty "RSA", n of 2048 to 4096 bits, odd, without leading zero bytes;
//	     e odd, 3 to 65537, without leading zero bytes
//	OKP  kty "OKP", crv "Ed25519", x of 32 bytes
//
// Numbers are canonical base64url (RFC 7518 §2, Base64urlUInt). A JWK with
// a private member (d, p, q, dp, dq, qi, oth, k) is refused, as is one that
// repeats a member read here.
func publicKey(alg *algorithm, jwk *jwkFields) (Key, error) {
	if jwk.dup != "" {
		return Key{}, errors.New("duplicate member " + strconv.Quote(jwk.dup))
	}
	if jwk.private != "" {
		return Key{}, errors.New("has the private member " + strconv.Quote(jwk.private))
	}
	if kty := jwk.kty; kty.Type != gjson.String || kty.Str != alg.kty {
		return Key{}, errors.New("kty is not " + strconv.Quote(alg.kty) + " for " + alg.name)
	}
	if alg.crv != "" {
		if crv := jwk.crv; crv.Type != gjson.String || crv.Str != alg.crv {
			return Key{}, errors.New("crv is not " + strconv.Quote(alg.crv) + " for " + alg.name)
		}
	}
	switch alg.kty {
	case "EC":
		x, err := member(jwk, "x")
		if err != nil {
			return Key{}, err
		}
		y, err := member(jwk, "y")
		if err != nil {
			return Key{}, err
		}
		if len(x) != alg.size || len(y) != alg.size {
			return Key{}, errors.New("x or y is not " + strconv.Itoa(alg.size) + " bytes")
		}
		return Key{Alg: alg.name, X: x, Y: y}, nil
	case "RSA":
		n, err := member(jwk, "n")
		if err != nil {
			return Key{}, err
		}
		e, err := member(jwk, "e")
		if err != nil {
			return Key{}, err
		}
		if n[0] == 0 || e[0] == 0 {
			return Key{}, errors.New("n or e has a leading zero byte")
		}
		if bits := bitLen(n); bits < minRSABits || bits > maxRSABits || n[len(n)-1]&1 == 0 {
			return Key{}, errors.New("n is not an odd modulus of " + strconv.Itoa(minRSABits) + " to " + strconv.Itoa(maxRSABits) + " bits")
		}
		if len(e) > 4 {
			return Key{}, errors.New("e is out of range")
		}
		var ev uint64
		for _, b := range e {
			ev = ev<<8 | uint64(b)
		}
		if ev < 3 || ev > maxRSAE || ev&1 == 0 {
			return Key{}, errors.New("e is not odd or out of range")
		}
		return Key{Alg: alg.name, N: n, E: e}, nil
	default: // OKP, Ed25519
		x, err := member(jwk, "x")
		if err != nil {
			return Key{}, err
		}
		if len(x) != 32 {
			return Key{}, errors.New("x is not 32 bytes")
		}
		return Key{Alg: alg.name, X: x}, nil
	}
}

// member decodes a JWK member holding a canonical base64url string.
func member(jwk *jwkFields, name string) ([]byte, error) {
	v := *jwk.field(name)
	if v.Type != gjson.String {
		return nil, errors.New(name + " is not a string")
	}
	b, err := decodePart(v.Str)
	if err != nil {
		return nil, errors.New(name + " is " + err.Error())
	}
	return b, nil
}

// bitLen is the length in bits of the big-endian number b, b[0] != 0.
func bitLen(b []byte) int {
	n := len(b) * 8
	for c := b[0]; c&0x80 == 0; c <<= 1 {
		n--
	}
	return n
}

// thumbprintMembers are the required members of each key type, in
// lexicographic order (RFC 7638 §3.2; OKP: RFC 8037 §2).
var thumbprintMembers = map[string][]string{
	"EC":  {"crv", "kty", "x", "y"},
	"RSA": {"e", "kty", "n"},
	"OKP": {"crv", "kty", "x"},
}

// Thumbprint is the RFC 7638 thumbprint of a JWK: the base64url SHA-256 of
// the JSON object of its required members only, in lexicographic order,
// without whitespace. Each required member must be a string and hold only
// printable ASCII other than '"' and '\', which JSON writes as is (every
// valid EC, RSA and OKP member does); none of kty, crv, x, y, n and e may
// appear twice; other key types are refused.
func Thumbprint(jwk gjson.Result) (string, error) {
	if !jwk.IsObject() {
		return "", errors.New("not a JSON object")
	}
	f := readJWK(jwk)
	return thumbprint(&f)
}

func thumbprint(jwk *jwkFields) (string, error) {
	names, ok := thumbprintMembers[jwk.kty.Str]
	if jwk.kty.Type != gjson.String || !ok {
		return "", errors.New("kty is not EC, RSA or OKP")
	}
	if jwk.dup != "" {
		return "", errors.New("duplicate member " + strconv.Quote(jwk.dup))
	}
	b := make([]byte, 0, 64+len(jwk.n.Str)+len(jwk.x.Str)+len(jwk.y.Str))
	for i, name := range names {
		v := *jwk.field(name)
		if v.Type != gjson.String || v.Str == "" || !plain(v.Str) {
			return "", errors.New(name + " is not a plain string")
		}
		if i == 0 {
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		b = append(append(append(append(append(b, '"'), name...), `":"`...), v.Str...), '"')
	}
	b = append(b, '}')
	h := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(h[:]), nil
}

// plain: s is printable ASCII without '"' and '\'.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
