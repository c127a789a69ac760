//go:build !wasip1

package main

import "time"

// wallClock is time.Now outside wasm (the tests in Go mode).
func wallClock() time.Time { return time.Now() }
