//go:build wasip1

package main

import "unsafe"

// The proxy-wasm ABI's metric calls, made directly: the SDK's wrappers format
// their panics with fmt, which would link fmt and reflect (0.2 MB) into a
// module that has no other use for them.

//go:wasmimport env proxy_define_metric
//go:noescape
func proxyDefineMetric(kind uint32, name *byte, size int32, id *uint32) uint32

//go:wasmimport env proxy_increment_metric
func proxyIncrementMetric(id uint32, offset int64) uint32

//go:wasmimport env proxy_record_metric
func proxyRecordMetric(id uint32, value uint64) uint32

// defineMetric defines (or finds, when another VM defined it) a metric.
func defineMetric(kind metricKind, name string) (uint32, error) {
	var id uint32
	if st := proxyDefineMetric(uint32(kind), unsafe.StringData(name), int32(len(name)), &id); st != 0 {
		return 0, hostError{"proxy_define_metric", st}
	}
	return id, nil
}

// addToMetric adds n to a counter.
func addToMetric(id uint32, n uint64) error {
	if st := proxyIncrementMetric(id, int64(n)); st != 0 {
		return hostError{"proxy_increment_metric", st}
	}
	return nil
}

// recordMetric records a value in a histogram.
func recordMetric(id uint32, v uint64) error {
	if st := proxyRecordMetric(id, v); st != 0 {
		return hostError{"proxy_record_metric", st}
	}
	return nil
}
