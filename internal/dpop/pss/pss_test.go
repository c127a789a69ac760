package pss

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"testing"

	"github.com/phantom-token/envoy-phantom-token/internal/dpop"
)

// The tests check Verify against Go's crypto/rsa (SignPSS, VerifyPSS), which
// the tests may link: they do not ship in the module.

// readKey reads a key from testdata (made with openssl genpkey, and Go for
// the 2049-bit one): kept, so that fuzz inputs mean the same in every run and
// the tests need not make primes.
func readKey(t testing.TB, file string) *rsa.PrivateKey {
	t.Helper()
	b, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal(file + ": no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*rsa.PrivateKey)
}

// fixedKey is the 2048-bit key with e = 65537.
func fixedKey(t testing.TB) *rsa.PrivateKey { return readKey(t, "rsa2048-e65537.pem") }

// testKeys are keys of the sizes and exponents Verify must handle: the
// bounds, a modulus whose encoded message is a byte shorter (2049 bits),
// word counts that are not powers of two, small and large exponents.
func testKeys(t testing.TB) map[string]*rsa.PrivateKey {
	keys := map[string]*rsa.PrivateKey{}
	for name, file := range map[string]string{
		"2048, e 65537":  "rsa2048-e65537.pem",
		"2048, e 5":      "rsa2048-e5.pem",
		"2049, e 65537":  "rsa2049-e65537.pem",
		"2056, e 3":      "rsa2056-e3.pem",
		"3072, e 2^31-1": "rsa3072-e2147483647.pem",
		"4100, e 65537":  "rsa4100-e65537.pem",
		"8192, e 65537":  "rsa8192-e65537.pem",
	} {
		keys[name] = readKey(t, file)
	}
	return keys
}

var hashes = map[string]crypto.Hash{"PS256": crypto.SHA256, "PS384": crypto.SHA384, "PS512": crypto.SHA512}

func jwsKey(alg string, k *rsa.PublicKey) dpop.Key {
	return dpop.Key{Alg: alg, N: k.N.Bytes(), E: big.NewInt(int64(k.E)).Bytes()}
}

func digest(h crypto.Hash, input []byte) []byte {
	d := h.New()
	d.Write(input)
	return d.Sum(nil)
}

// TestVerifyValid: signatures made by crypto/rsa's SignPSS with a salt as
// long as the hash verify, for every PS alg and key; the same signature
// for another input, alg or key does not.
func TestVerifyValid(t *testing.T) {
	input := []byte("eyJ0eXAiOiJkcG9wK2p3dCJ9.eyJqdGkiOiIxIn0")
	other := testKeys(t)["2048, e 65537"]
	for name, k := range testKeys(t) {
		for alg, h := range hashes {
			t.Run(name+" "+alg, func(t *testing.T) {
				sig, err := rsa.SignPSS(rand.Reader, k, h, digest(h, input), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
				if err != nil {
					t.Fatal(err)
				}
				key := jwsKey(alg, &k.PublicKey)
				if !Verify(key, input, sig) {
					t.Fatal("valid signature refused")
				}
				if Verify(key, []byte("eyJ0eXAiOiJkcG9wK2p3dCJ9.eyJqdGkiOiIyIn0"), sig) {
					t.Error("signature of another input accepted")
				}
				for alg2 := range hashes {
					if alg2 != alg && Verify(jwsKey(alg2, &k.PublicKey), input, sig) {
						t.Errorf("accepted as %s", alg2)
					}
				}
				if k.N.Cmp(other.N) != 0 && Verify(jwsKey(alg, &other.PublicKey), input, sig) {
					t.Error("accepted by another key")
				}
			})
		}
	}
}

// encoding is what emsaEncode makes, changed by a test row.
type encoding struct {
	saltLen  int  // -1: the hash's length
	trailer  byte // 0: 0xbc
	topBits  bool // set the lowest bit above emBits
	above    bool // a byte 0x01 before EM, when EM is a byte shorter than n
	noOne    bool // no 0x01 before the salt
	psByte   byte // a nonzero byte in PS
	wrongH   bool // H computed over another mHash
	maskSeed bool // DB masked with another seed than H
}

// emsaEncode is EMSA-PSS-ENCODE (RFC 8017 §9.1.1) for emBits, with the
// changes e asks for.
func emsaEncode(t testing.TB, h crypto.Hash, mHash []byte, emBits int, e encoding) []byte {
	t.Helper()
	hLen := h.Size()
	sLen := e.saltLen
	if sLen < 0 {
		sLen = hLen
	}
	emLen := (emBits + 7) / 8
	salt := make([]byte, sLen)
	rand.Read(salt)
	hashed := mHash
	if e.wrongH {
		hashed = digest(h, []byte("another message"))
	}
	H := digest(h, append(append(make([]byte, 8), hashed...), salt...))
	dbLen := emLen - hLen - 1
	db := make([]byte, dbLen)
	ps := dbLen - sLen - 1
	if ps < 0 {
		t.Fatalf("salt of %d bytes does not fit", sLen)
	}
	if !e.noOne {
		db[ps] = 1
	}
	if e.psByte != 0 {
		db[0] = e.psByte
	}
	copy(db[ps+1:], salt)
	seed := H
	if e.maskSeed {
		seed = digest(h, []byte("another seed"))
	}
	mask := mgf1Test(h, seed, dbLen)
	for i := range db {
		db[i] ^= mask[i]
	}
	top := byte(0xff >> (8*emLen - emBits))
	db[0] &= top
	if e.topBits {
		if top == 0xff {
			t.Fatal("no bits above emBits")
		}
		db[0] |= top + 1
	}
	trailer := e.trailer
	if trailer == 0 {
		trailer = 0xbc
	}
	em := append(append(db, H...), trailer)
	if e.above {
		em = append([]byte{1}, em...)
	}
	return em
}

// mgf1Test is MGF1 written apart from the package's, for the tests.
func mgf1Test(h crypto.Hash, seed []byte, n int) []byte {
	var out []byte
	for c := 0; len(out) < n; c++ {
		out = append(out, digest(h, append(append([]byte(nil), seed...), byte(c>>24), byte(c>>16), byte(c>>8), byte(c)))...)
	}
	return out[:n]
}

// rawSign returns m^d mod n as k bytes: a "signature" of any encoded
// message m < n.
func rawSign(k *rsa.PrivateKey, m []byte) []byte {
	s := new(big.Int).Exp(new(big.Int).SetBytes(m), k.D, k.N)
	return s.FillBytes(make([]byte, (k.N.BitLen()+7)/8))
}

// TestVerifyHostile: encoded messages that break one rule of
// EMSA-PSS-VERIFY, signatures out of range or of the wrong length, and keys
// out of bounds, are refused. Each encoded message is also checked with
// crypto/rsa.VerifyPSS, which must agree.
func TestVerifyHostile(t *testing.T) {
	input := []byte("header.payload")
	for _, keyName := range []string{"2048, e 65537", "2049, e 65537"} {
		k := testKeys(t)[keyName]
		emBits := k.N.BitLen() - 1
		h := crypto.SHA256
		mHash := digest(h, input)
		type row struct {
			name  string
			enc   encoding
			valid bool
		}
		rows := []row{
			{"as RFC 7518 says (the test encoder works)", encoding{saltLen: -1}, true},
			{"salt of 0 bytes", encoding{saltLen: 0}, false},
			{"salt of 20 bytes", encoding{saltLen: 20}, false},
			{"salt of 33 bytes", encoding{saltLen: 33}, false},
			{"salt as long as it fits", encoding{saltLen: (emBits+7)/8 - 32 - 2}, false},
			{"trailer 0xbd", encoding{saltLen: -1, trailer: 0xbd}, false},
			{"trailer 0x01", encoding{saltLen: -1, trailer: 0x01}, false},
			{"no 0x01 before the salt", encoding{saltLen: -1, noOne: true}, false},
			{"a nonzero byte in PS", encoding{saltLen: -1, psByte: 0x02}, false},
			{"H over another message", encoding{saltLen: -1, wrongH: true}, false},
			{"DB masked with another seed", encoding{saltLen: -1, maskSeed: true}, false},
		}
		if emBits%8 != 0 {
			rows = append(rows, row{"bits above emBits set", encoding{saltLen: -1, topBits: true}, false})
		} else { // EM is a byte shorter than n
			rows = append(rows, row{"a nonzero byte above EM", encoding{saltLen: -1, above: true}, false})
		}
		for _, r := range rows {
			t.Run(keyName+": "+r.name, func(t *testing.T) {
				// Below n, or rawSign would sign another message (the
				// salt is random: the bit above emBits may make em ≥ n).
				em := emsaEncode(t, h, mHash, emBits, r.enc)
				for tries := 0; new(big.Int).SetBytes(em).Cmp(k.N) >= 0; tries++ {
					if tries == 100 {
						t.Fatal("no encoded message below n")
					}
					em = emsaEncode(t, h, mHash, emBits, r.enc)
				}
				sig := rawSign(k, em)
				want := rsa.VerifyPSS(&k.PublicKey, h, mHash, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
				if want != r.valid {
					t.Fatalf("crypto/rsa says %v, the row %v", want, r.valid)
				}
				if got := Verify(jwsKey("PS256", &k.PublicKey), input, sig); got != r.valid {
					t.Errorf("Verify = %v", got)
				}
			})
		}
	}

	k := testKeys(t)["2048, e 65537"]
	key := jwsKey("PS256", &k.PublicKey)
	h := crypto.SHA256
	good, err := rsa.SignPSS(rand.Reader, k, h, digest(h, input), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	if err != nil {
		t.Fatal(err)
	}
	// A valid signature plus n, where it fits in len(n) bytes: the same
	// number mod n, refused as RFC 8017 §5.2.2 says (s < n).
	var plusN []byte
	for tries := 0; plusN == nil; tries++ {
		if tries == 200 {
			t.Fatal("no signature s with s+n below 2^2048")
		}
		s, err := rsa.SignPSS(rand.Reader, k, h, digest(h, input), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		if err != nil {
			t.Fatal(err)
		}
		if sum := new(big.Int).Add(new(big.Int).SetBytes(s), k.N); sum.BitLen() <= 8*len(s) {
			plusN = sum.FillBytes(make([]byte, len(s)))
		}
	}
	pkcs1, err := rsa.SignPKCS1v15(rand.Reader, k, h, digest(h, input))
	if err != nil {
		t.Fatal(err)
	}
	n := k.N.Bytes()
	nPlus := new(big.Int).Add(k.N, big.NewInt(5)).Bytes()
	ones := make([]byte, len(n))
	for i := range ones {
		ones[i] = 0xff
	}
	withN := func(n []byte) dpop.Key { return dpop.Key{Alg: "PS256", N: n, E: key.E} }
	withE := func(e ...byte) dpop.Key { return dpop.Key{Alg: "PS256", N: key.N, E: e} }
	evenN := append([]byte(nil), n...)
	evenN[len(evenN)-1] ^= 1
	rows := []struct {
		name string
		key  dpop.Key
		sig  []byte
	}{
		{"signature equal to the modulus", key, n},
		{"signature above the modulus", key, nPlus},
		{"signature of all ones", key, ones},
		{"a valid signature plus the modulus", key, plusN},
		{"signature a byte short", key, good[1:]},
		{"signature with a leading zero byte", key, append([]byte{0}, good...)},
		{"empty signature", key, nil},
		{"signature of zero", key, make([]byte, len(n))},
		{"signature of one", key, append(make([]byte, len(n)-1), 1)},
		{"PKCS #1 v1.5 signature (RS256)", key, pkcs1},
		{"PS256 signature checked as RS256", dpop.Key{Alg: "RS256", N: key.N, E: key.E}, good},
		{"PS256 signature checked as EdDSA", dpop.Key{Alg: "EdDSA", X: make([]byte, 32)}, good},
		{"modulus of 2047 bits", withN(append([]byte{0x7f}, n[1:]...)), good},
		{"modulus of 8200 bits", withN(append(make([]byte, 1025), 0x81)), good},
		{"even modulus", withN(evenN), good},
		{"no modulus", withN(nil), good},
		{"exponent 1", withE(1), good},
		{"exponent 65536 (even)", withE(1, 0, 0), good},
		{"exponent 2^31+1", withE(0x80, 0, 0, 1), good},
		{"exponent of 5 bytes", withE(0, 1, 0, 0, 1), good},
		{"no exponent", withE(), good},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			if Verify(r.key, input, r.sig) {
				t.Error("accepted")
			}
		})
	}
	if !Verify(key, input, good) {
		t.Error("the good signature refused")
	}
	// A modulus with a leading zero byte is the same modulus.
	if !Verify(withN(append([]byte{0}, n...)), input, good) {
		t.Error("refused with n's leading zero byte")
	}
}

// TestPublicOp: s^e mod n agrees with math/big for edge values of s.
func TestPublicOp(t *testing.T) {
	for name, k := range testKeys(t) {
		n := k.N.Bytes()
		size := len(n)
		nMinus1 := new(big.Int).Sub(k.N, big.NewInt(1)).FillBytes(make([]byte, size))
		random, err := rand.Int(rand.Reader, k.N)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range [][]byte{make([]byte, size), append(make([]byte, size-1), 1), append(make([]byte, size-1), 2), nMinus1, random.FillBytes(make([]byte, size))} {
			got, ok := publicOp(n, uint32(k.E), s)
			want := new(big.Int).Exp(new(big.Int).SetBytes(s), big.NewInt(int64(k.E)), k.N).FillBytes(make([]byte, size))
			if !ok || string(got) != string(want) {
				t.Errorf("%s: s^e mod n wrong for s = %x…", name, s[:4])
			}
		}
	}
}

// FuzzVerify: Verify agrees with crypto/rsa.VerifyPSS (salt as long as the
// hash) for the fixed key, on encoded messages EMSA-PSS-ENCODE made and then
// changed by the fuzzer (xor, at an offset), raw-signed so that they reach
// the padding checks, and on signatures the fuzzer writes itself.
func FuzzVerify(f *testing.F) {
	f.Add([]byte("header.payload"), uint8(0), uint16(0), []byte{}, false)
	f.Add([]byte("header.payload"), uint8(1), uint16(255), []byte{1}, false)
	f.Add([]byte("x"), uint8(2), uint16(0), []byte{0x80}, false)
	f.Add([]byte("x"), uint8(0), uint16(200), []byte{0, 0, 0, 1}, false)
	f.Add([]byte("x"), uint8(0), uint16(0), []byte{1, 2, 3}, true)
	k := fixedKey(f)
	emBits := k.N.BitLen() - 1
	algs := []string{"PS256", "PS384", "PS512"}
	f.Fuzz(func(t *testing.T, input []byte, alg uint8, offset uint16, change []byte, rawSig bool) {
		name := algs[int(alg)%len(algs)]
		h := hashes[name]
		mHash := digest(h, input)
		var sig []byte
		if rawSig {
			sig = change
		} else {
			em := emsaEncode(t, h, mHash, emBits, encoding{saltLen: -1})
			for i, c := range change {
				if j := int(offset) + i; j < len(em) {
					em[j] ^= c
				}
			}
			if new(big.Int).SetBytes(em).Cmp(k.N) >= 0 {
				return
			}
			sig = rawSign(k, em)
		}
		want := rsa.VerifyPSS(&k.PublicKey, h, mHash, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		if got := Verify(jwsKey(name, &k.PublicKey), input, sig); got != want {
			t.Errorf("Verify = %v, crypto/rsa %v", got, want)
		}
	})
}
