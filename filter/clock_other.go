//go:build !wasip1

package main

import "time"

// wallClock is time.Now outside wasm (the tests in Go mode).
func wallClock() time.Time { return time.Now() }

var processStart = time.Now()

// monotonicClock is the monotonic time since the process started.
func monotonicClock() time.Duration { return time.Since(processStart) }
