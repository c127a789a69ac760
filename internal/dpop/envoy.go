package dpop

import "encoding/binary"

// Envoy's verify_signature foreign function (source/extensions/common/wasm/
// foreign.cc, Envoy 1.40) verifies a signature with BoringSSL in Envoy: about
// a tenth of the CPU of Go's crypto under V8 for ES256 and RS256, and no
// signature code in the module (measure/sigcost, measure/linkcost). Its
// argument is a serialized protobuf:
//
//	message VerifySignatureArguments {
//	  string hash_function = 1;  // "sha256", "sha384", "sha512"
//	  bytes public_key = 2;      // DER SubjectPublicKeyInfo
//	  bytes signature = 3;       // ECDSA: ASN.1 DER; RSA: the raw signature
//	  bytes text = 4;            // what was signed
//	  string public_key_pem = 5; // unused here
//	}
//	message VerifySignatureResult { bool result = 1; string error = 2; }
//
// It calls EVP_DigestVerifyInit with the named hash and default parameters,
// so it checks ECDSA and RSA PKCS #1 v1.5 (ES*, RS*) only: not RSA-PSS (no
// way to ask for PSS padding) nor Ed25519 (which takes no hash).
// BoringSSL refuses an EC point off its curve when it parses the key.

// VerifySignatureArgs returns the argument of verify_signature for sig
// (as JWS carries it) of input by k. ok is false for PS* and EdDSA, which
// verify_signature cannot check.
func VerifySignatureArgs(k Key, input, sig []byte) (args []byte, ok bool) {
	var hash string
	switch k.Alg[len(k.Alg)-3:] {
	case "256":
		hash = "sha256"
	case "384":
		hash = "sha384"
	case "512":
		hash = "sha512"
	default:
		return nil, false // EdDSA
	}
	var spki []byte
	switch k.Alg[:2] {
	case "ES":
		var curve string
		switch k.Alg {
		case "ES256":
			curve = "\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07" // 1.2.840.10045.3.1.7, P-256
		case "ES384":
			curve = "\x06\x05\x2b\x81\x04\x00\x22" // 1.3.132.0.34, P-384
		default:
			curve = "\x06\x05\x2b\x81\x04\x00\x23" // 1.3.132.0.35, P-521
		}
		size := len(k.X)
		if len(k.Y) != size || len(sig) != 2*size {
			return nil, false
		}
		algID := der(0x30, []byte("\x06\x07\x2a\x86\x48\xce\x3d\x02\x01"+curve)) // id-ecPublicKey, the curve
		point := append(append([]byte{0, 4}, k.X...), k.Y...)                    // no unused bits, uncompressed
		spki = der(0x30, append(algID, der(0x03, point)...))
		sig = der(0x30, append(derUint(sig[:size]), derUint(sig[size:])...))
	case "RS":
		rsaKey := der(0x30, append(derUint(k.N), derUint(k.E)...))
		algID := "\x30\x0d\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01\x05\x00" // rsaEncryption, NULL
		spki = der(0x30, append([]byte(algID), der(0x03, append([]byte{0}, rsaKey...))...))
	default:
		return nil, false // PS*
	}
	args = make([]byte, 0, 32+len(spki)+len(sig)+len(input))
	args = protoBytes(args, 1, []byte(hash))
	args = protoBytes(args, 2, spki)
	args = protoBytes(args, 3, sig)
	args = protoBytes(args, 4, input)
	return args, true
}

// VerifySignatureValid reads verify_signature's result: true only when
// result (field 1) is true. A malformed message is false.
func VerifySignatureValid(result []byte) bool {
	valid := false
	for len(result) > 0 {
		tag, n := binary.Uvarint(result)
		if n <= 0 {
			return false
		}
		result = result[n:]
		v, n := binary.Uvarint(result)
		if n <= 0 {
			return false
		}
		result = result[n:]
		switch tag & 7 {
		case 0: // varint
			if tag>>3 == 1 {
				valid = v != 0
			}
		case 2: // length-delimited: skip it
			if v > uint64(len(result)) {
				return false
			}
			result = result[v:]
		default:
			return false
		}
	}
	return valid
}

// protoBytes appends a length-delimited protobuf field.
func protoBytes(b []byte, field int, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(field)<<3|2)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// der is a DER element: tag, definite length (at most 65535 bytes), value.
func der(tag byte, v []byte) []byte {
	b := make([]byte, 0, 4+len(v))
	switch n := len(v); {
	case n < 0x80:
		b = append(b, tag, byte(n))
	case n < 0x100:
		b = append(b, tag, 0x81, byte(n))
	default:
		b = append(b, tag, 0x82, byte(n>>8), byte(n))
	}
	return append(b, v...)
}

// derUint is the DER INTEGER of the unsigned big-endian number v.
func derUint(v []byte) []byte {
	for len(v) > 1 && v[0] == 0 {
		v = v[1:]
	}
	if len(v) == 0 || v[0]&0x80 != 0 {
		v = append([]byte{0}, v...)
	}
	return der(0x02, v)
}
