package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"fortio.org/fortio/fhttp"
	"fortio.org/fortio/periodic"
)

// sample is one fortio run: its rate, exact latency percentiles (p99.9 in
// p999) and maximum in µs, the number of answers and of answers other than
// 200, and Envoy's CPU time per answer in µs over the run (0 when not
// measured).
type sample struct {
	rps, p50, p99, p999, max float64
	count, bad               int64
	cpu                      float64 // Envoy CPU seconds over the run
}

func (s sample) cpuPerReq() float64 { return 1e6 * s.cpu / float64(max(s.count, 1)) }

// latencies is a fortio AccessLogger that keeps every latency, one slice per
// thread so that recording takes no lock. fortio's own histogram is too
// coarse for differences of a few microseconds.
type latencies struct{ per [][]float64 }

func (l *latencies) Start(ctx context.Context, _ periodic.ThreadID, _ int64, _ time.Time) context.Context {
	return ctx
}

func (l *latencies) Report(_ context.Context, id periodic.ThreadID, _ int64, _ time.Time, seconds float64, _ bool, _ string) {
	l.per[id] = append(l.per[id], seconds)
}

func (l *latencies) Info() string { return "exact latencies" }

// load runs fortio against u for d with n keep-alive connections as fast as
// they go (closed loop) and, when pid > 0, measures that process's CPU time
// over the run.
func load(u, tok string, d time.Duration, n, pid int) (sample, error) {
	o := fhttp.HTTPRunnerOptions{}
	o.URL = u
	o.QPS = -1
	o.Duration = d
	o.NumThreads = n
	o.Out = io.Discard
	lat := &latencies{per: make([][]float64, n)}
	o.AccessLogger = lat
	if err := o.AddAndValidateExtraHeader("Authorization: Bearer " + tok); err != nil {
		return sample{}, err
	}
	var cpu0 float64
	if pid > 0 {
		var err error
		if cpu0, err = cpuSeconds(pid); err != nil {
			return sample{}, err
		}
	}
	res, err := fhttp.RunHTTPTest(&o)
	if err != nil {
		return sample{}, fmt.Errorf("fortio on %s: %w", u, err)
	}
	count := res.DurationHistogram.Count
	return measured(sample{rps: res.ActualQPS, count: count, bad: count - res.RetCodes[http.StatusOK]}, lat, pid, cpu0, "fortio on "+u)
}

// measured completes a run's sample: pid's CPU time since cpu0 (when pid >
// 0) and the latency percentiles. what names the run in an error.
func measured(s sample, lat *latencies, pid int, cpu0 float64, what string) (sample, error) {
	if pid > 0 {
		cpu1, err := cpuSeconds(pid)
		if err != nil {
			return sample{}, err
		}
		s.cpu = cpu1 - cpu0
	}
	all := slices.Concat(lat.per...)
	slices.Sort(all)
	if len(all) == 0 {
		return sample{}, fmt.Errorf("%s: no requests", what)
	}
	pct := func(p float64) float64 { return 1e6 * all[min(len(all)-1, int(p*float64(len(all))))] }
	s.p50, s.p99, s.p999, s.max = pct(0.50), pct(0.99), pct(0.999), 1e6*all[len(all)-1]
	return s, nil
}

// median of f over xs.
func median(xs []sample, f func(sample) float64) float64 {
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// pooledCPU is Envoy's CPU time per request over all the runs of xs, in µs.
func pooledCPU(xs []sample) float64 {
	var cpu float64
	var n int64
	for _, x := range xs {
		cpu += x.cpu
		n += x.count
	}
	return 1e6 * cpu / float64(max(n, 1))
}

func get(c *http.Client, u, tok string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	return res.StatusCode, nil
}
