// Package cors recognises a CORS preflight request, which the filter forwards
// without authentication (Fetch: a preflight never carries credentials).
package cors

// Request is what the preflight rule reads of a request that has no
// Authorization header (one that has it is never a preflight, and the
// filter does not ask).
type Request struct {
	Method        string
	Origin        string // "" when absent
	RequestMethod string // Access-Control-Request-Method, "" when absent
	// ContentLength is the content-length header's value, "" when absent.
	ContentLength string
	// TransferEncoding is true when the request has a transfer-encoding
	// header, whatever its value.
	TransferEncoding bool
	// EndOfStream is true when the headers end the request: no body (nor
	// trailers) follows. Over HTTP/2 a body needs no content-length.
	EndOfStream bool
}

// Preflight reports whether a request without an Authorization header is a
// CORS preflight, which goes on unauthenticated:
//
//	:method                        OPTIONS (exactly; methods are case-sensitive)
//	Origin                         holds a character other than space or tab
//	Access-Control-Request-Method  holds a character other than space or tab
//	body                           none: the headers end the stream, no
//	                               content-length other than 0, no
//	                               transfer-encoding
//
// HTTP/1.1 strips a value made only of spaces or tabs to empty, HTTP/2 lets
// it through; both count as absent here. A preflight never has a body
// (Fetch), so an OPTIONS that has one is authenticated like any request:
// nothing a client sends without a token reaches the upstream as a body.
func Preflight(r Request) bool {
	return r.Method == "OPTIONS" && hasText(r.Origin) && hasText(r.RequestMethod) &&
		r.EndOfStream && zeroLength(r.ContentLength) && !r.TransferEncoding
}

// hasText reports whether s holds a character other than HTTP's optional
// whitespace (space, horizontal tab).
func hasText(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' && s[i] != '\t' {
			return true
		}
	}
	return false
}

// zeroLength reports whether a content-length value announces no body:
// absent, or a decimal zero. Anything else, unparsable values included,
// counts as a body.
func zeroLength(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] != '0' {
			return false
		}
	}
	return true
}
