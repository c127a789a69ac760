package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/phantom-token/envoy-phantom-token/e2e/harness"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100
// on every Linux this runs on (it is fixed by the kernel's ABI).
const clockTicks = 100

// cpuSeconds is a process's CPU time so far, all threads: the sum of its
// threads' run time from /proc/<pid>/task/*/schedstat, in nanoseconds, or,
// on a kernel without schedstat, utime+stime from /proc/<pid>/stat. The
// latter counts in 10 ms ticks: at 3,000 requests/s, a 2.5 s run's CPU per
// request moves in steps of 1.3 µs, too coarse beside a 1 µs target.
func cpuSeconds(pid int) (float64, error) {
	if s, err := runTime(pid); err == nil {
		return s, nil
	}
	return statSeconds(pid)
}

// runTime is the sum of the first field of each thread's schedstat (time
// spent on a CPU, ns). Envoy's threads live as long as it does, so none of
// its time is lost with a thread that ends between two readings.
func runTime(pid int) (float64, error) {
	paths, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil {
		return 0, err
	}
	if len(paths) == 0 {
		return 0, fmt.Errorf("/proc/%d/task/*/schedstat: none", pid)
	}
	var ns uint64
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if os.IsNotExist(err) { // the thread ended
			continue
		}
		if err != nil {
			return 0, err
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, fmt.Errorf("%s: empty", p)
		}
		v, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", p, err)
		}
		ns += v
	}
	return float64(ns) / 1e9, nil
}

// statSeconds is utime+stime from /proc/<pid>/stat, all threads.
func statSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// "pid (comm) state ppid …": comm may hold spaces; utime and stime are
	// fields 14 and 15, the 12th and 13th after the closing parenthesis.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	utime, err1 := strconv.ParseUint(fields[11], 10, 64)
	stime, err2 := strconv.ParseUint(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, fields[11], fields[12])
	}
	return float64(utime+stime) / clockTicks, nil
}

// loadAvg is /proc/loadavg's first three fields.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// memBreakdown is where an Envoy's resident memory is, from
// /proc/<pid>/smaps, in KiB, and what tcmalloc says of its heap.
type memBreakdown struct {
	rss       int // sum of Rss over the mappings (= VmRSS)
	binary    int // file pages of the Envoy binary (text, rodata, data)
	otherFile int // other files (libc, …)
	code      int // anonymous executable mappings: code V8 compiled (wasm and JS)
	linear    int // wasm linear memories: the committed start of a ≥ 4 GiB reservation
	vms       int // how many linear memories
	otherAnon int // the rest: Envoy's malloc heap (tcmalloc, with V8's own allocations), V8 heap pages, stacks
	// tcmalloc, from the admin /memory endpoint, in bytes.
	tcAllocated, tcHeap, tcFree, tcThreadCache int64
}

type mapping struct {
	start, end uint64
	perms      string
	path       string
	rss        int
}

// smapsBreakdown reads /proc/<pid>/smaps. A wasm linear memory in V8 is a
// large PROT_NONE reservation (8 GiB and guard pages) whose start is made
// read-write as the memory grows: a "rw-p" anonymous mapping followed at once
// by a "---p" one of at least 4 GiB.
func smapsBreakdown(pid int, envoyPath string) (memBreakdown, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return memBreakdown{}, err
	}
	defer f.Close()
	var maps []mapping
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			lo, hi, _ := strings.Cut(fields[0], "-")
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 == nil && err2 == nil {
				m := mapping{start: start, end: end, perms: fields[1]}
				if len(fields) >= 6 {
					m.path = strings.Join(fields[5:], " ")
				}
				maps = append(maps, m)
				continue
			}
		}
		if len(maps) > 0 && len(fields) >= 2 && fields[0] == "Rss:" {
			maps[len(maps)-1].rss, _ = strconv.Atoi(fields[1])
		}
	}
	if err := sc.Err(); err != nil {
		return memBreakdown{}, err
	}
	binary := envoyPath
	if p, err := filepath.EvalSymlinks(envoyPath); err == nil {
		binary = p
	}
	if p, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil {
		binary = p
	}
	var b memBreakdown
	for i, m := range maps {
		b.rss += m.rss
		anon := m.path == "" || strings.HasPrefix(m.path, "[")
		switch {
		case !anon && m.path == binary:
			b.binary += m.rss
		case !anon:
			b.otherFile += m.rss
		case strings.Contains(m.perms, "x"):
			b.code += m.rss
		case m.perms == "rw-p" && i+1 < len(maps) && maps[i+1].start == m.end &&
			maps[i+1].perms == "---p" && maps[i+1].end-maps[i+1].start >= 4<<30:
			b.linear += m.rss
			b.vms++
		default:
			b.otherAnon += m.rss
		}
	}
	return b, nil
}

// tcmalloc adds the admin /memory figures to b.
func (b *memBreakdown) tcmalloc(ctx context.Context, envoy *harness.Envoy) {
	body, err := envoy.Admin(ctx, "/memory")
	if err != nil {
		return
	}
	var m struct {
		Allocated   string `json:"allocated"`
		HeapSize    string `json:"heap_size"`
		Free        string `json:"pageheap_free"`
		ThreadCache string `json:"total_thread_cache"`
	}
	if json.Unmarshal([]byte(body), &m) != nil {
		return
	}
	p := func(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }
	b.tcAllocated, b.tcHeap, b.tcFree, b.tcThreadCache = p(m.Allocated), p(m.HeapSize), p(m.Free), p(m.ThreadCache)
}
