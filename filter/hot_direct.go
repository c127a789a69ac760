//go:build wasip1 && !debugstats

package main

import (
	"time"

	"github.com/phantom-token/envoy-phantom-token/filter/abi"
)

// The host calls of a cache hit, as plain functions in the released module:
// a call through a variable reads the variable and the function table, memory
// a hit would otherwise not touch (docs/performance.md). hot_vars.go has them
// as variables for the tests and the debugstats build.

func getHeader(name string) (string, error) { return abi.GetHttpRequestHeader(name) }

func replaceHeader(name, value string) error { return abi.ReplaceHttpRequestHeader(name, value) }

func now() time.Time { return wallClock() }
