package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Issue 19's targets: the hit's Envoy CPU per request over noop-jwt at most
// half of the earlier module's (hit-base, built from -base-ref and measured
// in the same rounds), and the hit's req/s at least this share of noop's.
const (
	maxBaseRatio = 0.5
	minHitRPS19  = 0.95
)

// buildBase builds the filter module of -base-ref: the commit's tree from
// git archive, built as the Makefile's build target builds the filter.
func (b *bench) buildBase(rootDir string) error {
	out, err := exec.Command("git", "-C", rootDir, "rev-parse", "--verify", *baseRef+"^{commit}").Output()
	if err != nil {
		return fmt.Errorf("-base-ref %q: not a commit of %s: %v", *baseRef, rootDir, err)
	}
	b.baseCommit = strings.TrimSpace(string(out))
	src := filepath.Join(b.dir, "base-src")
	tarball := filepath.Join(b.dir, "base.tar")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	for _, c := range []*exec.Cmd{
		exec.Command("git", "-C", rootDir, "archive", "--format=tar", "-o", tarball, b.baseCommit),
		exec.Command("tar", "-xf", tarball, "-C", src),
	} {
		if text, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", strings.Join(c.Args, " "), err, text)
		}
	}
	b.basePath = filepath.Join(b.dir, "base.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", b.basePath, "./filter")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if text, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the filter of -base-ref %s (%s): %v\n%s", *baseRef, b.baseCommit[:12], err, text)
	}
	return nil
}

// printBase prints hit and hit-base against noop-jwt, per round and pooled.
func (b *bench) printBase() {
	one, sat := b.sideOne, b.sideSat
	if len(one[hitBase]) == 0 {
		return
	}
	if len(one[noopJWT]) == 0 || len(sat[noop]) == 0 {
		fmt.Printf("\nhit-base: noop-jwt and noop must run beside it for issue 19's comparison\n")
		return
	}
	fmt.Printf("\nissue 19: hit against hit-base (the filter of %s, %s), Envoy CPU µs/request at 1 connection over noop-jwt; req/s at %d connections × noop\n",
		*baseRef, b.baseCommit[:12], *satConns)
	fmt.Printf("%-7s | %9s %9s %9s %7s | %9s %9s\n", "round", "noop-jwt", "hit Δ", "base Δ", "ratio", "hit ×noop", "base ×noop")
	n := min(len(one[hit]), len(one[hitBase]), len(one[noopJWT]))
	for i := range n {
		j := one[noopJWT][i].cpuPerReq()
		dh, db := one[hit][i].cpuPerReq()-j, one[hitBase][i].cpuPerReq()-j
		rh, rb := "-", "-"
		if i < min(len(sat[hit]), len(sat[hitBase]), len(sat[noop])) {
			rh = fmt.Sprintf("%.3f", sat[hit][i].rps/sat[noop][i].rps)
			rb = fmt.Sprintf("%.3f", sat[hitBase][i].rps/sat[noop][i].rps)
		}
		fmt.Printf("%-7d | %9.1f %+9.1f %+9.1f %7.2f | %9s %9s\n", i+1, j, dh, db, dh/db, rh, rb)
	}
	dh, db := paired(one[hit], one[noopJWT], cpuOf, minus), paired(one[hitBase], one[noopJWT], cpuOf, minus)
	fmt.Printf("%-7s | %9.1f %+9.1f %+9.1f %7.2f | %9.3f %9.3f\n", "median", median(one[noopJWT], cpuOf), dh, db, dh/db,
		paired(sat[hit], sat[noop], rpsOf, ratio), paired(sat[hitBase], sat[noop], rpsOf, ratio))
	ph, pb, pj := pooledCPU(one[hit]), pooledCPU(one[hitBase]), pooledCPU(one[noopJWT])
	fmt.Printf("%-7s | %9.1f %+9.1f %+9.1f %7.2f |\n", "pooled", pj, ph-pj, pb-pj, (ph-pj)/(pb-pj))
	fmt.Printf("(Δ: over noop-jwt in the same round; ratio: hit's Δ / hit-base's Δ, target ≤ %.2f; median: of same-round differences and ratios;\n"+
		" pooled: over all rounds; ×noop: same-round req/s ratio, target ≥ %.2f for hit)\n", maxBaseRatio, minHitRPS19)
}

// issue19Targets prints issue 19's items 1 and 2 as PASS or MISS.
func (b *bench) issue19Targets() {
	one, sat := b.sideOne, b.sideSat
	if len(sat[hit]) > 0 && len(sat[noop]) > 0 {
		r := paired(sat[hit], sat[noop], rpsOf, ratio)
		verdict(r >= minHitRPS19, fmt.Sprintf("hit req/s ≥ %.2f × noop at %d connections (issue 19)", minHitRPS19, *satConns),
			fmt.Sprintf("%.3f × (margin %+.1f points)", r, 100*(r-minHitRPS19)))
	}
	if len(one[hitBase]) == 0 || len(one[noopJWT]) == 0 {
		return
	}
	dh, db := paired(one[hit], one[noopJWT], cpuOf, minus), paired(one[hitBase], one[noopJWT], cpuOf, minus)
	pj := pooledCPU(one[noopJWT])
	verdict(dh <= maxBaseRatio*db, fmt.Sprintf("hit's CPU over noop-jwt ≤ %.2f × %s's (issue 19)", maxBaseRatio, *baseRef),
		fmt.Sprintf("%+.1f against %+.1f µs: %.2f × (pooled %.2f ×)", dh, db, dh/db, (pooledCPU(one[hit])-pj)/(pooledCPU(one[hitBase])-pj)))
}
