package main

import (
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
)

// The host calls the filter makes. They are variables so that tests (Go mode)
// can make any of them fail or panic and check that every request still gets
// exactly one outcome.
var (
	getHeader     = requestHeader
	getProperty   = property
	getHeaders    = proxywasm.GetHttpRequestHeaders
	callForeign   = proxywasm.CallForeignFunction
	replaceHeader = proxywasm.ReplaceHttpRequestHeader
	removeHeader  = proxywasm.RemoveHttpRequestHeader
	addHeader     = proxywasm.AddHttpRequestHeader
	sendReply     = proxywasm.SendHttpResponse
	resume        = proxywasm.ResumeHttpRequest
	setEffective  = proxywasm.SetEffectiveContext
	dispatchCall  = proxywasm.DispatchHttpCall
	callHeaders   = proxywasm.GetHttpCallResponseHeaders
	callBody      = proxywasm.GetHttpCallResponseBody
	getShared     = proxywasm.GetSharedData
	setShared     = proxywasm.SetSharedData
	enqueue       = proxywasm.EnqueueSharedQueue
	registerQueue = proxywasm.RegisterSharedQueue
	dequeue       = proxywasm.DequeueSharedQueue
	setTick       = proxywasm.SetTickPeriodMilliSeconds
)

// The properties the filter reads (serialised paths: names joined by NUL),
// only for a configuration with routes or route_metadata.
const (
	propRouteName     = "xds\x00route_name"
	propRouteMetadata = "xds\x00route_metadata"
	propVHostMetadata = "xds\x00virtual_host_metadata"
	// propCertDigest is the hex SHA-256 of the connection's client
	// certificate; read only for a certificate-bound token.
	propCertDigest = "connection\x00sha256_peer_certificate_digest"
)

// hostError is a host call that failed with an ABI status (0: a failure the
// SDK reported without one).
type hostError struct {
	call   string
	status uint32
}

func (e hostError) Error() string {
	return e.call + " failed with status " + strconv.Itoa(int(e.status))
}
