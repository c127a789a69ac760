package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/phantom-token/envoy-phantom-token/measure/wasmfile"
)

// byPackage sums function body sizes per Go package.
func byPackage(w *wasmfile.Module) map[string]int {
	out := map[string]int{}
	for _, f := range w.Funcs {
		out[wasmfile.GoPackage(f.Name)] += f.Size
	}
	return out
}

// printModules prints the section sizes of the filter and the no-op module and
// the filter's code by Go package, largest first, next to the no-op's.
func printModules(filter, noop *wasmfile.Module, top int) {
	fmt.Printf("\n== Modules: sections (bytes)\n")
	fmt.Printf("%-22s %12s %12s %12s\n", "section", "filter", "no-op", "filter-no-op")
	keys := []string{}
	for k := range filter.Sections {
		keys = append(keys, k)
	}
	for k := range noop.Sections {
		if _, ok := filter.Sections[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b string) int { return filter.Sections[b] - filter.Sections[a] })
	for _, k := range keys {
		fmt.Printf("%-22s %12d %12d %+12d\n", k, filter.Sections[k], noop.Sections[k], filter.Sections[k]-noop.Sections[k])
	}
	fmt.Printf("%-22s %12d %12d %+12d\n", "file", filter.Size, noop.Size, filter.Size-noop.Size)
	fmt.Printf("%-22s %12d %12d %+12d\n", "functions", len(filter.Funcs), len(noop.Funcs), len(filter.Funcs)-len(noop.Funcs))

	fp, np := byPackage(filter), byPackage(noop)
	pkgs := make([]string, 0, len(fp))
	for p := range fp {
		pkgs = append(pkgs, p)
	}
	slices.SortFunc(pkgs, func(a, b string) int {
		if d := fp[b] - fp[a]; d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	fmt.Printf("\n== Filter code section by Go package (function bodies from the name section), top %d\n", top)
	fmt.Printf("%-58s %10s %6s %10s %10s\n", "package", "filter B", "%", "no-op B", "extra B")
	code := filter.Sections["code"]
	restF, restN := 0, 0
	for i, p := range pkgs {
		if i >= top {
			restF += fp[p]
			restN += np[p]
			continue
		}
		fmt.Printf("%-58s %10d %5.1f%% %10d %+10d\n", shorten(p, 58), fp[p], 100*float64(fp[p])/float64(code), np[p], fp[p]-np[p])
	}
	for p, n := range np { // packages only the no-op links
		if _, ok := fp[p]; !ok {
			restN += n
		}
	}
	fmt.Printf("%-58s %10d %5.1f%% %10d %+10d\n", fmt.Sprintf("(%d other packages)", max(len(pkgs)-top, 0)), restF, 100*float64(restF)/float64(code), restN, restF-restN)

	// By origin: what a smaller module could drop.
	origin := func(p string) string {
		switch {
		case p == "main" || strings.HasPrefix(p, "github.com_phantom_token_"):
			return "this project (filter = main, internal/…)"
		case strings.HasPrefix(p, "github.com_proxy_wasm_"):
			return "proxy-wasm Go SDK"
		case strings.HasPrefix(p, "github.com_tidwall_"):
			return "gjson, match, pretty"
		case strings.HasPrefix(p, "runtime") || strings.HasPrefix(p, "internal_") || p == "sync" || strings.HasPrefix(p, "sync_") || strings.HasPrefix(p, "(") || p == "gcWriteBarrier" || strings.HasPrefix(p, "go_") || strings.HasPrefix(p, "wasm"):
			return "Go runtime, internal/…, sync, type funcs"
		case strings.Contains(p, "."):
			return "other third-party"
		}
		return "Go standard library (rest)"
	}
	fo, no := map[string]int{}, map[string]int{}
	for p, n := range fp {
		fo[origin(p)] += n
	}
	for p, n := range np {
		no[origin(p)] += n
	}
	origins := make([]string, 0, len(fo))
	for o := range fo {
		origins = append(origins, o)
	}
	slices.SortFunc(origins, func(a, b string) int { return fo[b] - fo[a] })
	fmt.Printf("\nby origin\n")
	for _, o := range origins {
		fmt.Printf("%-58s %10d %5.1f%% %10d %+10d\n", o, fo[o], 100*float64(fo[o])/float64(code), no[o], fo[o]-no[o])
	}
}

func shorten(s string, n int) string {
	s = strings.Replace(s, "github.com_phantom_token_envoy_phantom_token_", "(project) ", 1)
	s = strings.Replace(s, "github.com_proxy_wasm_proxy_wasm_go_sdk_", "(sdk) ", 1)
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n+1:]
}
