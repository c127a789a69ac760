package main

import "testing"

// The filter's counters are read from the admin /stats text: a line per
// stat, "name: value"; histograms and other prefixes are left out.
func TestParseStats(t *testing.T) {
	body := "cluster.ids.upstream_rq_total: 12\n" +
		"wasmcustom.phantom_token.cache.hits: 4031\n" +
		"wasmcustom.phantom_token.requests.waited: 0\n" +
		"wasmcustom.phantom_token.introspection.latency_ms: P0(nan,1) P25(nan,1.025)\n" +
		"wasmcustom.phantom_token.refresh.started: 7\n"
	got := parseStats(body)
	want := map[string]int{"cache.hits": 4031, "requests.waited": 0, "refresh.started": 7}
	if len(got) != len(want) {
		t.Fatalf("parseStats = %v, want %v", got, want)
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("parseStats[%q] = %d, %v; want %d", k, g, ok, v)
		}
	}
}

// Requests that waited: the filter's own count when it has one; else every
// admitted request that was not a cache hit (a filter before issue 17).
func TestWaited(t *testing.T) {
	for _, c := range []struct {
		name        string
		before, end map[string]int
		want        int
		counted     bool
	}{
		{"the filter counts them",
			map[string]int{"requests.waited": 40, "requests.allowed": 100, "cache.hits": 50},
			map[string]int{"requests.waited": 40, "requests.allowed": 1100, "cache.hits": 1000},
			0, true},
		{"its count grew",
			map[string]int{"requests.waited": 40},
			map[string]int{"requests.waited": 72},
			32, true},
		{"no such stat: admitted less hits",
			map[string]int{"requests.allowed": 100, "cache.hits": 60},
			map[string]int{"requests.allowed": 1100, "cache.hits": 1028},
			32, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, counted := waited(c.before, c.end)
			if got != c.want || counted != c.counted {
				t.Errorf("waited = %d, %v; want %d, %v", got, counted, c.want, c.counted)
			}
		})
	}
}
