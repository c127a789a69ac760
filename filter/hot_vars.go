//go:build !wasip1 || debugstats

package main

import "github.com/phantom-token/envoy-phantom-token/filter/abi"

// The host calls of a cache hit, as variables: the tests in Go mode make them
// fail or panic, and a debugstats build counts and times them.
var (
	getHeader     = requestHeader
	replaceHeader = abi.ReplaceHttpRequestHeader
	now           = wallClock
)
