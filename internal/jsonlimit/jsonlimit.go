// Package jsonlimit guards gjson, a recursive parser, against JSON from the
// network. A wasm trap (stack overflow) cannot be recovered, so nesting depth
// is checked first by a scan that does not recurse; only then may gjson see
// the text (gjson.Valid recurses too). It also refuses objects that repeat a
// member the filter reads: gjson takes the first of two, most parsers the
// last, so the filter and the upstream would disagree on the claim.
package jsonlimit

import (
	"errors"
	"strconv"

	"github.com/tidwall/gjson"
)

// MaxDepth is the deepest nesting of arrays and objects accepted from the
// network (spec.md §4). Real introspection answers and JWTs nest a few levels.
const MaxDepth = 64

// Within reports whether the arrays and objects in data nest at most max
// levels deep ({} is one level, {"a":[]} two). Brackets inside strings do
// not count; a backslash in a string escapes the next byte. It does not
// validate the JSON: a closing bracket without an opening one is ignored, so
// the count never goes below zero and never under-states the depth gjson sees.
func Within[T ~string | ~[]byte](data T, max int) bool {
	depth, inString := 0, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case inString:
			switch c {
			case '\\':
				i++ // the escaped byte cannot end the string
			case '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			if depth++; depth > max {
				return false
			}
		case (c == ']' || c == '}') && depth > 0:
			depth--
		}
	}
	return true
}

// ErrTooDeep is the error for JSON nested deeper than MaxDepth.
var ErrTooDeep = errors.New("JSON nested deeper than " + strconv.Itoa(MaxDepth) + " levels")

// Object parses data as one JSON object, refusing it when it nests deeper
// than MaxDepth, is not valid JSON, is not an object, or has any of unique
// (at most 64 names) as a member more than once. Errors never quote data.
func Object(data string, unique ...string) (gjson.Result, error) {
	if !Within(data, MaxDepth) {
		return gjson.Result{}, ErrTooDeep
	}
	if !gjson.Valid(data) {
		return gjson.Result{}, errors.New("not JSON")
	}
	obj := gjson.Parse(data)
	if !obj.IsObject() {
		return gjson.Result{}, errors.New("not a JSON object")
	}
	if name, ok := Duplicate(obj, unique...); ok {
		return gjson.Result{}, errors.New("duplicate member " + strconv.Quote(name))
	}
	return obj, nil
}

// Duplicate returns the first of names (at most 64) that is a member of obj
// more than once. Member names are compared unescaped ("sc\u006fpe" is
// "scope").
func Duplicate(obj gjson.Result, names ...string) (string, bool) {
	var seen uint64
	dup := ""
	obj.ForEach(func(k, _ gjson.Result) bool {
		key := k.String()
		for i, n := range names {
			if key == n {
				if seen&(1<<i) != 0 {
					dup = n
					return false
				}
				seen |= 1 << i
			}
		}
		return true
	})
	return dup, dup != ""
}
