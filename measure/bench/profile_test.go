package main

import (
	"reflect"
	"testing"
)

// hostcountFigures reads both tables of measure/hostcount's output, and
// nothing else of it.
func TestHostcountFigures(t *testing.T) {
	out := `counted under wazero (x.wasm, 5000 cache hits, after 1,000 not counted)
host calls per request
  proxy_get_property                       1.000
  total                                    4.000
entries into the Go runtime per request
  proxy_on_memory_allocate                 2.000
linear memory (KiB): 3392 after _initialize, 4096 after proxy_on_configure, 4096 after the requests
Go runtime (debugstats lines, 19000 requests)
  bytes allocated per request              84.2
`
	got := hostcountFigures(out)
	want := figures{
		v: map[string]float64{
			"host calls per request: proxy_get_property":                        1,
			"host calls per request: total":                                     4,
			"entries into the Go runtime per request: proxy_on_memory_allocate": 2,
		},
		order: []string{"host calls per request: proxy_get_property", "host calls per request: total", "entries into the Go runtime per request: proxy_on_memory_allocate"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
