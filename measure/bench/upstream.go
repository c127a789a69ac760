package main

import (
	"io"
	"net"
	"net/http"
)

// upstreamBody is what the bench's upstream answers to every request: the
// same few bytes whatever the request carries, as most APIs do. (The e2e
// echo fixture answers with the request's headers, so a request that carries
// a JWT upstream would also get a larger answer back, a cost of the echo and
// not of the filter.)
var upstreamBody = []byte(`{"ok":true}` + "\n")

// upstream is a loopback HTTP server answering 200 and upstreamBody.
type upstream struct {
	srv  *http.Server
	addr string
}

func startUpstream() (*upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(upstreamBody)
	})}
	go func() { _ = srv.Serve(ln) }()
	return &upstream{srv: srv, addr: ln.Addr().String()}, nil
}

func (u *upstream) Close() { _ = u.srv.Close() }
