package main

import (
	"fmt"

	"github.com/phantom-token/envoy-phantom-token/e2e/harness"
	"strconv"
	"strings"
	"time"
)

// The configurations of the memory Envoys, each alone in its Envoy; with
// -gogc, one more: the filter with the GOGC environment variable in its VMs
// (vm_config.environment_variables), which the Go runtime reads when the VM
// starts: not a target, a measure of what the GC setting would save.
var memConfigs = []string{passthrough, noop, "filter"}

const filterGOGC = "filter GOGC"

// memory is phase 3: RSS of three Envoys at several worker counts, then the
// burst and churn checks on the filter's Envoy at targetWorkers.
func (b *bench) memory() error {
	var ws []int
	for _, f := range strings.Split(*rssWorkers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("-rss-workers: %q", *rssWorkers)
		}
		ws = append(ws, n)
	}
	fmt.Printf("\n== Memory: one Envoy per configuration and worker count; RSS after 8 connections for %s and 1 s of rest\n", *warmup)
	b.rss = map[string]map[int]memBreakdown{}
	if *gogc != "" {
		memConfigs = append(memConfigs, filterGOGC)
	}
	var kept *harness.Envoy // the filter's Envoy at targetWorkers, for the checks
	var keptPID int
	defer func() {
		if kept != nil {
			_ = kept.Stop()
		}
	}()
	for _, w := range ws {
		for _, c := range memConfigs {
			keep := w == targetWorkers && c == "filter"
			m, envoy, pid, err := b.memoryOf(c, w, keep)
			if err != nil {
				return err
			}
			if keep {
				kept, keptPID = envoy, pid
			}
			if b.rss[c] == nil {
				b.rss[c] = map[int]memBreakdown{}
			}
			b.rss[c][w] = m
		}
	}
	b.printMemory(ws)
	if kept == nil {
		return nil
	}
	fmt.Printf("\n(the checks below run on the filter's Envoy with %d workers)\n", targetWorkers)
	var err error
	if b.coalesced, err = burstTest(b.ctx, kept, b.ids); err != nil {
		return err
	}
	if *tokens > 0 {
		if b.flat, err = memoryTest(kept.URL(hit), keptPID, b.ids); err != nil {
			return err
		}
		b.churned = true
	}
	k := kept
	kept = nil
	return stop(k)
}

// memoryOf starts one Envoy with one configuration, drives it and reads its
// memory. With keep, it returns the Envoy running; else it stops it.
func (b *bench) memoryOf(config string, w int, keep bool) (memBreakdown, *harness.Envoy, int, error) {
	listener := config
	switch config {
	case "filter":
		listener = hit
	case filterGOGC:
		listener = hitGOGC
	}
	envoy, pid, err := b.start(w, listener)
	if err != nil {
		return memBreakdown{}, nil, 0, err
	}
	m, err := b.measureMemory(envoy, pid, listener)
	if err != nil || !keep {
		_ = envoy.Stop()
		if err == nil {
			err = stop(envoy)
		}
		return m, nil, 0, err
	}
	return m, envoy, pid, nil
}

func (b *bench) measureMemory(envoy *harness.Envoy, pid int, listener string) (memBreakdown, error) {
	u := envoy.URL(listener)
	if listener == hit || listener == hitGOGC {
		if err := b.fill(u); err != nil {
			return memBreakdown{}, err
		}
	}
	if _, err := load(u+"/mem", b.tok, *warmup, 8, 0); err != nil {
		return memBreakdown{}, err
	}
	time.Sleep(time.Second)
	m, err := smapsBreakdown(pid, b.envoyPath)
	if err != nil {
		return memBreakdown{}, err
	}
	m.tcmalloc(b.ctx, envoy)
	return m, nil
}

func (b *bench) printMemory(ws []int) {
	k := func(kib int) string { return fmt.Sprintf("%.1f", float64(kib)/1024) }
	m := func(n int64) string { return fmt.Sprintf("%.1f", float64(n)/(1<<20)) }
	fmt.Printf("%-15s %3s | %7s %8s %8s | %7s %6s %7s %9s %7s | %s\n",
		"config", "wkr", "RSS", "Δpass", "Δnoop", "binary", "files", "V8 code", "linear(n)", "anon", "tcmalloc alloc/heap/free/thread caches")
	for _, w := range ws {
		pass, nop := b.rss[passthrough][w], b.rss[noop][w]
		for _, c := range memConfigs {
			x := b.rss[c][w]
			dPass, dNoop := "-", "-"
			if c != passthrough {
				dPass = fmt.Sprintf("%+.1f", float64(x.rss-pass.rss)/1024)
			}
			if c == "filter" || c == filterGOGC {
				dNoop = fmt.Sprintf("%+.1f", float64(x.rss-nop.rss)/1024)
			}
			if c == filterGOGC {
				c = "filter GOGC=" + *gogc
			}
			fmt.Printf("%-15s %3d | %7s %8s %8s | %7s %6s %7s %6s(%d) %7s | %s/%s/%s/%s\n",
				c, w, k(x.rss), dPass, dNoop, k(x.binary), k(x.otherFile), k(x.code), k(x.linear), x.vms, k(x.otherAnon),
				m(x.tcAllocated), m(x.tcHeap), m(x.tcFree), m(x.tcThreadCache))
		}
	}
	fmt.Printf("(MiB. binary: Envoy's file pages; files: other files; V8 code: anonymous executable mappings; linear(n): wasm linear\n" +
		" memories, n VMs (one per worker, plus the main thread's and the configuration's canary); anon: the rest, mostly tcmalloc's heap)\n")
	for _, w := range ws {
		pass, nop, f := b.rss[passthrough][w], b.rss[noop][w], b.rss["filter"][w]
		parts := func(a, z memBreakdown) string {
			return fmt.Sprintf("binary %+.1f, V8 code %+.1f, linear %+.1f, other anon %+.1f (tcmalloc allocated %+.1f, heap %+.1f), files %+.1f",
				float64(z.binary-a.binary)/1024, float64(z.code-a.code)/1024, float64(z.linear-a.linear)/1024, float64(z.otherAnon-a.otherAnon)/1024,
				float64(z.tcAllocated-a.tcAllocated)/(1<<20), float64(z.tcHeap-a.tcHeap)/(1<<20), float64(z.otherFile-a.otherFile)/1024)
		}
		fmt.Printf("%d worker(s): noop − passthrough %+.1f MiB = %s\n", w, float64(nop.rss-pass.rss)/1024, parts(pass, nop))
		fmt.Printf("%d worker(s): filter − noop      %+.1f MiB = %s\n", w, float64(f.rss-nop.rss)/1024, parts(nop, f))
	}
}
