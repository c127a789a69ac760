//go:build wasip1

package main

// The host calls the compiled module makes through the proxy-wasm ABI and
// WASI directly, not through the SDK; abi_other.go has what the tests in Go
// mode use in their place.

import (
	"time"
	"unsafe"

	"github.com/phantom-token/envoy-phantom-token/filter/abi"
)

// clockTimeGet is WASI's clock_time_get, which Envoy provides.
//
//go:wasmimport wasi_snapshot_preview1 clock_time_get
//go:noescape
func clockTimeGet(clockID uint32, precision uint64, t *uint64) uint32

// wallClock reads the realtime clock with one host call, where time.Now
// reads the realtime and the monotonic clock (two). The filter only compares
// wall times (expiries) and measures call latency in milliseconds.
func wallClock() time.Time {
	var ns uint64
	if clockTimeGet(0, 1, &ns) != 0 { // 0: realtime
		return time.Now()
	}
	return time.Unix(0, int64(ns))
}

// monotonicClock reads the monotonic clock: how long waits have lasted, never
// moved by a change of the wall clock.
func monotonicClock() time.Duration {
	var ns uint64
	if clockTimeGet(1, 1, &ns) != 0 { // 1: monotonic
		return time.Duration(time.Now().UnixNano())
	}
	return time.Duration(ns)
}

// randomGet is WASI's random_get, which Envoy provides (from the OS).
//
//go:wasmimport wasi_snapshot_preview1 random_get
//go:noescape
func randomGet(buf *byte, size uint32) uint32

// randomBytes fills b from the host's random source. crypto/rand would do
// the same, and link math/big into the module (0.4 MB).
func randomBytes(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if st := randomGet(&b[0], uint32(len(b))); st != 0 {
		return hostError{"random_get", st}
	}
	return nil
}

// requestHeader reads one request header (its value may share memory with
// others: see abi.GetHttpRequestHeader).
var requestHeader = abi.GetHttpRequestHeader

// proxyGetProperty is the proxy-wasm ABI's proxy_get_property.
//
//go:wasmimport env proxy_get_property
//go:noescape
func proxyGetProperty(pathData *byte, pathSize int32, valueData unsafe.Pointer, valueSize *int32) uint32

// The out-parameters of a property read, for the reason given for headers.
var (
	propertyData *byte
	propertySize int32
)

// property reads a property by its serialised path (the names joined by NUL
// bytes, see the prop* constants). nil and no error when the host has none.
// The value is in memory the host had the module allocate.
func property(path string) ([]byte, error) {
	propertyData, propertySize = nil, 0
	switch st := proxyGetProperty(unsafe.StringData(path), int32(len(path)), unsafe.Pointer(&propertyData), &propertySize); st {
	case 0: // Ok
		if propertyData == nil {
			return nil, nil
		}
		return unsafe.Slice(propertyData, propertySize), nil
	case 1: // NotFound
		return nil, nil
	default:
		return nil, hostError{"proxy_get_property", st}
	}
}

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
