package main

import (
	"math"
	"os"
	"testing"
	"time"
)

// The two sources of a process's CPU time agree: after a third of a second
// of work, this process's schedstat run time and its utime+stime differ by
// no more than a few 10 ms ticks.
func TestRunTimeAgreesWithStat(t *testing.T) {
	pid := os.Getpid()
	r0, err := runTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	s0, err := statSeconds(pid)
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for t0 := time.Now(); time.Since(t0) < 300*time.Millisecond; {
		x++
	}
	r1, _ := runTime(pid)
	s1, _ := statSeconds(pid)
	if r1-r0 < 0.05 {
		t.Errorf("run time grew %.3f s over 0.3 s of work (%d loops)", r1-r0, x)
	}
	if d := math.Abs((r1 - r0) - (s1 - s0)); d > 0.05 {
		t.Errorf("run time grew %.3f s, utime+stime %.3f s", r1-r0, s1-s0)
	}
}
