package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/internal/testjwt"
)

// staleSetup is a plugin with a token cached for 20 s (max-age) and its
// exp far ahead, on a clock the test moves (Go mode).
func staleSetup(t *testing.T, extra string) (h *host, jwt string, clock *time.Time) {
	t.Helper()
	c := time.Now()
	clock = &c
	setClock(t, func() time.Time { return *clock })
	h = started(t, modes[0], withConfig(extra))
	jwt = phantomJWT("")
	h.request(req(authBearer(token))...).answer(idsOK("max-age=20"), jwt)
	return h, jwt, clock
}

// TestStaleIfError has one row per rule of spec §10's stale answers: which
// failed calls a stale answer stands in for, for how long, and what marks it.
func TestStaleIfError(t *testing.T) {
	const on = `,"stale_if_error":"60s","stale_header":"x-stale"`
	tests := []struct {
		name    string
		extra   string
		after   time.Duration // since the answer was cached
		headers [][2]string   // the failing call's answer (nil: no response)
		stale   bool          // served stale, else the failure's status
		status  uint32
	}{
		{"no response", on, 21 * time.Second, nil, true, 0},
		{"Envoy's 503 (connection failure)", on, 21 * time.Second, [][2]string{{":status", "503"}}, true, 0},
		{"the identity server's 503", on, 21 * time.Second, status(503), true, 0},
		{"500", on, 21 * time.Second, status(500), true, 0},
		{"504", on, 21 * time.Second, status(504), true, 0},
		{"429", on, 21 * time.Second, status(429), true, 0},
		{"at the end of the window", on, 79 * time.Second, nil, true, 0},
		{"past the window", on, 81 * time.Second, nil, false, 502},
		{"a 401 is the identity server's verdict on the client", on, 21 * time.Second, status(401), false, 502},
		{"a 400", on, 21 * time.Second, status(400), false, 500},
		{"off by default", "", 21 * time.Second, nil, false, 502},
		{"the identity server's own stale-if-error narrows it", on, 21 * time.Second, nil, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, jwt, clock := staleSetup(t, tt.extra)
			*clock = clock.Add(tt.after)
			sent := req(authBearer(token), [2]string{"x-stale", "forged"})
			e := h.request(sent...)
			if n := len(e.callouts()); n != 1 {
				t.Fatalf("%d calls once the cache lifetime ended, want 1", n)
			}
			e.answer(tt.headers, "")
			if !tt.stale {
				if r := e.local(); r == nil || r.StatusCode != tt.status {
					t.Fatalf("want %d, got %+v", tt.status, r)
				}
				return
			}
			wantForwarded(t, e, req(authBearer(token), [2]string{"x-stale", "1"}), "authorization", "Bearer "+jwt)
			// For a second after the failure, the token is served stale at
			// once, without a new call.
			e = h.request(sent...)
			if len(e.callouts()) != 0 {
				t.Fatal("a call within a second of the failure")
			}
			wantForwarded(t, e, req(authBearer(token), [2]string{"x-stale", "1"}), "authorization", "Bearer "+jwt)
			if got := stat(t, h, "cache.stale_served"); got != 2 {
				t.Errorf("stale_served %d, want 2", got)
			}
			if n := countLines(h, "serving a stale answer"); n != 1 {
				t.Errorf("%d log lines within a second, want 1", n)
			}
			*clock = clock.Add(1100 * time.Millisecond)
			if e = h.request(sent...); len(e.callouts()) != 1 {
				t.Fatalf("%d calls a second after the failure, want 1", len(e.callouts()))
			}
			e.answer(idsOK("max-age=20"), jwt) // back: fresh, and unmarked
			wantForwarded(t, e, req(authBearer(token)), "authorization", "Bearer "+jwt)
		})
	}
}

// Narrower bounds: the identity server's stale-if-error and the JWT's exp.
func TestStaleWindowBounds(t *testing.T) {
	for _, tt := range []struct {
		name         string
		cacheControl string
		exp          time.Duration
		after        time.Duration
		stale        bool
	}{
		{"stale-if-error=10 from the identity server, within", "max-age=20, stale-if-error=10", time.Hour, 29 * time.Second, true},
		{"stale-if-error=10 from the identity server, past", "max-age=20, stale-if-error=10", time.Hour, 31 * time.Second, false},
		{"within the JWT's exp less the skew", "max-age=20", 40 * time.Second, 34 * time.Second, true},
		{"never past the JWT's exp less the skew", "max-age=20", 40 * time.Second, 36 * time.Second, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := time.Now()
			setClock(t, func() time.Time { return c })
			h := started(t, modes[0], withConfig(`,"stale_if_error":"60s"`))
			jwt := testjwt.Make(`{"sub":"alice","exp":` + strconv.FormatInt(c.Add(tt.exp).Unix(), 10) + `}`)
			h.request(req(authBearer(token))...).answer(idsOK(tt.cacheControl), jwt)
			c = c.Add(tt.after)
			e := h.request(req(authBearer(token))...)
			e.answer(nil, "")
			if got := e.local() == nil; got != tt.stale {
				t.Errorf("served stale %v, want %v", got, tt.stale)
			}
		})
	}
}

// An inactive verdict is never served stale: it takes the stale answer away.
func TestInactiveIsNeverServedStale(t *testing.T) {
	h, _, clock := staleSetup(t, `,"stale_if_error":"60s"`)
	*clock = clock.Add(21 * time.Second)
	e := h.request(req(authBearer(token))...)
	e.answer(status(204), "")
	if r := e.local(); r == nil || r.StatusCode != 401 {
		t.Fatalf("inactive: %+v", r)
	}
	*clock = clock.Add(1100 * time.Millisecond)
	e = h.request(req(authBearer(token))...)
	e.answer(nil, "")
	if r := e.local(); r == nil || r.StatusCode != 502 {
		t.Fatalf("a failure after an inactive verdict: %+v, want 502", r)
	}
}

// TestRefreshAhead: a hit in the last part of the entry's life starts one
// background call; every request is served from the cache meanwhile; the
// answer renews the entry, or removes it when the token is inactive.
func TestRefreshAhead(t *testing.T) {
	const on = `,"refresh_ahead":0.25`
	t.Run("renewed before its end, no request waits", func(t *testing.T) {
		h, jwt, clock := staleSetup(t, on)
		*clock = clock.Add(14 * time.Second) // before the last quarter
		if e := h.request(req(authBearer(token))...); len(e.callouts()) != 0 {
			t.Fatal("a refresh before the last quarter")
		}
		*clock = clock.Add(2 * time.Second) // 16 s: in the last quarter
		sent := req(authBearer(token))
		e := h.request(sent...)
		wantForwarded(t, e, sent, "authorization", "Bearer "+jwt) // served at once
		if len(e.callouts()) != 1 {
			t.Fatalf("%d refresh calls, want 1", len(e.callouts()))
		}
		if e2 := h.request(sent...); len(e2.callouts()) != 0 {
			t.Fatal("a second refresh while one is under way")
		}
		jwt2 := phantomJWT(`"n":2`)
		e.answer(idsOK("max-age=20"), jwt2)
		*clock = clock.Add(10 * time.Second) // past the first answer's end
		e = h.request(sent...)
		if len(e.callouts()) != 0 {
			t.Fatal("a call after the refresh")
		}
		wantForwarded(t, e, sent, "authorization", "Bearer "+jwt2)
		for name, want := range map[string]uint64{"refresh.started": 1, "refresh.renewed": 1, "requests.waited": 1} {
			if got := stat(t, h, name); got != want {
				t.Errorf("%s = %d, want %d", name, got, want)
			}
		}
	})
	t.Run("a revoked token is noticed at the refresh", func(t *testing.T) {
		h, _, clock := staleSetup(t, on)
		*clock = clock.Add(16 * time.Second)
		e := h.request(req(authBearer(token))...)
		e.answer(status(204), "")
		e = h.request(req(authBearer(token))...)
		if len(e.callouts()) != 1 {
			t.Fatalf("%d calls after the refresh found the token inactive, want 1", len(e.callouts()))
		}
		e.answer(status(204), "")
		if r := e.local(); r == nil || r.StatusCode != 401 {
			t.Fatalf("want 401, got %+v", r)
		}
		if got := stat(t, h, "refresh.revoked"); got != 1 {
			t.Errorf("refresh.revoked = %d", got)
		}
	})
	t.Run("a failed refresh keeps the entry", func(t *testing.T) {
		h, jwt, clock := staleSetup(t, on)
		*clock = clock.Add(16 * time.Second)
		sent := req(authBearer(token))
		h.request(sent...).answer(nil, "")
		*clock = clock.Add(500 * time.Millisecond)
		e := h.request(sent...)
		if len(e.callouts()) != 0 {
			t.Fatal("a new refresh within a second of a failed one")
		}
		wantForwarded(t, e, sent, "authorization", "Bearer "+jwt)
		if got := stat(t, h, "refresh.failed"); got != 1 {
			t.Errorf("refresh.failed = %d", got)
		}
	})
	t.Run("off: no call before the entry ends", func(t *testing.T) {
		h, _, clock := staleSetup(t, "")
		for range 19 {
			*clock = clock.Add(time.Second)
			if e := h.request(req(authBearer(token))...); len(e.callouts()) != 0 {
				t.Fatal("a call before the entry's end")
			}
		}
	})
}

// countLines counts the plugin's log lines that contain s.
func countLines(h *host, s string) int {
	n := 0
	for _, line := range h.allLogs() {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}
