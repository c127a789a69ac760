package jsonlimit

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestWithin(t *testing.T) {
	tests := []struct {
		name string
		json string
		max  int
		ok   bool
	}{
		{"scalar", `"a"`, 0, true},
		{"empty object is one level", `{}`, 1, true},
		{"empty object over zero", `{}`, 0, false},
		{"two levels", `{"a":[1]}`, 2, true},
		{"two levels over one", `{"a":[1]}`, 1, false},
		{"siblings do not add up", `[[],[],{},{"a":1}]`, 2, true},
		{"brackets in a string do not count", `{"a":"[[[[{{{{"}`, 1, true},
		{"escaped quote keeps the string open", `["\"[[["]`, 1, true},
		{"escaped backslash closes the string", `["\\",[[]]]`, 2, false},
		{"unicode escape", `["\u005b",[]]`, 2, true},
		{"unmatched closers never lower the count", `]]]]}}[[[`, 2, false},
		{"unterminated string", `["[[[[`, 1, true},
		{"at the bound", strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth), MaxDepth, true},
		{"one past the bound", strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), MaxDepth, false},
		{"deep and unclosed", strings.Repeat(`{"a":`, 100000), MaxDepth, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Within(tt.json, tt.max); got != tt.ok {
				t.Errorf("Within(%.40q, %d) = %v, want %v", tt.json, tt.max, got, tt.ok)
			}
			if got := Within([]byte(tt.json), tt.max); got != tt.ok {
				t.Errorf("Within([]byte) = %v, want %v", got, tt.ok)
			}
		})
	}
}

func TestObject(t *testing.T) {
	deep := func(open string, n int) string { return `{"x":` + strings.Repeat(open, n) }
	tests := []struct {
		name string
		json string
		err  string // "" when accepted
	}{
		{"object", `{"active":true,"scope":"a"}`, ""},
		{"other members may repeat", `{"sub":"a","sub":"b"}`, ""},
		{"nested members are not the object's", `{"a":{"scope":1},"scope":"x"}`, ""},
		{"duplicate scope", `{"scope":"a","scope":"b"}`, `duplicate member "scope"`},
		{"duplicate through an escape", `{"scope":"a","sc\u006fpe":"admin"}`, `duplicate member "scope"`},
		{"duplicate active", `{"active":false,"x":1,"active":true}`, `duplicate member "active"`},
		{"not JSON", `{"a":`, "not JSON"},
		{"array", `[1]`, "not a JSON object"},
		{"at the depth bound", `{"x":` + strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1) + `}`, ""},
		{"past the depth bound", `{"x":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}`, ErrTooDeep.Error()},
		{"9,000 arrays", deep("[", 9000), ErrTooDeep.Error()},
		{"10,000 objects", deep(`{"a":`, 10000), ErrTooDeep.Error()},
		{"100,000 arrays", deep("[", 100000), ErrTooDeep.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Object(tt.json, "active", "exp", "scope")
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.err {
				t.Errorf("got error %q, want %q", got, tt.err)
			}
		})
	}
}

// referenceDepth is the deepest nesting in data, counted the plain way: a
// mask of the bytes inside strings first, then the brackets outside it.
func referenceDepth(data []byte) int {
	quoted := make([]bool, len(data))
	open, escaped := false, false
	for i, c := range data {
		quoted[i] = open
		switch {
		case open && escaped:
			escaped = false
		case open && c == '\\':
			escaped = true
		case c == '"':
			open = !open
		}
	}
	depth, deepest := 0, 0
	for i, c := range data {
		if quoted[i] {
			continue
		}
		switch c {
		case '[', '{':
			depth++
			deepest = max(deepest, depth)
		case ']', '}':
			depth = max(depth-1, 0)
		}
	}
	return deepest
}

// decoderDepth is the deepest nesting encoding/json's decoder (which does
// not recurse) reports for valid JSON.
func decoderDepth(data []byte) (int, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber() // a number too large for a float64 is still valid JSON
	depth, deepest := 0, 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return deepest, nil
		}
		if err != nil {
			return 0, err
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			depth++
			deepest = max(deepest, depth)
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
	}
}

// FuzzDepth: the depth check never accepts input deeper than its bound, and
// accepts everything within it.
func FuzzDepth(f *testing.F) {
	f.Add([]byte(`{"a":[1,{"b":"]}"}]}`), 2)
	f.Add([]byte(`["\\\"[",[[]]]`), 2)
	for _, n := range []int{MaxDepth, MaxDepth + 1, 9000, 10000} {
		f.Add([]byte(strings.Repeat("[", n)), MaxDepth)
		f.Add([]byte(strings.Repeat(`{"a":`, n)), MaxDepth)
	}
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		if max < 0 || max > 1000 {
			max = 1000
		}
		got, want := Within(data, max), referenceDepth(data) <= max
		if got != want {
			t.Fatalf("Within(%q, %d) = %v, reference depth %d", data, max, got, referenceDepth(data))
		}
		if !json.Valid(data) {
			return
		}
		d, err := decoderDepth(data)
		if err != nil {
			t.Fatalf("valid JSON %q: %v", data, err)
		}
		if got != (d <= max) {
			t.Fatalf("Within(%q, %d) = %v, encoding/json depth %d", data, max, got, d)
		}
	})
}
