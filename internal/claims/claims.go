// Package claims turns claims of the JWT the filter forwards into the values
// of the headers configured by claim_headers.
package claims

import (
	"strings"

	"github.com/tidwall/gjson"

	"github.com/phantom-token/envoy-phantom-token/internal/jwt"
)

// State is what a claim gives its header.
type State uint8

const (
	// Absent: the claim is not there; the header is left out.
	Absent State = iota
	// Present: the header gets Value.Text.
	Present
	// Unusable: the claim is there but cannot be a header value (see
	// Read); the header is left out, and that is counted.
	Unusable
)

// Value is one claim's header value.
type Value struct {
	Text  string
	State State
}

// MaxLength bounds a header value taken from a claim.
const MaxLength = 4096

// FromJWT reads the claims at paths (see config.ClaimPaths) from a JWT that
// jwt.Parse accepted; nil when there are none to read.
func FromJWT(jwtText string, paths [][]string) []Value {
	if len(paths) == 0 {
		return nil
	}
	set, err := jwt.ClaimSet(jwtText)
	values := make([]Value, len(paths))
	if err != nil { // cannot happen for a JWT Parse accepted
		for i := range values {
			values[i].State = Unusable
		}
		return values
	}
	for i, p := range paths {
		values[i] = Read(set, p)
	}
	return values
}

// Read is the header value of the claim at path in the claim set:
//
//	string                        as it is
//	number, true, false           its JSON text
//	array of strings              the strings joined with single spaces
//	not there                     Absent
//	empty string or array, null, an object, an array holding anything but
//	strings, a name that appears twice on the way (the upstream's parser
//	may read the other one), over MaxLength bytes, or a control
//	character                     Unusable
func Read(set gjson.Result, path []string) Value {
	v := set
	for _, name := range path {
		if !v.IsObject() {
			return Value{}
		}
		var found gjson.Result
		n := 0
		v.ForEach(func(k, member gjson.Result) bool {
			if k.String() == name {
				found, n = member, n+1
			}
			return n < 2
		})
		switch n {
		case 0:
			return Value{}
		case 2:
			return Value{State: Unusable}
		}
		v = found
	}
	var text string
	switch v.Type {
	case gjson.String:
		text = v.Str
	case gjson.Number:
		text = v.Raw
	case gjson.True:
		text = "true"
	case gjson.False:
		text = "false"
	default:
		if !v.IsArray() {
			return Value{State: Unusable}
		}
		var b strings.Builder
		ok := true
		v.ForEach(func(_, s gjson.Result) bool {
			if s.Type != gjson.String || s.Str == "" || b.Len()+1+len(s.Str) > MaxLength+1 {
				ok = false
				return false
			}
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(s.Str)
			return true
		})
		if !ok {
			return Value{State: Unusable}
		}
		text = b.String()
	}
	if text == "" || len(text) > MaxLength || hasControl(text) {
		return Value{State: Unusable}
	}
	return Value{Text: text, State: Present}
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}
