package routemeta

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Wire builders: the protobuf encoding written out by hand, so that the test
// needs no protobuf runtime and can also build what a runtime never would.

func uvarint(v uint64) []byte {
	var b []byte
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func tag(num, typ int) []byte { return uvarint(uint64(num)<<3 | uint64(typ)) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func lenField(num int, body ...[]byte) []byte {
	b := cat(body...)
	return cat(tag(num, wireBytes), uvarint(uint64(len(b))), b)
}

func varintField(num int, v uint64) []byte { return cat(tag(num, wireVarint), uvarint(v)) }

func fixed64Field(num int, v uint64) []byte {
	b := tag(num, wireFixed64)
	for i := 0; i < 8; i++ {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// filterMetadata is one filter_metadata entry of a Metadata: namespace and
// Struct body.
func filterMetadata(ns string, structBody ...[]byte) []byte {
	return lenField(1, lenField(1, []byte(ns)), lenField(2, structBody...))
}

// member is one fields entry of a Struct body.
func member(key string, value []byte) []byte {
	return lenField(1, lenField(1, []byte(key)), lenField(2, value))
}

// Value bodies.
func null() []byte            { return varintField(1, 0) }
func number(f float64) []byte { return fixed64Field(2, math.Float64bits(f)) }
func str(s string) []byte     { return lenField(3, []byte(s)) }
func boolean(b bool) []byte {
	if b {
		return varintField(4, 1)
	}
	return varintField(4, 0)
}
func object(members ...[]byte) []byte { return lenField(5, members...) }
func list(values ...[]byte) []byte {
	var body [][]byte
	for _, v := range values {
		body = append(body, lenField(1, v))
	}
	return lenField(6, body...)
}

// nested returns a Struct body whose values nest n levels in all, counting
// the Struct itself: {"a":{"a":...{}}}.
func nested(n int) []byte {
	body := []byte{}
	for i := 1; i < n; i++ {
		body = member("a", object(body))
	}
	return body
}

// pt is the namespace the filter reads.
const pt = "phantom_token"

func TestJSON(t *testing.T) {
	manyKeys := [][]byte{}
	for _, k := range "abcdefghij" {
		manyKeys = append(manyKeys, member(string(k), null()))
	}
	unknownFields := cat(varintField(90, 7), fixed64Field(91, 1), lenField(92, []byte("x")),
		tag(93, wireFixed32), []byte{1, 2, 3, 4})

	tests := []struct {
		name  string
		raw   []byte
		ns    string
		want  string // the JSON text when found
		found bool
		err   error
	}{
		// Finding the namespace.
		{name: "empty metadata has no namespace", raw: nil, ns: pt},
		{name: "another namespace only", raw: filterMetadata("other", member("z", number(1))), ns: pt},
		{name: "typed_filter_metadata is skipped", raw: lenField(2, lenField(1, []byte(pt)), lenField(2, []byte("any"))), ns: pt},
		{name: "the namespace among others", raw: cat(filterMetadata("other", member("z", number(1))), filterMetadata(pt, member("realm", str("x")))), ns: pt,
			want: `{"realm":"x"}`, found: true},
		{name: "an empty Struct", raw: filterMetadata(pt), ns: pt, want: `{}`, found: true},
		{name: "an entry without a Struct is the empty Struct", raw: lenField(1, lenField(1, []byte(pt))), ns: pt, want: `{}`, found: true},
		{name: "an entry without a key is the empty namespace", raw: lenField(1, lenField(2, member("a", null()))), ns: "", want: `{"a":null}`, found: true},
		{name: "the namespace twice", raw: cat(filterMetadata(pt), filterMetadata(pt)), ns: pt, err: ErrDuplicateKey},
		{name: "another namespace's Struct is not read", raw: cat(filterMetadata("other", []byte{0xff}), filterMetadata(pt)), ns: pt, want: `{}`, found: true},

		// Values.
		{name: "string", raw: filterMetadata(pt, member("s", str("x y"))), ns: pt, want: `{"s":"x y"}`, found: true},
		{name: "empty string", raw: filterMetadata(pt, member("s", str(""))), ns: pt, want: `{"s":""}`, found: true},
		{name: "integral number", raw: filterMetadata(pt, member("n", number(1))), ns: pt, want: `{"n":1}`, found: true},
		{name: "fraction", raw: filterMetadata(pt, member("n", number(2.5))), ns: pt, want: `{"n":2.5}`, found: true},
		{name: "negative zero", raw: filterMetadata(pt, member("n", number(math.Copysign(0, -1)))), ns: pt, want: `{"n":-0}`, found: true},
		{name: "large exponent", raw: filterMetadata(pt, member("n", number(1e300))), ns: pt, want: `{"n":1e+300}`, found: true},
		{name: "small exponent", raw: filterMetadata(pt, member("n", number(-1e-7))), ns: pt, want: `{"n":-1e-07}`, found: true},
		{name: "true", raw: filterMetadata(pt, member("b", boolean(true))), ns: pt, want: `{"b":true}`, found: true},
		{name: "false", raw: filterMetadata(pt, member("b", boolean(false))), ns: pt, want: `{"b":false}`, found: true},
		{name: "any non-zero bool is true", raw: filterMetadata(pt, member("b", varintField(4, 300))), ns: pt, want: `{"b":true}`, found: true},
		{name: "null", raw: filterMetadata(pt, member("z", null())), ns: pt, want: `{"z":null}`, found: true},
		{name: "nested object and list", raw: filterMetadata(pt, member("o", object(member("k", list(boolean(true), null(), str("s"), number(3), list(), object()))))), ns: pt,
			want: `{"o":{"k":[true,null,"s",3,[],{}]}}`, found: true},
		{name: "members keep the input's order", raw: filterMetadata(pt, member("z", null()), member("a", null()), member("m", null())), ns: pt,
			want: `{"z":null,"a":null,"m":null}`, found: true},
		{name: "many distinct keys", raw: filterMetadata(pt, manyKeys...), ns: pt,
			want: `{"a":null,"b":null,"c":null,"d":null,"e":null,"f":null,"g":null,"h":null,"i":null,"j":null}`, found: true},

		// Strings.
		{name: "quote, backslash and control characters are escaped", raw: filterMetadata(pt, member("s", str("q\"\\\n\r\t\x01\x1f"))), ns: pt,
			want: `{"s":"q\"\\\n\r\t\u0001\u001f"}`, found: true},
		{name: "other characters are copied", raw: filterMetadata(pt, member("s", str("é😀\u2028\x7f</>&"))), ns: pt,
			want: "{\"s\":\"é😀\u2028\x7f</>&\"}", found: true},
		{name: "keys are escaped too", raw: filterMetadata(pt, member("a\"b\n", null())), ns: pt, want: `{"a\"b\n":null}`, found: true},
		{name: "invalid UTF-8 in a string", raw: filterMetadata(pt, member("s", str("\xff"))), ns: pt, err: ErrInvalidUTF8},
		{name: "invalid UTF-8 in a key", raw: filterMetadata(pt, member("\xc3", null())), ns: pt, err: ErrInvalidUTF8},
		{name: "a surrogate half is invalid UTF-8", raw: filterMetadata(pt, member("s", str("\xed\xa0\x80"))), ns: pt, err: ErrInvalidUTF8},

		// Unknown fields.
		{name: "unknown fields are skipped at every level", ns: pt, found: true,
			raw: cat(unknownFields,
				lenField(1, unknownFields, lenField(1, []byte(pt)), lenField(2, unknownFields,
					lenField(1, unknownFields, lenField(1, []byte("l")), lenField(2, unknownFields,
						lenField(6, unknownFields, lenField(1, unknownFields, str("x")))))))),
			want: `{"l":["x"]}`},

		// Refused values.
		{name: "NaN", raw: filterMetadata(pt, member("n", number(math.NaN()))), ns: pt, err: ErrNotFinite},
		{name: "+Inf", raw: filterMetadata(pt, member("n", number(math.Inf(1)))), ns: pt, err: ErrNotFinite},
		{name: "-Inf", raw: filterMetadata(pt, member("n", number(math.Inf(-1)))), ns: pt, err: ErrNotFinite},
		{name: "a key twice in one Struct", raw: filterMetadata(pt, member("a", null()), member("b", null()), member("a", null())), ns: pt, err: ErrDuplicateKey},
		{name: "a key twice in a large Struct", raw: filterMetadata(pt, append(manyKeys, member("j", null()))...), ns: pt, err: ErrDuplicateKey},
		{name: "a key twice in a nested Struct", raw: filterMetadata(pt, member("o", object(member("a", null()), member("a", null())))), ns: pt, err: ErrDuplicateKey},
		{name: "the same key in two Structs", raw: filterMetadata(pt, member("a", object(member("a", null())))), ns: pt, want: `{"a":{"a":null}}`, found: true},
		{name: "a member without a value", raw: filterMetadata(pt, lenField(1, lenField(1, []byte("a")))), ns: pt, err: ErrNoKind},
		{name: "a value with two kinds", raw: filterMetadata(pt, member("a", cat(null(), str("x")))), ns: pt, err: ErrMalformed},

		// Bounds.
		{name: "32 levels", raw: filterMetadata(pt, nested(32)), ns: pt, want: strings.Repeat(`{"a":`, 31) + "{}" + strings.Repeat("}", 31), found: true},
		{name: "33 levels", raw: filterMetadata(pt, nested(33)), ns: pt, err: ErrTooDeep},
		{name: "33 levels through lists", raw: filterMetadata(pt, member("l", deepList(32))), ns: pt, err: ErrTooDeep},
		{name: "larger than MaxSize", raw: filterMetadata(pt, member("s", str(strings.Repeat("x", MaxSize)))), ns: pt, err: ErrTooLarge},
		{name: "MaxSize exactly", raw: sized(MaxSize), ns: pt, want: `{}`, found: true},

		// Malformed wire data.
		{name: "filter_metadata as a varint", raw: varintField(1, 1), ns: pt, err: ErrMalformed},
		{name: "a map key as a varint", raw: lenField(1, varintField(1, 1)), ns: pt, err: ErrMalformed},
		{name: "a map key twice", raw: lenField(1, lenField(1, []byte(pt)), lenField(1, []byte(pt))), ns: pt, err: ErrMalformed},
		{name: "a map value twice", raw: lenField(1, lenField(1, []byte(pt)), lenField(2), lenField(2)), ns: pt, err: ErrMalformed},
		{name: "Struct fields as fixed64", raw: filterMetadata(pt, fixed64Field(1, 0)), ns: pt, err: ErrMalformed},
		{name: "list values as a varint", raw: filterMetadata(pt, member("l", lenField(6, varintField(1, 0)))), ns: pt, err: ErrMalformed},
		{name: "a number as a varint", raw: filterMetadata(pt, member("n", varintField(2, 1))), ns: pt, err: ErrMalformed},
		{name: "a string as a varint", raw: filterMetadata(pt, member("s", varintField(3, 1))), ns: pt, err: ErrMalformed},
		{name: "a bool as bytes", raw: filterMetadata(pt, member("b", lenField(4))), ns: pt, err: ErrMalformed},
		{name: "null as fixed64", raw: filterMetadata(pt, member("z", fixed64Field(1, 0))), ns: pt, err: ErrMalformed},
		{name: "a Struct value as a varint", raw: filterMetadata(pt, member("o", varintField(5, 0))), ns: pt, err: ErrMalformed},
		{name: "truncated tag", raw: []byte{0x80}, ns: pt, err: ErrMalformed},
		{name: "truncated length", raw: cat(tag(1, wireBytes), []byte{0x80}), ns: pt, err: ErrMalformed},
		{name: "length past the end", raw: cat(tag(1, wireBytes), []byte{5, 0}), ns: pt, err: ErrMalformed},
		{name: "truncated fixed64", raw: cat(tag(9, wireFixed64), []byte{1, 2, 3}), ns: pt, err: ErrMalformed},
		{name: "truncated fixed32", raw: cat(tag(9, wireFixed32), []byte{1, 2, 3}), ns: pt, err: ErrMalformed},
		{name: "truncated number inside the Struct", raw: filterMetadata(pt, member("n", cat(tag(2, wireFixed64), []byte{1}))), ns: pt, err: ErrMalformed},
		{name: "varint longer than 64 bits", raw: cat(tag(9, wireVarint), bytes.Repeat([]byte{0xff}, 9), []byte{0x02}), ns: pt, err: ErrMalformed},
		{name: "largest varint", raw: cat(tag(9, wireVarint), bytes.Repeat([]byte{0xff}, 9), []byte{0x01}), ns: pt},
		{name: "a group", raw: tag(9, 3), ns: pt, err: ErrMalformed},
		{name: "wire type 7", raw: tag(9, 7), ns: pt, err: ErrMalformed},
		{name: "field number 0", raw: varintField(0, 1), ns: pt, err: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, found, err := JSON(tt.raw, tt.ns)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if found != tt.found || string(text) != tt.want {
				t.Fatalf("JSON = %q, %v; want %q, %v", text, found, tt.want, tt.found)
			}
			if found && !json.Valid(text) {
				t.Fatalf("not valid JSON: %q", text)
			}
		})
	}
}

// deepList returns a Value that nests n lists: [[...[]...]].
func deepList(n int) []byte {
	v := list()
	for i := 1; i < n; i++ {
		v = list(v)
	}
	return v
}

// sized returns a Metadata of exactly n bytes holding an empty pt namespace
// and padding in an unknown field.
func sized(n int) []byte {
	head := filterMetadata(pt)
	for pad := n - len(head) - 4; pad > 0; pad-- {
		b := cat(head, lenField(9, make([]byte, pad)))
		if len(b) == n {
			return b
		}
	}
	panic("no padding fits")
}

// The bytes in testdata were returned by Envoy 1.40 for the properties
// xds.route_metadata and xds.virtual_host_metadata (see testdata/README.md).
// Envoy serialises each map in its own order, which the JSON keeps.
func TestEnvoyBytes(t *testing.T) {
	tests := []struct {
		file  string
		ns    string
		want  string
		found bool
	}{
		{file: "route_a.pb", ns: pt, found: true,
			want: `{"realm":"x","nested":{"k":[true,null]},"required_scopes":["a","b"],"n":2.5}`},
		{file: "route_a.pb", ns: "other", found: true, want: `{"z":1}`},
		{file: "route_a.pb", ns: "absent"},
		// From YAML, Envoy keeps only integers as numbers: 2.5 arrives as "2.5".
		{file: "route_a_yaml.pb", ns: pt, found: true,
			want: `{"realm":"x","required_scopes":["a","b"],"n":"2.5","nested":{"k":[true,null]}}`},
		{file: "route_d.pb", ns: pt, found: true,
			want: `{"big":1e+300,"empty":{},"neg":-0,"realm":"q\"\\é\n\u0001","list":[]}`},
		{file: "route_d.pb", ns: "some.typed"}, // only in typed_filter_metadata
		{file: "virtual_host.pb", ns: pt, found: true, want: `{"enabled":false,"realm":"vh"}`},
		{file: "virtual_host_yaml.pb", ns: pt, found: true, want: `{"realm":"vh","enabled":false}`},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.ns, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			text, found, err := JSON(raw, tt.ns)
			if err != nil || found != tt.found || string(text) != tt.want {
				t.Fatalf("JSON = %q, %v, %v; want %q, %v, nil", text, found, err, tt.want, tt.found)
			}
		})
	}
}

// At request time the filter decodes a route's metadata once per route per
// worker; a small Struct costs one allocation, the output.
func TestAllocations(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "route_a.pb"))
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, err := JSON(raw, pt); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Fatalf("%v allocations per call, want at most 1", allocs)
	}
}

func BenchmarkJSON(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("testdata", "route_a.pb"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := JSON(raw, pt); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzJSON checks that any input gives an error or valid JSON no deeper than
// MaxDepth, never a panic, and that a namespace not found gives no text.
func FuzzJSON(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.pb"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, pt)
		f.Add(raw, "other")
	}
	f.Add(filterMetadata(pt, member("s", str("q\"\\\n\x01é")), member("l", list(null(), boolean(true), number(-0.5)))), pt)
	f.Add(filterMetadata(pt, nested(32)), pt)
	f.Fuzz(func(t *testing.T, raw []byte, ns string) {
		text, found, err := JSON(raw, ns)
		if err != nil {
			if text != nil || found {
				t.Fatalf("error %v with text %q, found %v", err, text, found)
			}
			return
		}
		if !found {
			if text != nil {
				t.Fatalf("not found but text %q", text)
			}
			return
		}
		if !json.Valid(text) || text[0] != '{' {
			t.Fatalf("not a valid JSON object: %q", text)
		}
		if depth := jsonDepth(text); depth > MaxDepth {
			t.Fatalf("depth %d > %d: %q", depth, MaxDepth, text)
		}
	})
}

// jsonDepth is the deepest nesting of valid JSON text.
func jsonDepth(text []byte) int {
	dec := json.NewDecoder(bytes.NewReader(text))
	depth, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return deepest
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if depth++; depth > deepest {
				deepest = depth
			}
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
}
