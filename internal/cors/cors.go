// Package cors recognises a CORS preflight request, which the filter forwards
// without authentication (Fetch: a preflight never carries credentials).
package cors

// Preflight reports whether a request without an Authorization header is a
// CORS preflight: OPTIONS with a non-empty Origin and a non-empty
// Access-Control-Request-Method. A request that carries Authorization is never
// one (the caller does not ask); any other OPTIONS is authenticated.
func Preflight(method, origin, requestMethod string) bool {
	return method == "OPTIONS" && origin != "" && requestMethod != ""
}
