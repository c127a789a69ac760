package introspection

import (
	"reflect"
	"strings"
	"testing"
)

const (
	traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tracestate  = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
	requestID   = "0b5c3e51-7b5e-4c4f-9d40-1d1f8c6a0a11"
)

// clientRequest is a request as the host gives its headers: the trace
// headers among the client's credentials and everything else it sent.
var clientRequest = [][2]string{
	{":method", "GET"}, {":path", "/api?x=1"}, {":authority", "api.example"}, {":scheme", "https"},
	{"authorization", "Bearer opaque-token"}, {"cookie", "session=s3cret"}, {"dpop", "eyJproof.x.y"},
	{"traceparent", traceparent}, {"x-forwarded-for", "192.0.2.1"}, {"tracestate", tracestate},
	{"content-type", "application/json"}, {"accept", "*/*"}, {"x-request-id", requestID},
	{"user-agent", "curl/8"}, {"x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"},
}

// The call carries the configured trace headers of the request that starts
// it, each as the client sent it, and nothing else of that request.
func TestTraceContext(t *testing.T) {
	long := strings.Repeat("a", MaxTraceValue)
	tests := []struct {
		name, extra string
		sent        [][2]string
		want        [][2]string
	}{
		{"the default headers, in the configured order", "", clientRequest,
			[][2]string{{"traceparent", traceparent}, {"tracestate", tracestate}, {"x-request-id", requestID}}},
		{"a list of its own", `,"trace_headers":["x-b3-traceid","x-request-id"]`, clientRequest,
			[][2]string{{"x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"}, {"x-request-id", requestID}}},
		{"none with an empty list", `,"trace_headers":[]`, clientRequest, nil},
		{"none when the client sent none", "", clientRequest[:7], nil},
		{"a header the client did not send is left out", "", [][2]string{{"tracestate", tracestate}},
			[][2]string{{"tracestate", tracestate}}},
		{"only the first value of a repeated header", "", [][2]string{{"tracestate", "a=1"}, {"tracestate", "b=2"}},
			[][2]string{{"tracestate", "a=1"}}},
		{"a refused first value is not replaced by a later one", "", [][2]string{{"traceparent", "a\nb"}, {"traceparent", traceparent}}, nil},
		{"a value of MaxTraceValue bytes", "", [][2]string{{"x-request-id", long}}, [][2]string{{"x-request-id", long}}},
		{"a longer value is left out", "", [][2]string{{"x-request-id", long + "a"}}, nil},
		{"an empty value is left out", "", [][2]string{{"x-request-id", ""}}, nil},
		{"a value with spaces and punctuation", "", [][2]string{{"tracestate", "a=1, b=2;c"}}, [][2]string{{"tracestate", "a=1, b=2;c"}}},
		{"a value with a line feed is left out", "", [][2]string{{"tracestate", "a=1\nx-evil: 1"}}, nil},
		{"a value with a carriage return is left out", "", [][2]string{{"tracestate", "a=1\r"}}, nil},
		{"a value with a tab is left out", "", [][2]string{{"tracestate", "a=1\tb=2"}}, nil},
		{"a value with a NUL is left out", "", [][2]string{{"tracestate", "a=\x00"}}, nil},
		{"a value with DEL is left out", "", [][2]string{{"tracestate", "a=\x7f"}}, nil},
		{"a value that is not ASCII is left out", "", [][2]string{{"tracestate", "a=é"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TraceContext(cfg(t, tt.extra), tt.sent); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("trace context\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// The trace headers go after the call's own, and the call's headers are
// otherwise those it has without them: its credentials, never the client's
// (the client's Authorization, Cookie, Content-Type and Accept stay behind).
func TestRequestCarriesTheTraceContext(t *testing.T) {
	c := cfg(t, "")
	plain, body := Request(c, "tok", nil)
	trace := TraceContext(c, clientRequest)
	if len(trace) != 3 {
		t.Fatalf("trace context %q, want the three default headers", trace)
	}
	headers, traced := Request(c, "tok", trace)
	if want := append(append([][2]string{}, plain...), trace...); !reflect.DeepEqual(headers, want) {
		t.Errorf("headers\n got %q\nwant %q", headers, want)
	}
	if string(traced) != string(body) {
		t.Errorf("body %q, want %q", traced, body)
	}
}
