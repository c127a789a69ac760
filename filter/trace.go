package main

import (
	"github.com/phantom-token/envoy-phantom-token/filter/abi"

	"github.com/phantom-token/envoy-phantom-token/internal/introspection"
)

// traceContext is what the introspection call made for this request carries
// of its headers (see introspection.TraceContext). Only a request that
// starts a flight asks, never a cache hit or a request that joins a flight,
// so that a hit costs no more host calls than without it. One read of the
// whole header map gives every name, and a DPoP request's was read already,
// for its proof. A read that fails gives none: tracing never fails a
// request.
func (h *httpContext) traceContext() [][2]string {
	if len(h.cfg.TraceHeaders) == 0 {
		return nil
	}
	headers := h.headers
	if headers == nil {
		var err error
		if headers, err = getHeaders(); err != nil {
			abi.LogDebug("phantom-token: cannot read the request's headers for its trace context: " + err.Error())
			return nil
		}
	}
	return introspection.TraceContext(h.cfg, headers)
}
