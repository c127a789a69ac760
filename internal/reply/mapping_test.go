package reply

import (
	"testing"

	"github.com/phantom-token/envoy-phantom-token/internal/config"
	"github.com/phantom-token/envoy-phantom-token/internal/introspection"
	"github.com/phantom-token/envoy-phantom-token/internal/jwt"
)

// The outcome → reply table of spec section 4.
func TestForOutcome(t *testing.T) {
	for _, tt := range []struct {
		o      introspection.Outcome
		want   Kind
		status uint32
	}{
		{introspection.Inactive, InvalidToken, 401},
		{introspection.BadGateway, BadGateway, 502},
		{introspection.Unavailable, Unavailable, 503},
		{introspection.ServerError, ServerError, 500},
	} {
		if got := ForOutcome(tt.o); got != tt.want || Status(got) != tt.status {
			t.Errorf("outcome %d: %v (%d), want %v (%d)", tt.o, got, Status(got), tt.want, tt.status)
		}
	}
}

func TestForCheck(t *testing.T) {
	for _, tt := range []struct {
		v       jwt.Verdict
		want    Kind
		refused bool
	}{
		{jwt.Valid, 0, false},
		{jwt.Expired, InvalidToken, true},
		{jwt.InsufficientScope, InsufficientScope, true},
		{jwt.Verdict(99), BadGateway, true},
	} {
		if got, refused := ForCheck(tt.v); refused != tt.refused || refused && got != tt.want {
			t.Errorf("%v: %v %v, want %v %v", tt.v, got, refused, tt.want, tt.refused)
		}
	}
}

func TestOverloaded(t *testing.T) {
	r := New(Overloaded, &config.Config{Realm: "api"}, false)
	want := [][2]string{{"retry-after", RetryAfter}, {"content-type", "application/json"}}
	if r.Status != 503 || len(r.Headers) != 2 || r.Headers[0] != want[0] || r.Headers[1] != want[1] || string(r.Body) != string(bodyServerError) {
		t.Errorf("overloaded reply %d %q %s", r.Status, r.Headers, r.Body)
	}
	if Overloaded.String() != "Overloaded" {
		t.Error(Overloaded.String())
	}
}
