// Package pretty stands in for github.com/tidwall/pretty in the filter's
// build (see the replace directive in the root go.mod). gjson imports that
// package only for its @pretty and @ugly path modifiers, which the filter
// never uses: every path it gives gjson is a constant or escaped with
// gjson.Escape. The original links encoding/json, and with it reflect and
// fmt: 0.69 MB of the 4.5 MB module, about 12 MiB of Envoy's memory at two
// workers (make bench). This package offers the same names with a small
// formatter of its own, written here, that needs nothing but the language.
//
// What it does: Ugly removes the whitespace outside strings; Pretty and
// PrettyOptions put every member and element on its own line, indented.
// Unlike the original, Width is not used (nothing is kept on one line) and
// SortKeys is not supported. Both walk the text iteratively, so no input
// nesting can exhaust the stack.
package pretty

// Options are the formatting options of PrettyOptions.
type Options struct {
	// Width is accepted for compatibility and not used.
	Width int
	// Prefix starts every line.
	Prefix string
	// Indent is added once per nesting level.
	Indent string
	// SortKeys is accepted for compatibility and not used.
	SortKeys bool
}

// DefaultOptions are the options of Pretty.
var DefaultOptions = &Options{Width: 80, Prefix: "", Indent: "  ", SortKeys: false}

// Pretty formats json with DefaultOptions.
func Pretty(json []byte) []byte { return PrettyOptions(json, nil) }

// PrettyOptions puts every member and element of json on its own line, with
// opts.Prefix and one opts.Indent per level, and a newline at the end. The
// input is not validated: text that is not JSON comes out reformatted but
// still not JSON.
func PrettyOptions(json []byte, opts *Options) []byte {
	if opts == nil {
		opts = DefaultOptions
	}
	out := make([]byte, 0, len(json)*2)
	depth := 0
	newline := func() {
		out = append(out, '\n')
		out = append(out, opts.Prefix...)
		for range depth {
			out = append(out, opts.Indent...)
		}
	}
	out = append(out, opts.Prefix...)
	for i := 0; i < len(json); i++ {
		switch c := json[i]; c {
		case ' ', '\t', '\n', '\r':
		case '"':
			end := stringEnd(json, i)
			out = append(out, json[i:end]...)
			i = end - 1
		case '{', '[':
			if j := skipSpace(json, i+1); j < len(json) && json[j] == c+2 { // '}' = '{'+2, ']' = '['+2
				out = append(out, c, c+2)
				i = j
				continue
			}
			out = append(out, c)
			depth++
			newline()
		case '}', ']':
			if depth > 0 {
				depth--
			}
			newline()
			out = append(out, c)
		case ',':
			out = append(out, c)
			newline()
		case ':':
			out = append(out, ':', ' ')
		default:
			out = append(out, c)
		}
	}
	return append(out, '\n')
}

// Ugly removes every space, tab and line break outside strings.
func Ugly(json []byte) []byte {
	out := make([]byte, 0, len(json))
	for i := 0; i < len(json); i++ {
		switch c := json[i]; c {
		case ' ', '\t', '\n', '\r':
		case '"':
			end := stringEnd(json, i)
			out = append(out, json[i:end]...)
			i = end - 1
		default:
			out = append(out, c)
		}
	}
	return out
}

// stringEnd is the index just past the string that starts with the quote at
// json[start], or len(json) when it is not closed.
func stringEnd(json []byte, start int) int {
	for i := start + 1; i < len(json); i++ {
		switch json[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(json)
}

func skipSpace(json []byte, i int) int {
	for i < len(json) && (json[i] == ' ' || json[i] == '\t' || json[i] == '\n' || json[i] == '\r') {
		i++
	}
	return i
}
