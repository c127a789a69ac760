package main

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	flog "fortio.org/log"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
)

// The own client sends every request it is given once, in order, over
// keep-alive connections, and counts the answers that are not 200; when the
// made requests run out it makes more (counted as late).
func TestProofsLoad(t *testing.T) {
	flog.SetLogLevelQuiet(flog.Error)
	key, err := fixtures.NewDPoPKey()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		proof := r.Header.Get("DPoP")
		seen[proof]++
		if r.Header.Get("Authorization") != "DPoP tok" || proof == "" || seen[proof] > 1 || len(seen)%10 == 0 {
			w.WriteHeader(http.StatusUnauthorized) // every tenth, to be counted
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()

	p := newProofs("tok", key)
	p.rate[2] = 1 // too low on purpose: the made requests run out and more are made during the run
	made := int64(p.count(time.Second, 2))
	x, err := p.load(srv.URL+"/run", time.Second, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if x.count == 0 || x.count != int64(len(seen)) {
		t.Errorf("count %d, %d distinct proofs seen: want as many, none twice", x.count, len(seen))
	}
	for proof, n := range seen {
		if n != 1 {
			t.Errorf("proof %.20s… sent %d times", proof, n)
		}
	}
	if want := x.count / 10; x.bad != want {
		t.Errorf("bad %d, want %d (every tenth answer is 401)", x.bad, want)
	}
	if want := max(0, x.count-made); p.late != want {
		t.Errorf("late %d of %d, want %d: %d made before the run (rate 1/s), the rest during it", p.late, x.count, want, made)
	}
	if next := int64(p.count(time.Second, 2)); next <= x.count {
		t.Errorf("after the run %d would be made for the next, want more than the %d it sent", next, x.count)
	}
	if p.sentN[0] != x.count {
		t.Errorf("sent %v, want the run's %d", p.sentN, x.count)
	}
}

// busiest sums the proofs of the runs begun within the window of one another.
func TestBusiest(t *testing.T) {
	t0 := time.Now()
	p := &proofs{
		sent:  []time.Time{t0, t0.Add(50 * time.Second), t0.Add(100 * time.Second), t0.Add(130 * time.Second)},
		sentN: []int64{10, 20, 30, 45},
	}
	for _, c := range []struct {
		window time.Duration
		want   int64
	}{{120 * time.Second, 95}, {60 * time.Second, 75}, {1000 * time.Second, 105}} {
		if got := p.busiest(c.window); got != c.want {
			t.Errorf("busiest(%s) = %d, want %d", c.window, got, c.want)
		}
	}
	q := &proofs{sent: []time.Time{t0, t0.Add(time.Second)}, sentN: []int64{10, 20}}
	if got := q.busiest(2 * time.Second); got != 30 {
		t.Errorf("two runs within the window: %d, want 30", got)
	}
}
