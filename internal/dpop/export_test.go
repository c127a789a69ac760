package dpop

import "github.com/phantom-token/envoy-phantom-token/internal/jwt"

// Hooks for the tests of package dpop_test, which verify signatures with
// package gosig (gosig imports dpop).
var (
	NormalizeURI      = normalizeURI
	DecodePart        = decodePart
	IsBase64URL       = jwt.IsBase64URL
	ThumbprintMembers = thumbprintMembers
	NonceMAC          = nonceMAC
)
