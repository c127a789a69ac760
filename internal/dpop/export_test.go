package dpop

// Hooks for the tests of package dpop_test, which verify signatures with
// package gosig (gosig imports dpop).
var (
	NormalizeURI      = normalizeURI
	DecodePart        = decodePart
	IsBase64URL       = isBase64URL
	ThumbprintMembers = thumbprintMembers
	NonceMAC          = nonceMAC
)
