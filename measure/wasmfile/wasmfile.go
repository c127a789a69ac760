// Package wasmfile reads what the measurement commands need from a binary
// WebAssembly module: the size of each section, and the name and size of
// every function body. One parser for the bench's module breakdown and
// linkcost's section sizes.
package wasmfile

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Module is what the measurement commands read from a module: section sizes
// and the size of every function body, named from the name section.
type Module struct {
	Size     int            // bytes of the file
	Sections map[string]int // bytes of each section's content, by name: "code", "data", "custom:name", …
	Funcs    []Func         // the module's own functions (not its imports), in order
}

// Func is one function body of the code section.
type Func struct {
	Name string // from the name section; empty when it has none
	Size int    // bytes of the body in the code section, with its size prefix
	Body []byte // the body, without its size prefix (part of the bytes parsed)
}

var sectionNames = map[byte]string{
	0: "custom", 1: "type", 2: "import", 3: "function", 4: "table", 5: "memory",
	6: "global", 7: "export", 8: "start", 9: "element", 10: "code", 11: "data", 12: "datacount",
}

// Read parses a module file.
func Read(path string) (*Module, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// Parse reads the section headers of a binary module, the import section
// (to number functions), the code section (body sizes) and the function names
// subsection of the custom "name" section. Every loop is bounded by the bytes
// it reads.
func Parse(b []byte) (*Module, error) {
	if len(b) < 8 || string(b[:4]) != "\x00asm" {
		return nil, errors.New("not a wasm binary module")
	}
	info := &Module{Size: len(b), Sections: map[string]int{}}
	var imported int
	var bodies []int
	var code [][]byte
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
				if size < 0 || body.off+size > len(body.b) {
					body.off = len(body.b)
					break
				}
				code = append(code, body.b[body.off:body.off+size])
				body.off += size
				bodies = append(bodies, body.off-start)
			}
		}
		info.Sections[name] += n
	}
	for i, size := range bodies {
		info.Funcs = append(info.Funcs, Func{Name: names[imported+i], Size: size, Body: code[i]})
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

// GoPackage is the Go package a function symbol belongs to. The name
// section holds the linker's mangled symbols: "/" and "(*T)" become "_" and
// "__T_", as in "github.com_tidwall_gjson.Get" or "runtime.__mheap_.alloc";
// the result keeps that spelling ("github.com_tidwall_gjson", "runtime").
// Type-generated functions ("type_.eq.…") and unnamed ones are grouped apart.
func GoPackage(sym string) string {
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
