package main

import "testing"

// A module with one imported function, two function bodies and a name
// section naming all three: the bodies get the names of indices 1 and 2.
func TestParseWasm(t *testing.T) {
	leb := func(n int) []byte { return []byte{byte(n)} } // every size here is < 128
	str := func(s string) []byte { return append(leb(len(s)), s...) }
	section := func(id byte, body []byte) []byte { return append(append([]byte{id}, leb(len(body))...), body...) }
	var m []byte
	m = append(m, "\x00asm\x01\x00\x00\x00"...)
	m = append(m, section(1, []byte{1, 0x60, 0, 0})...) // one type: () -> ()
	imp := append([]byte{1}, str("env")...)
	imp = append(imp, str("proxy_log")...)
	imp = append(imp, 0, 0) // function of type 0
	m = append(m, section(2, imp)...)
	m = append(m, section(3, []byte{2, 0, 0})...)
	body1 := []byte{2, 0, 0x0b}       // size 2: no locals, end
	body2 := []byte{3, 0, 0x01, 0x0b} // size 3: no locals, nop, end
	m = append(m, section(10, append(append([]byte{2}, body1...), body2...))...)
	names := []byte{3}
	for i, n := range []string{"env.proxy_log", "runtime.mallocgc", "github.com_tidwall_gjson.Get"} {
		names = append(names, byte(i))
		names = append(names, str(n)...)
	}
	name := append(str("name"), append([]byte{1}, append(leb(len(names)), names...)...)...)
	m = append(m, section(0, name)...)

	w, err := parseWasm(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.funcs) != 2 || w.funcs[0] != (wasmFunc{"runtime.mallocgc", 3}) || w.funcs[1] != (wasmFunc{"github.com_tidwall_gjson.Get", 4}) {
		t.Errorf("funcs = %+v", w.funcs)
	}
	if w.sections["code"] != 1+len(body1)+len(body2) || w.sections["custom:name"] != len(name) {
		t.Errorf("sections = %v", w.sections)
	}
	if _, err := parseWasm([]byte("\x00asm\x01\x00\x00\x00\x0a\x7f")); err == nil {
		t.Error("a truncated section parses")
	}
}

func TestGoPackage(t *testing.T) {
	for sym, want := range map[string]string{
		"runtime.__mheap_.alloc":       "runtime",
		"github.com_tidwall_gjson.Get": "github.com_tidwall_gjson",
		"github.com_phantom_token_envoy_phantom_token_internal_cache.__Local_.Key": "github.com_phantom_token_envoy_phantom_token_internal_cache",
		"golang.org_x_net_http2.init":                       "golang.org_x_net_http2",
		"encoding_json.typeEncoder.OnceValue_go.shape.func": "encoding_json",
		"type_.eq.internal_runtime_maps.table":              "(type: equality/hash functions)",
		"gcWriteBarrier":                                    "gcWriteBarrier",
		"":                                                  "(unnamed)",
	} {
		if got := goPackage(sym); got != want {
			t.Errorf("goPackage(%q) = %q, want %q", sym, got, want)
		}
	}
}
