package config

import (
	"slices"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// DefaultTraceHeaders are the request headers copied to the introspection
// call unless trace_headers says otherwise: W3C Trace Context and Envoy's
// request ID, so that a trace shows the identity server's span under the
// request that needed it.
var DefaultTraceHeaders = []string{"traceparent", "tracestate", "x-request-id"}

// MaxTraceHeaders bounds trace_headers.
const MaxTraceHeaders = 16

// callHeaders are the headers the introspection call sets itself: a client's
// value must never replace or join them.
var callHeaders = []string{"authorization", "content-type", "accept", "content-length", "host"}

// traceHeaders reads trace_headers: an array of header names, lower-cased,
// each a header name the call may carry, each once. [] turns the copy off
// (nil).
func (p *parser) traceHeaders(key string, def []string) []string {
	v := p.get(key)
	if !v.Exists() {
		return def
	}
	if !v.IsArray() {
		p.setErr(p.fail(key, "must be an array of header names ([] copies none)"))
		return def
	}
	list := v.Array()
	if len(list) > MaxTraceHeaders {
		p.setErr(p.fail(key, "has more than "+strconv.Itoa(MaxTraceHeaders)+" names"))
		return def
	}
	var names []string
	for i, e := range list {
		at := key + "[" + strconv.Itoa(i) + "]"
		if e.Type != gjson.String {
			p.setErr(p.fail(at, "must be a string: an HTTP header name"))
			return def
		}
		name := strings.ToLower(e.Str)
		if problem := checkUpstreamHeader(name); problem != "" {
			p.setErr(p.fail(at, problem))
			return def
		}
		if slices.Contains(callHeaders, name) {
			p.setErr(p.fail(at, "must not be "+strconv.Quote(name)+", which the introspection call sets itself"))
			return def
		}
		if slices.Contains(names, name) {
			p.setErr(p.fail(at, "names "+strconv.Quote(name)+" a second time"))
			return def
		}
		names = append(names, name)
	}
	return names
}
