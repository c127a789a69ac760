//go:build !wasip1

package main

// Outside wasm (the tests in Go mode) the host calls of abi_wasip1.go go
// through the SDK and the Go runtime instead.

import (
	"crypto/rand"
	"errors"
	"strings"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// wallClock is time.Now.
func wallClock() time.Time { return time.Now() }

var processStart = time.Now()

// monotonicClock is the monotonic time since the process started.
func monotonicClock() time.Duration { return time.Since(processStart) }

// randomBytes is crypto/rand's.
func randomBytes(b []byte) error {
	_, err := rand.Read(b)
	return err
}

// requestHeader is the SDK's header read.
var requestHeader = proxywasm.GetHttpRequestHeader

// property is the SDK's property read, with the same results as the
// compiled module's.
func property(path string) ([]byte, error) {
	v, err := proxywasm.GetProperty(strings.Split(path, "\x00"))
	if errors.Is(err, types.ErrorStatusNotFound) {
		return nil, nil
	}
	return v, err
}

// The SDK's metric wrappers panic on failure; these turn a panic into the
// error the compiled module's calls return.

func defineMetric(kind metricKind, name string) (id uint32, err error) {
	defer recoverHostPanic("proxy_define_metric", &err)
	if kind == metricHistogram {
		return uint32(proxywasm.DefineHistogramMetric(name)), nil
	}
	return uint32(proxywasm.DefineCounterMetric(name)), nil
}

func addToMetric(id uint32, n uint64) (err error) {
	defer recoverHostPanic("proxy_increment_metric", &err)
	proxywasm.MetricCounter(id).Increment(n)
	return nil
}

func recordMetric(id uint32, v uint64) (err error) {
	defer recoverHostPanic("proxy_record_metric", &err)
	proxywasm.MetricHistogram(id).Record(v)
	return nil
}

func recoverHostPanic(call string, err *error) {
	if r := recover(); r != nil {
		*err = hostError{call, 0}
	}
}
