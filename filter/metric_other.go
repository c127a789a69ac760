//go:build !wasip1

package main

import "github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

// Outside wasm (the tests in Go mode) the metric calls go through the SDK,
// whose wrappers panic on failure; the compiled module calls the ABI
// directly (metric_wasip1.go).

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
