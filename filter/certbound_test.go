package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"testing"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

var (
	certA   = sha256.Sum256([]byte("client certificate A"))
	certB   = sha256.Sum256([]byte("client certificate B"))
	x5tA    = base64.RawURLEncoding.EncodeToString(certA[:])
	boundA  = `"cnf":{"x5t#S256":"` + x5tA + `"}`
	dpopJKT = `"cnf":{"jkt":"` + x5tA + `"}`
)

// onConnection gives the next requests a connection whose client
// certificate has the SHA-256 digest (nil: set to a value Envoy never gives).
func (h *host) onConnection(digest []byte) {
	h.t.Helper()
	if err := h.SetProperty([]string{"connection", "sha256_peer_certificate_digest"}, digest); err != nil {
		h.t.Fatal(err)
	}
}

func hexDigest(d [32]byte) []byte { return []byte(hex.EncodeToString(d[:])) }

func TestCertificateBoundTokens(t *testing.T) {
	const invalid = `Bearer realm="api", error="invalid_token"`
	rows := []struct {
		name   string
		config string
		claims string
		cert   []byte // nil: no client certificate
		xfcc   string
		code   uint32 // 0: forwarded
	}{
		{"bound, the same certificate", "", boundA, hexDigest(certA), "", 0},
		{"bound, another certificate", "", boundA, hexDigest(certB), "", 401},
		{"bound, no certificate", "", boundA, nil, "", 401},
		{"bound, an unreadable digest", "", boundA, []byte("zz"), "", 500},
		{"unbound, no certificate", "", "", nil, "", 0},
		{"unbound, required", `,"require_certificate_bound":true`, "", hexDigest(certA), "", 401},
		{"bound, required", `,"require_certificate_bound":true`, boundA, hexDigest(certA), "", 0},
		{"bound to a DPoP key, sent as Bearer", "", dpopJKT, hexDigest(certA), "", 401},
		{"XFCC: the same certificate", `,"client_certificate_source":"x-forwarded-client-cert"`, boundA, hexDigest(certB), `By=spiffe://gw;Hash=` + string(hexDigest(certA)), 0},
		{"XFCC: another certificate", `,"client_certificate_source":"x-forwarded-client-cert"`, boundA, hexDigest(certA), `Hash=` + string(hexDigest(certB)), 401},
		{"XFCC: only an earlier hop's", `,"client_certificate_source":"x-forwarded-client-cert"`, boundA, nil, `Hash=` + string(hexDigest(certA)) + `,By=x`, 401},
		{"XFCC: none", `,"client_certificate_source":"x-forwarded-client-cert"`, boundA, hexDigest(certA), "", 401},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			forEachMode(t, func(t *testing.T, m mode) {
				h := started(t, m, withConfig(row.config))
				if row.cert != nil {
					h.onConnection(row.cert)
				}
				sent := req(authBearer(token))
				if row.xfcc != "" {
					sent = append(sent, [2]string{"x-forwarded-client-cert", row.xfcc})
				}
				e := h.request(sent...)
				jwt := phantomJWT(row.claims)
				e.answer(idsOK(""), jwt)
				switch row.code {
				case 0:
					wantForwarded(t, e, sent, "authorization", "Bearer "+jwt)
				case 401:
					wantReply(t, e, 401, invalid, unauthorizedBody)
				default:
					wantReply(t, e, row.code, "", serverErrorBody)
				}
			})
		})
	}
}

// The binding is checked on every request, cache hits included.
func TestCertificateBindingOnCacheHits(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		h := started(t, m, withConfig(""))
		h.onConnection(hexDigest(certA))
		e := h.request(req(authBearer(token))...)
		e.answer(idsOK(""), phantomJWT(boundA))
		if e.finalAction() != types.ActionContinue {
			t.Fatal("not forwarded with its certificate")
		}
		h.onConnection(hexDigest(certB))
		e = h.request(req(authBearer(token))...)
		if len(e.callouts()) != 0 {
			t.Fatal("not a cache hit")
		}
		wantReply(t, e, 401, `Bearer realm="api", error="invalid_token"`, unauthorizedBody)
		h.onConnection(hexDigest(certA))
		if e := h.request(req(authBearer(token))...); e.finalAction() != types.ActionContinue {
			t.Error("refused with its certificate, from the cache")
		}
	})
}

// An unbound token costs no property read.
func TestUnboundTokenReadsNoCertificate(t *testing.T) {
	h := started(t, modes[0], withConfig(""))
	reads := 0
	old := getProperty
	getProperty = func(path string) ([]byte, error) { reads++; return old(path) }
	t.Cleanup(func() { getProperty = old })
	e := h.request(req(authBearer(token))...)
	e.answer(idsOK(""), phantomJWT(""))
	h.request(req(authBearer(token))...)
	if reads != 0 {
		t.Errorf("%d property reads", reads)
	}
}
