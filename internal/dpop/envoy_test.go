package dpop_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/binary"
	"math/big"
	"testing"

	"github.com/phantom-token/envoy-phantom-token/internal/dpop"
)

// TestVerifySignatureArgs: the arguments hold the hash's name, the key as a
// DER SubjectPublicKeyInfo that x509 reads back as the same key, the
// signature in the form BoringSSL's EVP_DigestVerify takes (ECDSA: ASN.1),
// and the signed text. PS* and EdDSA are not verify_signature's.
func TestVerifySignatureArgs(t *testing.T) {
	input := []byte("header.payload")
	for _, name := range []string{"ES256", "ES384", "ES512", "RS256", "RS512", "PS256", "EdDSA"} {
		t.Run(name, func(t *testing.T) {
			k := key(t, name)
			sig := k.signature(string(input))
			args, ok := dpop.VerifySignatureArgs(keyOf(t, k), input, sig)
			if name == "PS256" || name == "EdDSA" {
				if ok {
					t.Fatalf("arguments made for %s", name)
				}
				return
			}
			if !ok {
				t.Fatal("no arguments")
			}
			f := protoFields(t, args)
			hash := map[string]string{"256": "sha256", "384": "sha384", "512": "sha512"}[name[2:]]
			if string(f[1]) != hash || !bytes.Equal(f[4], input) {
				t.Errorf("hash_function %q, text %q", f[1], f[4])
			}
			pub, err := x509.ParsePKIXPublicKey(f[2])
			if err != nil {
				t.Fatalf("public_key is not a SubjectPublicKeyInfo: %v", err)
			}
			if !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(k.priv.Public()) {
				t.Fatalf("public_key is another key")
			}
			if name[:2] == "ES" {
				if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest(name, input), f[3]) {
					t.Errorf("signature is not the ASN.1 form of r||s")
				}
			} else if !bytes.Equal(f[3], sig) {
				t.Errorf("RSA signature changed")
			}
		})
	}
	t.Run("RSA modulus of 8192 bits (two-byte DER lengths)", func(t *testing.T) {
		n := make([]byte, 1024)
		if _, err := rand.Read(n); err != nil {
			t.Fatal(err)
		}
		n[0] |= 0x80
		n[1023] |= 1
		args, ok := dpop.VerifySignatureArgs(dpop.Key{Alg: "RS256", N: n, E: []byte{1, 0, 1}}, input, make([]byte, 1024))
		if !ok {
			t.Fatal("no arguments")
		}
		pub, err := x509.ParsePKIXPublicKey(protoFields(t, args)[2])
		if err != nil {
			t.Fatal(err)
		}
		if r := pub.(*rsa.PublicKey); r.N.Cmp(new(big.Int).SetBytes(n)) != 0 || r.E != 65537 {
			t.Errorf("key read back as another key")
		}
	})
	t.Run("r and s with high bits and leading zeros", func(t *testing.T) {
		k := keyOf(t, key(t, "ES256"))
		sig := make([]byte, 64)
		sig[0], sig[32], sig[33] = 0x80, 0, 1 // r has its high bit set, s leading zeros
		args, _ := dpop.VerifySignatureArgs(k, input, sig)
		want := append([]byte{0x30, 2 + 33 + 2 + 31, 2, 33, 0}, sig[:32]...)
		want = append(append(want, 2, 31), sig[33:]...)
		if got := protoFields(t, args)[3]; !bytes.Equal(got, want) {
			t.Errorf("signature % x\nwant      % x", got, want)
		}
	})
}

func TestVerifySignatureValid(t *testing.T) {
	tests := []struct {
		name   string
		result string
		valid  bool
	}{
		{"result true", "\x08\x01", true},
		{"result true, empty error", "\x08\x01\x12\x00", true},
		{"error first, then result true", "\x12\x02ab\x08\x01", true},
		{"result false (proto3 omits it), with an error", "\x12\x1cFailed to verify digest. Err", false},
		{"result false written out", "\x08\x00", false},
		{"last result wins", "\x08\x01\x08\x00", false},
		{"empty", "", false},
		{"truncated varint", "\x08", false},
		{"truncated error", "\x08\x01\x12\x05ab", false},
		{"unknown wire type", "\x08\x01\x0d\x00\x00\x00\x00", false},
		{"overlong varint", "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := dpop.VerifySignatureValid([]byte(tt.result)); got != tt.valid {
				t.Errorf("VerifySignatureValid(%q) = %v, want %v", tt.result, got, tt.valid)
			}
		})
	}
}

// keyOf is the dpop.Key Parse gives for a test key's proof.
func keyOf(t *testing.T, k clientKey) dpop.Key {
	t.Helper()
	var got dpop.Key
	_, err := dpop.Parse(k.sign(k.header("", ""), payload()), dpop.Algorithms, func(key dpop.Key, _, _ []byte) bool {
		got = key
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// protoFields decodes a message of length-delimited fields, by number.
func protoFields(t *testing.T, b []byte) map[uint64][]byte {
	t.Helper()
	f := map[uint64][]byte{}
	for len(b) > 0 {
		tag, n := binary.Uvarint(b)
		if n <= 0 || tag&7 != 2 {
			t.Fatalf("bad tag % x", b)
		}
		l, m := binary.Uvarint(b[n:])
		if m <= 0 || uint64(len(b)-n-m) < l {
			t.Fatalf("bad length")
		}
		f[tag>>3] = b[n+m : n+m+int(l)]
		b = b[n+m+int(l):]
	}
	return f
}

func digest(alg string, b []byte) []byte {
	switch alg[2:] {
	case "256":
		h := sha256.Sum256(b)
		return h[:]
	case "384":
		h := sha512.Sum384(b)
		return h[:]
	}
	h := sha512.Sum512(b)
	return h[:]
}
