package cors

import "testing"

func TestPreflight(t *testing.T) {
	// preflight is a browser's preflight; each row changes one thing.
	preflight := Request{Method: "OPTIONS", Origin: "https://app.example", RequestMethod: "POST", EndOfStream: true}
	with := func(f func(*Request)) Request { r := preflight; f(&r); return r }
	tests := []struct {
		name string
		r    Request
		want bool
	}{
		{"OPTIONS with Origin and Access-Control-Request-Method", preflight, true},
		{"content-length 0", with(func(r *Request) { r.ContentLength = "0" }), true},
		{"content-length 00", with(func(r *Request) { r.ContentLength = "00" }), true},
		{"OPTIONS without Origin", with(func(r *Request) { r.Origin = "" }), false},
		{"OPTIONS without Access-Control-Request-Method", with(func(r *Request) { r.RequestMethod = "" }), false},
		{"OPTIONS with neither", with(func(r *Request) { r.Origin, r.RequestMethod = "", "" }), false},
		{"Origin only spaces (HTTP/2)", with(func(r *Request) { r.Origin = "   " }), false},
		{"Origin only a tab (HTTP/2)", with(func(r *Request) { r.Origin = "\t" }), false},
		{"Access-Control-Request-Method only spaces (HTTP/2)", with(func(r *Request) { r.RequestMethod = "  " }), false},
		{"Access-Control-Request-Method space and tab (HTTP/2)", with(func(r *Request) { r.RequestMethod = " \t " }), false},
		{"Origin with surrounding whitespace", with(func(r *Request) { r.Origin = " https://app.example\t" }), true},
		{"content-length 5: a body", with(func(r *Request) { r.ContentLength = "5" }), false},
		{"content-length 05: a body", with(func(r *Request) { r.ContentLength = "05" }), false},
		{"content-length unparsable", with(func(r *Request) { r.ContentLength = "zero" }), false},
		{"content-length negative", with(func(r *Request) { r.ContentLength = "-0" }), false},
		{"transfer-encoding chunked", with(func(r *Request) { r.TransferEncoding = true }), false},
		{"headers do not end the stream (HTTP/2 body without content-length)", with(func(r *Request) { r.EndOfStream = false }), false},
		{"GET with both", with(func(r *Request) { r.Method = "GET" }), false},
		{"lower-case method is another method", with(func(r *Request) { r.Method = "options" }), false},
	}
	for _, tt := range tests {
		if got := Preflight(tt.r); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}
