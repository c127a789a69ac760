package config

import (
	"reflect"
	"strings"
	"testing"
)

// trace_headers names the request headers copied to the introspection call:
// the W3C Trace Context pair and Envoy's request ID unless it says otherwise.
func TestTraceHeaders(t *testing.T) {
	tests := []struct {
		name, extra string
		want        []string
	}{
		{"by default traceparent, tracestate and x-request-id", ``, []string{"traceparent", "tracestate", "x-request-id"}},
		{"an empty list copies none", `,"trace_headers":[]`, nil},
		{"a list of its own replaces the default", `,"trace_headers":["x-b3-traceid","x-b3-spanid"]`, []string{"x-b3-traceid", "x-b3-spanid"}},
		{"names are lower-cased", `,"trace_headers":["TraceParent","X-Request-ID"]`, []string{"traceparent", "x-request-id"}},
		{"sixteen names", `,"trace_headers":` + names(16), traceNames(16)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(`{`+minimal+tt.extra+`}`), env)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.TraceHeaders, tt.want) {
				t.Errorf("trace headers %q, want %q", c.TraceHeaders, tt.want)
			}
		})
	}
	t.Run("a route rule has the plugin's", func(t *testing.T) {
		c, err := Parse([]byte(`{`+minimal+`,"trace_headers":["x-trace"],"routes":[{"route":"r","required_scopes":"a"}]}`), env)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.ForRoute("r").TraceHeaders; !reflect.DeepEqual(got, []string{"x-trace"}) {
			t.Errorf("the rule's trace headers %q", got)
		}
	})
}

func TestTraceHeadersRefused(t *testing.T) {
	const in = `invalid plugin configuration: `
	tests := []struct{ name, extra, want string }{
		{"a string, not an array", `,"trace_headers":"traceparent"`, in + `"trace_headers" must be an array of header names ([] copies none)`},
		{"null", `,"trace_headers":null`, in + `"trace_headers" must be an array of header names ([] copies none)`},
		{"more than sixteen names", `,"trace_headers":` + names(17), in + `"trace_headers" has more than 16 names`},
		{"a number", `,"trace_headers":["traceparent",1]`, in + `"trace_headers[1]" must be a string: an HTTP header name`},
		{"an empty name", `,"trace_headers":[""]`, in + `"trace_headers[0]" must be an HTTP header name`},
		{"a name with a space", `,"trace_headers":["x trace"]`, in + `"trace_headers[0]" must be an HTTP header name`},
		{"a name with a colon", `,"trace_headers":["x-trace:"]`, in + `"trace_headers[0]" must be an HTTP header name`},
		{"a pseudo-header", `,"trace_headers":[":path"]`, in + `"trace_headers[0]" must not be a pseudo-header`},
		{"a hop-by-hop header", `,"trace_headers":["Connection"]`, in + `"trace_headers[0]" must not be "connection", a hop-by-hop header`},
		{"authorization, the call's credentials", `,"trace_headers":["traceparent","Authorization"]`, in + `"trace_headers[1]" must not be "authorization", which the introspection call sets itself`},
		{"content-type", `,"trace_headers":["content-type"]`, in + `"trace_headers[0]" must not be "content-type", which the introspection call sets itself`},
		{"accept", `,"trace_headers":["accept"]`, in + `"trace_headers[0]" must not be "accept", which the introspection call sets itself`},
		{"content-length", `,"trace_headers":["content-length"]`, in + `"trace_headers[0]" must not be "content-length", which frames or routes the request`},
		{"host", `,"trace_headers":["host"]`, in + `"trace_headers[0]" must not be "host", which frames or routes the request`},
		{"a duplicate", `,"trace_headers":["traceparent","TraceParent"]`, in + `"trace_headers[1]" names "traceparent" a second time`},
		{"in a route rule", `,"routes":[{"route":"r","trace_headers":[]}]`, in + `"routes[0].trace_headers" is not a known key in a rule: it is the plugin's, set at the top level`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(`{`+minimal+tt.extra+`}`), env)
			if err == nil || err.Error() != tt.want {
				t.Errorf("got  %v\nwant %s", err, tt.want)
			}
		})
	}
}

// traceNames are n header names: x-trace-a, x-trace-b, ...
func traceNames(n int) []string {
	var list []string
	for i := range n {
		list = append(list, "x-trace-"+string(rune('a'+i)))
	}
	return list
}

// names is traceNames(n) as a JSON array.
func names(n int) string {
	return `["` + strings.Join(traceNames(n), `","`) + `"]`
}
