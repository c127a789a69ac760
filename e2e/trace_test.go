package e2e

import (
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
)

// Two W3C trace contexts a client could send.
const (
	traceparentA = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tracestateA  = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
	traceparentB = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
)

// uuid is the shape of the x-request-id Envoy generates.
var uuid = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestTraceContextReachesTheIdentityServer: the introspection call carries
// the trace headers of the request that made it, as the filter saw them.
// Envoy's connection manager runs before the filter and sets x-request-id:
// it keeps a client's value here, as the listener does not take the peer's
// address as the client's (use_remote_address is false, so no request is an
// edge request), and generates a UUID for a request without one. Either way
// the identity server gets the value the upstream gets.
func TestTraceContextReachesTheIdentityServer(t *testing.T) {
	t.Run("a miss's call carries traceparent, tracestate and x-request-id", func(t *testing.T) {
		tok := suite.ids.Issue(fixtures.TokenOptions{})
		h := bearer(tok)
		h.Set("Traceparent", traceparentA)
		h.Set("Tracestate", tracestateA)
		h.Set("X-Request-Id", "client-request-1")
		h.Set("Cookie", "session=not-for-the-ids")
		r := call(t, client, scDefault, "GET", h, "")
		if r.status != http.StatusOK || len(r.upstream) != 1 {
			t.Fatalf("status %d, %d upstream requests", r.status, len(r.upstream))
		}
		calls := suite.ids.IntrospectionsOf(tok)
		if len(calls) != 1 {
			t.Fatalf("%d introspections, want 1", len(calls))
		}
		got := calls[0].Header
		for name, want := range map[string]string{"Traceparent": traceparentA, "Tracestate": tracestateA, "X-Request-Id": "client-request-1"} {
			if v := got.Values(name); len(v) != 1 || v[0] != want {
				t.Errorf("the call's %s %q, want [%q]", name, v, want)
			}
		}
		if v := r.upstream[0].Header.Get("X-Request-Id"); v != "client-request-1" {
			t.Errorf("the upstream's x-request-id %q: Envoy changed the client's", v)
		}
		if v := got.Values("Cookie"); len(v) != 0 {
			t.Errorf("the call carries the client's cookie %q", v)
		}
	})
	t.Run("without the client's x-request-id, the call carries Envoy's", func(t *testing.T) {
		tok := suite.ids.Issue(fixtures.TokenOptions{})
		h := bearer(tok)
		h.Set("Traceparent", traceparentA)
		r := call(t, client, scDefault, "GET", h, "")
		calls := suite.ids.IntrospectionsOf(tok)
		if r.status != http.StatusOK || len(r.upstream) != 1 || len(calls) != 1 {
			t.Fatalf("status %d, %d upstream requests, %d introspections", r.status, len(r.upstream), len(calls))
		}
		generated := r.upstream[0].Header.Get("X-Request-Id")
		if !uuid.MatchString(generated) {
			t.Fatalf("the upstream's x-request-id %q is not a UUID Envoy made", generated)
		}
		if v := calls[0].Header.Values("X-Request-Id"); len(v) != 1 || v[0] != generated {
			t.Errorf("the call's x-request-id %q, want the upstream's [%q]", v, generated)
		}
		if v := calls[0].Header.Values("Tracestate"); len(v) != 0 {
			t.Errorf("the call carries a tracestate %q the client did not send", v)
		}
	})
	t.Run("a coalesced call carries its first request's trace context", func(t *testing.T) {
		tok := suite.ids.Issue(fixtures.TokenOptions{Delay: 500 * time.Millisecond})
		statuses := make(chan int, 2)
		send := func(traceparent string) {
			h := bearer(tok)
			h.Set("Traceparent", traceparent)
			go func() { statuses <- call(t, client, scDefault, "GET", h, "").status }()
		}
		send(traceparentA)
		// The second request starts once the first one's call is at the
		// identity server, which holds its answer back: it joins that call,
		// in its worker or through the shared cache from the other one.
		for deadline := time.Now().Add(5 * time.Second); len(suite.ids.IntrospectionsOf(tok)) == 0; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the first request's call never reached the identity server")
			}
		}
		send(traceparentB)
		for range 2 {
			if s := <-statuses; s != http.StatusOK {
				t.Errorf("status %d", s)
			}
		}
		calls := suite.ids.IntrospectionsOf(tok)
		if len(calls) != 1 {
			t.Fatalf("%d introspections for two coalesced requests, want 1", len(calls))
		}
		if v := calls[0].Header.Values("Traceparent"); len(v) != 1 || v[0] != traceparentA {
			t.Errorf("the call's traceparent %q, want the first request's [%q]", v, traceparentA)
		}
	})
}
