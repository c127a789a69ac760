//go:build wasip1

package main

import "time"

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
