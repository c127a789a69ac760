package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// The attribution listeners of issue 19 item 3, run only when -listeners
// names them: modules that do less than the filter, so that the difference
// between two of them measured in the same rounds is the cost of one thing.
// Those ending in -jwt get the JWT from the client, like noop-jwt, so that
// the JWT's bytes through Envoy cancel against a hit.
const (
	miniJWT    = "mini-jwt"     // ./mini, no tags: exports proxy_on_request_headers only (and what the host needs)
	miniAllJWT = "mini-all-jwt" // ./mini -tags mini_all: also every other per-stream callback the SDK exports
	miniHit    = "mini-hit"     // ./mini -tags mini_hit: a hit's three host calls and nothing else
	miniHit3   = "mini-hit-3cb" // ./mini -tags "mini_hit mini_3cb": the same, with the filter's 3 callbacks per request
	padJWT     = "pad-jwt"      // ./noop -tags pad: the no-op with the filter's packages linked, never called
	miniMemJWT = "mini-mem-jwt" // ./mini -tags mini_mem: 100 memory.fill and 100 memory.copy per request
)

var extraListeners = []string{miniJWT, miniAllJWT, miniHit, miniHit3, padJWT, miniMemJWT}

// extraBuilds are the builds of the attribution modules, from measure/.
var extraBuilds = map[string]struct{ tags, pkg string }{
	miniJWT:    {"", "./bench/mini"},
	miniAllJWT: {"mini_all", "./bench/mini"},
	miniHit:    {"mini_hit", "./bench/mini"},
	miniHit3:   {"mini_hit,mini_3cb", "./bench/mini"},
	padJWT:     {"pad", "./bench/noop"},
	miniMemJWT: {"mini_mem", "./bench/mini"},
}

// buildExtra builds the attribution modules the side-by-side phase runs.
func (b *bench) buildExtra() error {
	b.miniPaths = map[string]string{}
	for _, l := range listeners {
		c, ok := extraBuilds[l]
		if !ok {
			continue
		}
		out := filepath.Join(b.dir, l+".wasm")
		args := []string{"build", "-tags", c.tags, "-buildmode=c-shared", "-trimpath", "-o", out, c.pkg}
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if text, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, text)
		}
		b.miniPaths[l] = out
	}
	return nil
}

// attributionWanted reports whether any attribution listener runs.
func attributionWanted() bool {
	for _, l := range extraListeners {
		if slices.Contains(listeners, l) {
			return true
		}
	}
	return false
}

// printAttribution prints each listener's Envoy CPU per request over
// noop-jwt, and the differences that isolate one cost each.
func (b *bench) printAttribution() {
	one, sat := b.sideOne, b.sideSat
	if !attributionWanted() || len(one[noopJWT]) == 0 {
		return
	}
	fmt.Printf("\nattribution (issue 19): Envoy CPU µs/request at 1 connection, median of same-round differences (pooled over all rounds)\n")
	diff := func(x, y string) string {
		if len(one[x]) == 0 || len(one[y]) == 0 {
			return "-"
		}
		return fmt.Sprintf("%+6.2f (%+6.2f)", paired(one[x], one[y], cpuOf, minus), pooledCPU(one[x])-pooledCPU(one[y]))
	}
	rps := func(x, y string) string {
		if len(sat[x]) == 0 || len(sat[y]) == 0 {
			return "-"
		}
		return fmt.Sprintf("%.3f", paired(sat[x], sat[y], rpsOf, ratio))
	}
	for _, r := range []struct{ what, x, y string }{
		{"hit over noop-jwt: what a hit costs beyond the JWT's bytes", hit, noopJWT},
		{"noop-jwt over mini-all-jwt: the SDK's dispatch (same callbacks)", noopJWT, miniAllJWT},
		{"mini-all-jwt over mini-jwt: 7 callbacks a hit does not need", miniAllJWT, miniJWT},
		{"pad-jwt over noop-jwt: a module the filter's size, per call", padJWT, noopJWT},
		{"mini-hit over mini-jwt: a hit's 3 host calls and 1 allocate entry", miniHit, miniJWT},
		{"hit over mini-hit: the filter's Go, the SDK, the callbacks, the size", hit, miniHit},
		{"mini-hit-3cb over mini-hit: context create and done, each returning at once", miniHit3, miniHit},
		{"hit over mini-hit-3cb: the filter's Go beyond the same callbacks and calls", hit, miniHit3},
		{"mini-mem-jwt over mini-jwt: 100 memory.fill and 100 memory.copy", miniMemJWT, miniJWT},
		{"noop-jwt over mini-jwt: the SDK no-op over the least module", noopJWT, miniJWT},
	} {
		fmt.Printf("  %-70s %s   req/s × %s\n", r.what, diff(r.x, r.y), rps(r.x, r.y))
	}
	fmt.Printf("per round, CPU µs/request over noop-jwt at 1 connection\n")
	for _, s := range listeners {
		if s == noopJWT || len(one[s]) == 0 {
			continue
		}
		var d []string
		for i := range min(len(one[s]), len(one[noopJWT])) {
			d = append(d, fmt.Sprintf("%+.1f", one[s][i].cpuPerReq()-one[noopJWT][i].cpuPerReq()))
		}
		fmt.Printf("%-12s %s\n", s, strings.Join(d, " "))
	}
}
