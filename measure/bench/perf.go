package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// recording is a `perf record` of Envoy over one run (-perf-dir): where
// Envoy's time goes by object (its binary, with V8; the wasm code V8
// compiled, which perf sees as anonymous memory; the kernel; libc), which
// `perf report --sort dso` prints per file. Envoy's binary is stripped, so
// perf names objects, not functions.
type recording struct{ cmd *exec.Cmd }

// startPerf records pid for d when -perf-dir is set and the run is at one
// connection; a recording that cannot start is reported and skipped.
func startPerf(pid int, listener string, round, conns int, d time.Duration) recording {
	if *perfDir == "" || conns != 1 || pid <= 0 {
		return recording{}
	}
	out := filepath.Join(*perfDir, fmt.Sprintf("%s-%02d.data", listener, round+1))
	secs := strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
	cmd := exec.Command("perf", "record", "-q", "-F", "1999", "-p", strconv.Itoa(pid), "-o", out, "--", "sleep", secs)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "perf record: %v\n", err)
		return recording{}
	}
	return recording{cmd}
}

func (r recording) wait() {
	if r.cmd != nil {
		_ = r.cmd.Wait()
	}
}

// perfClasses are the objects the report sums samples into.
var perfClasses = []string{"envoy", "wasm (JIT)", "kernel", "libc", "other"}

func perfClass(dso string) string {
	switch {
	case dso == "envoy":
		return "envoy"
	case strings.HasPrefix(dso, "[JIT]"):
		return "wasm (JIT)"
	case dso == "[kernel.kallsyms]":
		return "kernel"
	case strings.HasPrefix(dso, "libc"):
		return "libc"
	}
	return "other"
}

// perfSamples sums the samples of a listener's recordings by class.
func perfSamples(listener string) (map[string]float64, error) {
	files, err := filepath.Glob(filepath.Join(*perfDir, listener+"-[0-9][0-9].data"))
	if err != nil || len(files) == 0 {
		return nil, err
	}
	out := map[string]float64{}
	for _, f := range files {
		text, err := exec.Command("perf", "report", "-i", f, "--sort", "dso", "--stdio", "-n", "-q").Output()
		if err != nil {
			return nil, fmt.Errorf("perf report -i %s: %v", f, err)
		}
		for _, line := range strings.Split(string(text), "\n") {
			fields := strings.Fields(line)
			if len(fields) < 3 || !strings.HasSuffix(fields[0], "%") {
				continue
			}
			n, err := strconv.ParseFloat(fields[1], 64)
			if err != nil {
				continue
			}
			out[perfClass(strings.Join(fields[2:], " "))] += n
		}
	}
	return out, nil
}

// printPerf splits each listener's pooled Envoy CPU per request at one
// connection by the share of perf's samples in each class.
func (b *bench) printPerf() {
	if *perfDir == "" {
		return
	}
	fmt.Printf("\nperf (issue 19): Envoy CPU µs/request at 1 connection, pooled, split by where perf's samples fell (cpu-clock, 1999 Hz; in %s)\n", *perfDir)
	fmt.Printf("%-12s %8s", "listener", "samples")
	for _, c := range perfClasses {
		fmt.Printf(" %11s", c)
	}
	fmt.Printf(" %9s\n", "all")
	split := map[string]map[string]float64{}
	for _, s := range listeners {
		n, err := perfSamples(s)
		if err != nil {
			fmt.Printf("%-12s %v\n", s, err)
			continue
		}
		var total float64
		for _, v := range n {
			total += v
		}
		if total == 0 {
			continue
		}
		cpu := pooledCPU(b.sideOne[s])
		split[s] = map[string]float64{}
		fmt.Printf("%-12s %8.0f", s, total)
		for _, c := range perfClasses {
			split[s][c] = cpu * n[c] / total
			fmt.Printf(" %11.1f", split[s][c])
		}
		fmt.Printf(" %9.1f\n", cpu)
	}
	if split[noopJWT] == nil {
		return
	}
	for _, s := range listeners {
		if s == noopJWT || split[s] == nil {
			continue
		}
		fmt.Printf("%-21s", s+" − noop-jwt")
		var all float64
		for _, c := range perfClasses {
			d := split[s][c] - split[noopJWT][c]
			all += d
			fmt.Printf(" %+11.1f", d)
		}
		fmt.Printf(" %+9.1f\n", all)
	}
}
