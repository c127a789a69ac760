package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// wasmInfo is what the benchmark reads from a module: section sizes and the
// size of every function body, named from the name section.
type wasmInfo struct {
	size     int
	sections map[string]int // by name: "code", "data", "custom:name", …
	funcs    []wasmFunc
}

type wasmFunc struct {
	name string
	size int // bytes of the body in the code section, with its size prefix
}

var sectionNames = map[byte]string{
	0: "custom", 1: "type", 2: "import", 3: "function", 4: "table", 5: "memory",
	6: "global", 7: "export", 8: "start", 9: "element", 10: "code", 11: "data", 12: "datacount",
}

// readWasm parses a module file.
func readWasm(path string) (*wasmInfo, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseWasm(b)
}

// parseWasm reads the section headers of a binary module, the import section
// (to number functions), the code section (body sizes) and the function names
// subsection of the custom "name" section. Every loop is bounded by the bytes
// it reads.
func parseWasm(b []byte) (*wasmInfo, error) {
	if len(b) < 8 || string(b[:4]) != "\x00asm" {
		return nil, errors.New("not a wasm binary module")
	}
	info := &wasmInfo{size: len(b), sections: map[string]int{}}
	var imported int
	var bodies []int
	names := map[int]string{}
	r := &reader{b: b, off: 8}
	for r.off < len(b) {
		id := r.byte()
		n := int(r.uleb())
		if r.err != nil || n < 0 || r.off+n > len(b) {
			return nil, fmt.Errorf("section header at %d: truncated", r.off)
		}
		body := &reader{b: b[r.off : r.off+n]}
		r.off += n
		name := sectionNames[id]
		if name == "" {
			name = fmt.Sprintf("section%d", id)
		}
		switch id {
		case 0:
			name = "custom:" + body.name()
			if name == "custom:name" {
				readNames(body, names)
			}
		case 2:
			imported = countFuncImports(body)
		case 10:
			for range body.uleb() {
				if body.err != nil {
					break
				}
				start := body.off
				size := int(body.uleb())
				body.off += size
				bodies = append(bodies, body.off-start)
			}
		}
		info.sections[name] += n
	}
	for i, size := range bodies {
		info.funcs = append(info.funcs, wasmFunc{name: names[imported+i], size: size})
	}
	return info, nil
}

func countFuncImports(r *reader) int {
	funcs := 0
	for range r.uleb() {
		r.name()
		r.name()
		kind := r.byte()
		switch kind {
		case 0: // function: type index
			r.uleb()
			funcs++
		case 1: // table: reftype, limits
			r.byte()
			r.limits()
		case 2: // memory: limits
			r.limits()
		case 3: // global: valtype, mutability
			r.byte()
			r.byte()
		}
		if r.err != nil {
			break
		}
	}
	return funcs
}

func readNames(r *reader, names map[int]string) {
	for r.off < len(r.b) && r.err == nil {
		sub := r.byte()
		n := int(r.uleb())
		if r.err != nil || r.off+n > len(r.b) {
			return
		}
		if sub == 1 {
			s := &reader{b: r.b[r.off : r.off+n]}
			for range s.uleb() {
				idx := int(s.uleb())
				name := s.name()
				if s.err != nil {
					break
				}
				names[idx] = name
			}
		}
		r.off += n
	}
}

type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) byte() byte {
	if r.off >= len(r.b) {
		r.err = errors.New("truncated")
		return 0
	}
	r.off++
	return r.b[r.off-1]
}

func (r *reader) uleb() uint64 {
	var x uint64
	for shift := 0; shift < 64; shift += 7 {
		c := r.byte()
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return x
		}
	}
	r.err = errors.New("bad LEB128")
	return 0
}

func (r *reader) name() string {
	n := int(r.uleb())
	if r.err != nil || n < 0 || r.off+n > len(r.b) {
		r.err = errors.New("truncated name")
		return ""
	}
	r.off += n
	return string(r.b[r.off-n : r.off])
}

func (r *reader) limits() {
	if r.byte()&1 != 0 {
		r.uleb()
		r.uleb()
		return
	}
	r.uleb()
}

// goPackage is the Go package a function symbol belongs to. The name
// section holds the linker's mangled symbols: "/" and "(*T)" become "_" and
// "__T_", as in "github.com_tidwall_gjson.Get" or "runtime.__mheap_.alloc";
// the result keeps that spelling ("github.com_tidwall_gjson", "runtime").
// Type-generated functions ("type_.eq.…") and unnamed ones are grouped apart.
func goPackage(sym string) string {
	if sym == "" {
		return "(unnamed)"
	}
	if strings.HasPrefix(sym, "type_.") || strings.HasPrefix(sym, "type:") {
		return "(type: equality/hash functions)"
	}
	from := 0
	for {
		dot := strings.IndexByte(sym[from:], '.')
		if dot < 0 {
			return sym
		}
		rest := sym[from+dot+1:]
		if !domainDot(rest) {
			return sym[:from+dot]
		}
		from += dot + 1
	}
}

// domainDot says whether the text after a dot continues a domain name of an
// import path ("com_tidwall_gjson.Get" after "github."), not a symbol.
func domainDot(rest string) bool {
	for _, tld := range []string{"com_", "org_", "io_", "net_", "in_", "dev_"} {
		if strings.HasPrefix(rest, tld) {
			return true
		}
	}
	return false
}

// byPackage sums function body sizes per Go package.
func (w *wasmInfo) byPackage() map[string]int {
	out := map[string]int{}
	for _, f := range w.funcs {
		out[goPackage(f.name)] += f.size
	}
	return out
}

// printModules prints the section sizes of the filter and the no-op module and
// the filter's code by Go package, largest first, next to the no-op's.
func printModules(filter, noop *wasmInfo, top int) {
	fmt.Printf("\n== Modules: sections (bytes)\n")
	fmt.Printf("%-22s %12s %12s %12s\n", "section", "filter", "no-op", "filter-no-op")
	keys := []string{}
	for k := range filter.sections {
		keys = append(keys, k)
	}
	for k := range noop.sections {
		if _, ok := filter.sections[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b string) int { return filter.sections[b] - filter.sections[a] })
	for _, k := range keys {
		fmt.Printf("%-22s %12d %12d %+12d\n", k, filter.sections[k], noop.sections[k], filter.sections[k]-noop.sections[k])
	}
	fmt.Printf("%-22s %12d %12d %+12d\n", "file", filter.size, noop.size, filter.size-noop.size)
	fmt.Printf("%-22s %12d %12d %+12d\n", "functions", len(filter.funcs), len(noop.funcs), len(filter.funcs)-len(noop.funcs))

	fp, np := filter.byPackage(), noop.byPackage()
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
	code := filter.sections["code"]
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
