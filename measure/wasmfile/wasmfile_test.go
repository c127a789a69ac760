package wasmfile

import (
	"bytes"
	"testing"
)

// A module with one imported function, two function bodies, a data section
// and a name section naming all three functions: the bodies get the names of
// indices 1 and 2, and each section its content's size.
func TestParse(t *testing.T) {
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
	data := []byte{0} // no segments: what counts is the section's size
	m = append(m, section(11, data)...)
	names := []byte{3}
	for i, n := range []string{"env.proxy_log", "runtime.mallocgc", "github.com_tidwall_gjson.Get"} {
		names = append(names, byte(i))
		names = append(names, str(n)...)
	}
	name := append(str("name"), append([]byte{1}, append(leb(len(names)), names...)...)...)
	m = append(m, section(0, name)...)

	w, err := Parse(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Funcs) != 2 || w.Funcs[0].Name != "runtime.mallocgc" || w.Funcs[0].Size != 3 || w.Funcs[1].Name != "github.com_tidwall_gjson.Get" || w.Funcs[1].Size != 4 {
		t.Errorf("funcs = %+v", w.Funcs)
	}
	if len(w.Funcs) == 2 && (!bytes.Equal(w.Funcs[0].Body, body1[1:]) || !bytes.Equal(w.Funcs[1].Body, body2[1:])) {
		t.Errorf("bodies = %x, %x; want %x, %x", w.Funcs[0].Body, w.Funcs[1].Body, body1[1:], body2[1:])
	}
	if w.Sections["code"] != 1+len(body1)+len(body2) || w.Sections["data"] != len(data) || w.Sections["custom:name"] != len(name) || w.Size != len(m) {
		t.Errorf("sections = %v", w.Sections)
	}
	if _, err := Parse([]byte("\x00asm\x01\x00\x00\x00\x0a\x7f")); err == nil {
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
		if got := GoPackage(sym); got != want {
			t.Errorf("GoPackage(%q) = %q, want %q", sym, got, want)
		}
	}
}
