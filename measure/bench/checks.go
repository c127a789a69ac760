package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
	"github.com/phantom-token/envoy-phantom-token/e2e/harness"
)

// burstTest opens *burst connections to the filter's listener (the kernel spreads
// them over both workers), then sends on all of them at once one request with
// a token never seen before, and returns how many introspections the IdS got
// for it. The IdS holds that answer back burstSlowDelay, so every request is
// in the filter before the first answer could be cached: only coalescing
// across requests and workers makes the count 1.
func burstTest(ctx context.Context, envoy *harness.Envoy, ids *fixtures.IdS) (int, error) {
	fmt.Printf("\n== Concurrency: %d simultaneous requests, new connections, one new token (IdS answers after %s)\n", *burst, burstSlowDelay)
	ids.SetHistory(true)
	defer ids.SetHistory(false)
	tok := ids.Issue(fixtures.TokenOptions{Scope: "read", Fault: fixtures.FaultSlow})
	workers := func() []int {
		var n []int
		for w := 0; ; w++ {
			v, err := envoy.Counter(ctx, fmt.Sprintf("listener.%s.worker_%d.downstream_cx_total", hit, w))
			if err != nil {
				return n
			}
			n = append(n, v)
		}
	}
	before := workers()

	addr := strings.TrimPrefix(envoy.URL(hit), "http://")
	cs := make([]net.Conn, *burst)
	for i := range cs {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		cs[i] = c
	}
	request := "GET /burst HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer " + tok + "\r\nConnection: close\r\n\r\n"
	start := make(chan struct{})
	statuses := make([]int, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			<-start
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c, request); err != nil {
				return
			}
			if res, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
				_, _ = io.Copy(io.Discard, res.Body)
				statuses[i] = res.StatusCode
			}
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	took := time.Since(t0)

	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	after := workers()
	var spread []string
	for w := range min(len(before), len(after)) {
		spread = append(spread, fmt.Sprintf("worker_%d %d", w, after[w]-before[w]))
	}
	n := len(ids.IntrospectionsOf(tok))
	fmt.Printf("statuses       %v (0 = no answer), all answered in %s\n", count, took.Round(time.Millisecond))
	fmt.Printf("connections    %s\n", strings.Join(spread, ", "))
	fmt.Printf("introspections %d for that token (target 1)\n", n)
	return n, nil
}

// flatness is the verdict of the memory check.
type flatness struct {
	ok     bool
	spread float64 // (max-min)/min of the last three samples
}

// memoryTest sends *tokens requests through the filter's listener (a cache of
// *cacheEntries entries), each with a distinct valid token, and samples
// Envoy's RSS every quarter. Tokens are issued in-process; the IdS keeps no
// history, so only its token map grows here.
func memoryTest(base string, pid int, ids *fixtures.IdS) (flatness, error) {
	fmt.Printf("\n== Memory: %d distinct tokens through %q (cache_max_entries %d), %d keep-alive clients\n",
		*tokens, hit, *cacheEntries, *memWorkers)
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: *memWorkers, MaxConnsPerHost: *memWorkers},
	}
	rss0, err := harness.RSSKiB(pid)
	if err != nil {
		return flatness{}, err
	}
	introspections0 := ids.Introspections()
	fmt.Printf("%10s %12s %10s %12s %8s %9s\n", "tokens", "Envoy RSS", "Δ vs 0", "req/s", "non-200", "elapsed")
	fmt.Printf("%10d %9.1f MiB %10s %12s %8s %9s\n", 0, float64(rss0)/1024, "-", "-", "-", "-")

	deadline := time.Now().Add(*memBudget)
	began := time.Now()
	var samples []int
	var sent, bad atomic.Int64
	for q := 1; q <= 4; q++ {
		target := int64(*tokens) * int64(q) / 4
		t0, s0 := time.Now(), sent.Load()
		var wg sync.WaitGroup
		for range *memWorkers {
			wg.Go(func() {
				for time.Now().Before(deadline) {
					if sent.Add(1) > target {
						sent.Add(-1)
						return
					}
					tok := ids.Issue(fixtures.TokenOptions{Scope: "read"})
					if status, err := get(client, base+"/mem", tok); err != nil || status != http.StatusOK {
						bad.Add(1)
					}
				}
			})
		}
		wg.Wait()
		rss, err := harness.RSSKiB(pid)
		if err != nil {
			return flatness{}, err
		}
		samples = append(samples, rss)
		done := sent.Load()
		fmt.Printf("%10d %9.1f MiB %+9.1f%% %12.0f %8d %9s\n", done, float64(rss)/1024,
			100*(float64(rss)/float64(rss0)-1), float64(done-s0)/time.Since(t0).Seconds(), bad.Load(),
			time.Since(began).Round(time.Second))
		if done < target {
			fmt.Printf("stopped at the %s budget: %d of %d tokens sent in %s\n", *memBudget, done, *tokens, time.Since(began).Round(time.Second))
			break
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("introspections %d during the check; bench process heap %.0f MiB\n",
		ids.Introspections()-introspections0, float64(ms.HeapInuse)/(1<<20))

	if len(samples) < 3 {
		return flatness{}, nil
	}
	last := samples[len(samples)-3:]
	lo, hi := slices.Min(last), slices.Max(last)
	f := flatness{spread: float64(hi-lo) / float64(lo)}
	f.ok = f.spread <= flatTolerance
	fmt.Printf("last three samples within %.1f%%: %s\n", 100*f.spread, map[bool]string{true: "flat", false: "NOT flat"}[f.ok])
	return f, nil
}
