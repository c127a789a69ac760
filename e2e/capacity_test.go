package e2e

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
)

// The cache at capacity, in Envoy with two workers (cache_max_entries 1000):
// every live token is cached, valid tokens cannot pin the table, and, with
// cache_negative_ttl 3s, replayed invalid tokens keep their verdicts through a
// flood of random ones (in a table of their own: a live answer always takes
// the place of a verdict, so verdicts are kept only where valid tokens leave
// room).
func TestCacheAtCapacity(t *testing.T) {
	issue := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = suite.ids.Issue(fixtures.TokenOptions{})
		}
		return out
	}
	t.Run("cache_max_entries live tokens cost about one call each", func(t *testing.T) {
		tokens := issue(smallEntries)
		order := make([]int, 0, 3*len(tokens))
		for i := range tokens {
			order = append(order, i, i, i)
		}
		rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var statuses map[int]int
		n := introspectionDelta(func() {
			statuses = hammer(t, scSmall, len(order), 8, func(i int) string { return tokens[order[i]] })
		})
		perToken := float64(n) / float64(len(tokens))
		t.Logf("%d live tokens, 3 requests each in random order, cache_max_entries %d: %d introspections, %.3f a token, statuses %v",
			len(tokens), smallEntries, n, perToken, statuses)
		if statuses[200] != len(order) || perToken > 1.05 {
			t.Errorf("statuses %v, %.3f introspections a token: want all 200 and at most 1.05", statuses, perToken)
		}
	})
	t.Run("a flood of valid tokens cannot make new tokens uncacheable", func(t *testing.T) {
		flood := issue(4 * smallEntries)
		hammer(t, scSmall, len(flood), 8, func(i int) string { return flood[i] })
		fresh := issue(200)
		var statuses map[int]int
		n := introspectionDelta(func() {
			statuses = hammer(t, scSmall, 10*len(fresh), 8, func(i int) string { return fresh[i/10] })
		})
		t.Logf("after %d valid tokens, %d new tokens × 10 requests: %d introspections, statuses %v", len(flood), len(fresh), n, statuses)
		if statuses[200] != 10*len(fresh) || n > int64(len(fresh))*11/10 {
			t.Errorf("statuses %v and %d introspections: want all 200 and about one call a new token", statuses, n)
		}
	})
	t.Run("replayed invalid tokens keep their verdicts through a random flood", func(t *testing.T) {
		replayed := make([]string, 100)
		for i := range replayed {
			replayed[i] = fixtures.RandomToken()
		}
		const d = 6 * time.Second
		var random, replays atomic.Int64
		start := time.Now()
		n := introspectionDelta(func() {
			var wg sync.WaitGroup
			stop := time.Now().Add(d)
			for range 2 {
				wg.Add(2)
				go func() { // the flood: a new random token every request
					defer wg.Done()
					for time.Now().Before(stop) {
						hammer(t, scSmallNeg, 50, 4, func(int) string { random.Add(1); return fixtures.RandomToken() })
					}
				}()
				go func() {
					defer wg.Done()
					for time.Now().Before(stop) {
						hammer(t, scSmallNeg, 50, 4, func(int) string { replays.Add(1); return replayed[rand.IntN(len(replayed))] })
					}
				}()
			}
			wg.Wait()
		})
		took := time.Since(start)
		forReplayed := n - random.Load() // each random token costs exactly one call
		limit := int64(len(replayed)) * (int64(took/(3*time.Second)) + 1) * 12 / 10
		t.Logf("%v: %d random tokens and %d replays of %d invalid tokens: %d introspections for the replayed (limit %d)",
			took.Round(time.Millisecond), random.Load(), replays.Load(), len(replayed), forReplayed, limit)
		if forReplayed > limit {
			t.Errorf("%d introspections for the replayed tokens, want at most %d (about one a token per cache_negative_ttl)", forReplayed, limit)
		}
	})
}
