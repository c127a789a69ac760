package main

import (
	"strconv"

	"github.com/phantom-token/envoy-phantom-token/filter/abi"
)

// The host calls the filter makes. They are variables so that tests (Go mode)
// can make any of them fail or panic and check that every request still gets
// exactly one outcome.
var (
	getHeader     = requestHeader
	getProperty   = property
	getHeaders    = abi.GetHttpRequestHeaders
	callForeign   = abi.CallForeignFunction
	replaceHeader = abi.ReplaceHttpRequestHeader
	removeHeader  = abi.RemoveHttpRequestHeader
	addHeader     = abi.AddHttpRequestHeader
	sendReply     = abi.SendHttpResponse
	resume        = abi.ResumeHttpRequest
	setEffective  = abi.SetEffectiveContext
	dispatchCall  = abi.DispatchHttpCall
	callHeaders   = abi.GetHttpCallResponseHeaders
	callBody      = abi.GetHttpCallResponseBody
	getShared     = abi.GetSharedData
	setShared     = abi.SetSharedData
	enqueue       = abi.EnqueueSharedQueue
	registerQueue = abi.RegisterSharedQueue
	dequeue       = abi.DequeueSharedQueue
	setTick       = abi.SetTickPeriodMilliSeconds
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
