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
