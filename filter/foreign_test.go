package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/binary"
)

// envoyVerifySignature stands in for Envoy's verify_signature foreign
// function in the emulator: it reads VerifySignatureArguments (hash name,
// DER public key, signature, text) and answers VerifySignatureResult, as
// Envoy 1.40 does with BoringSSL (ECDSA with an ASN.1 signature, RSA
// PKCS #1 v1.5). The e2e tests run the real one.
func envoyVerifySignature(args []byte) []byte {
	fields := map[uint64][]byte{}
	for len(args) > 0 {
		tag, n := binary.Uvarint(args)
		if n <= 0 || tag&7 != 2 {
			return verifyResult(false)
		}
		args = args[n:]
		size, n := binary.Uvarint(args)
		if n <= 0 || size > uint64(len(args)-n) {
			return verifyResult(false)
		}
		fields[tag>>3] = args[n : n+int(size)]
		args = args[n+int(size):]
	}
	var h crypto.Hash
	var digest []byte
	switch text := fields[4]; string(fields[1]) {
	case "sha256":
		d := sha256.Sum256(text)
		h, digest = crypto.SHA256, d[:]
	case "sha384":
		d := sha512.Sum384(text)
		h, digest = crypto.SHA384, d[:]
	case "sha512":
		d := sha512.Sum512(text)
		h, digest = crypto.SHA512, d[:]
	default:
		return verifyResult(false)
	}
	key, err := x509.ParsePKIXPublicKey(fields[2])
	if err != nil {
		return verifyResult(false)
	}
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		return verifyResult(ecdsa.VerifyASN1(k, digest, fields[3]))
	case *rsa.PublicKey:
		return verifyResult(rsa.VerifyPKCS1v15(k, h, digest, fields[3]) == nil)
	}
	return verifyResult(false)
}

func verifyResult(ok bool) []byte {
	if ok {
		return []byte{1 << 3, 1}
	}
	return []byte{1 << 3, 0}
}
