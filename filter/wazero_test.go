package main

import (
	"context"
	"strconv"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// The wasm-mode tests run the module under wazero's compiler (proxytest's
// NewWasmVMContext uses the default runtime). wazero before v1.9.0 calls the
// host's runtime.memmove for memory.copy and memory.fill and assumes it keeps
// RDX, one of the registers its amd64 code keeps values in across calls. Go
// 1.24+ overwrites RDX in memmove's REP MOVSQ path (a forward copy of 2 KiB
// or more to a 16-byte aligned destination, on Intel CPUs with ERMS and
// FSRM). A Go module clears and copies memory that way all the time (its GC
// does), so on such a machine the module computed with a clobbered register
// and its heap broke: "found pointer to free object" in the filter tests.
// Envoy runs the module under V8, which does not have this bug.
//
// This is the smallest such guest: twelve values live across one 16 KiB
// memory.copy, then stored where the test reads them back. With that many
// live values wazero keeps the linear memory's base in RDX; the buggy one then
// stores them dst+size-8 bytes too far (with fewer, it kept the base in
// another register here and the bug did not show). The memory has room for
// the misplaced stores, so a failing run does not write outside it.
func TestWazeroKeepsValuesAcrossALargeMemoryCopy(t *testing.T) {
	const (
		n       = 12
		src     = 0
		dst     = 16384 // 16-byte aligned in the host when the memory is
		size    = 16384 // 2 KiB or more: memmove's REP MOVSQ path
		results = 40000
	)
	// Code: memory.copy(dst, src, size), then i64.store(results+8i, param i).
	code := []byte{0x00} // no locals
	code = append(code, 0x41)
	code = sleb(code, dst)
	code = append(code, 0x41)
	code = sleb(code, src)
	code = append(code, 0x41)
	code = sleb(code, size)
	code = append(code, 0xfc, 0x0a, 0x00, 0x00) // memory.copy 0 0
	for i := 0; i < n; i++ {
		code = append(code, 0x41, 0x00, 0x20, byte(i), 0x37, 0x03) // i32.const 0; local.get i; i64.store align=8
		code = uleb(code, results+8*i)
	}
	code = append(code, 0x0b) // end

	typ := []byte{0x01, 0x60, n}
	for i := 0; i < n; i++ {
		typ = append(typ, 0x7e) // i64
	}
	typ = append(typ, 0x00)
	mod := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	mod = section(mod, 1, typ)
	mod = section(mod, 3, []byte{0x01, 0x00})
	mod = section(mod, 5, []byte{0x01, 0x00, 0x04}) // four pages
	mod = section(mod, 7, append([]byte{0x01, 0x04}, "copy\x00\x00"...))
	body := uleb([]byte{0x01}, len(code)) // one function body
	mod = section(mod, 10, append(body, code...))

	ctx := context.Background()
	r := wazero.NewRuntime(ctx) // what proxytest.NewWasmVMContext uses
	defer r.Close(ctx)
	m, err := r.Instantiate(ctx, mod)
	if err != nil {
		t.Fatal(err)
	}
	params := make([]uint64, n)
	for i := range params {
		params[i] = 0x1111111111111111 * uint64(i+1)
	}
	for round := 0; round < 3; round++ {
		if _, err := m.ExportedFunction("copy").Call(ctx, params...); err != nil {
			t.Fatal(err)
		}
		for i, want := range params {
			got, ok := m.Memory().ReadUint64Le(uint32(results + 8*i))
			if !ok || got != want {
				t.Fatalf("value %d stored after a 16 KiB memory.copy reads %#x, want %#x%s: this wazero miscompiles memory.copy (v1.9.0 fixed it)", i, got, want, whereStored(m.Memory(), want))
			}
		}
	}
}

// whereStored says where in memory v is, if it is there once.
func whereStored(mem api.Memory, v uint64) string {
	for a := uint32(0); a+8 <= mem.Size(); a += 8 {
		if got, _ := mem.ReadUint64Le(a); got == v {
			return " (it was stored at " + strconv.Itoa(int(a)) + ")"
		}
	}
	return ""
}

// section appends a wasm section.
func section(b []byte, id byte, content []byte) []byte {
	b = append(b, id)
	b = uleb(b, len(content))
	return append(b, content...)
}

func uleb(b []byte, v int) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func sleb(b []byte, v int) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
