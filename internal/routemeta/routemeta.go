// Package routemeta reads the policy a route or virtual host carries in its
// Envoy metadata. Envoy hands the whole xds.route_metadata (and
// xds.virtual_host_metadata) property to the module as a serialised
// envoy.config.core.v3.Metadata; this package decodes just enough of the
// protobuf wire format to turn one filter_metadata namespace into JSON text,
// which the configuration parser then reads like the plugin's own JSON.
//
// It is a hand-written decoder, not google.golang.org/protobuf: it runs at
// request time inside the module, where a protobuf runtime would add size,
// reflection and allocations. Everything is bounded (input size, nesting),
// and anything Envoy would never send (a repeated member, a Value of no
// kind, a group) is an error rather than a guess.
package routemeta

import (
	"errors"
	"math"
	"strconv"
	"unicode/utf8"
)

// MaxSize is the largest serialised Metadata accepted, in bytes.
const MaxSize = 64 << 10

// MaxDepth is the deepest nesting of objects and arrays in the output: the
// namespace's own Struct is one level, {"a":[]} two.
const MaxDepth = 32

// The errors JSON returns. They never quote the input.
var (
	ErrTooLarge     = errors.New("route metadata larger than " + strconv.Itoa(MaxSize) + " bytes")
	ErrTooDeep      = errors.New("route metadata nested deeper than " + strconv.Itoa(MaxDepth) + " levels")
	ErrMalformed    = errors.New("route metadata: malformed protobuf")
	ErrDuplicateKey = errors.New("route metadata: a key is repeated")
	ErrInvalidUTF8  = errors.New("route metadata: a string is not valid UTF-8")
	ErrNotFinite    = errors.New("route metadata: a number is NaN or infinite")
	ErrNoKind       = errors.New("route metadata: a value has no kind")
)

// Protobuf wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

// JSON returns the JSON text of the google.protobuf.Struct held under
// filter_metadata[ns] in raw, a serialised envoy.config.core.v3.Metadata.
// found is false when raw has no such entry (raw may be empty).
//
// Object members keep the order of the input (Envoy serialises a map in no
// particular order); numbers are formatted by strconv 'g' (2.5, 1e+300, -0).
// A namespace present twice, a key repeated in one Struct, invalid UTF-8, a
// NaN or infinity, a Value with no kind or more than one, nesting deeper than
// MaxDepth and malformed wire data are errors. typed_filter_metadata and
// unknown fields are skipped; the Structs of other namespaces are not read.
func JSON(raw []byte, ns string) (text []byte, found bool, err error) {
	if len(raw) > MaxSize {
		return nil, false, ErrTooLarge
	}
	var value []byte // the Struct under ns
	for len(raw) > 0 {
		num, typ, body, rest, err := field(raw)
		if err != nil {
			return nil, false, err
		}
		raw = rest
		if num != 1 { // 2 is typed_filter_metadata; others are unknown
			continue
		}
		if typ != wireBytes {
			return nil, false, ErrMalformed
		}
		key, val, err := mapEntry(body)
		if err != nil {
			return nil, false, err
		}
		if string(key) != ns {
			continue
		}
		if found {
			return nil, false, ErrDuplicateKey
		}
		found, value = true, val // an absent Struct is the empty one
	}
	if !found {
		return nil, false, nil
	}
	out := make([]byte, 0, 2*len(value)+2)
	out, err = appendStruct(out, value, 1)
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// field splits the first field off b: its number, wire type and body (the
// varint's own bytes, the fixed bytes, or a length-delimited field's
// content). Groups (wire types 3 and 4) are refused.
func field(b []byte) (num uint64, typ int, body, rest []byte, err error) {
	tag, b, err := varint(b)
	if err != nil {
		return 0, 0, nil, nil, err
	}
	num, typ = tag>>3, int(tag&7)
	if num == 0 || num > math.MaxInt32 {
		return 0, 0, nil, nil, ErrMalformed
	}
	switch typ {
	case wireVarint:
		_, rest, err := varint(b)
		if err != nil {
			return 0, 0, nil, nil, err
		}
		return num, typ, b[:len(b)-len(rest)], rest, nil
	case wireFixed64:
		if len(b) < 8 {
			return 0, 0, nil, nil, ErrMalformed
		}
		return num, typ, b[:8], b[8:], nil
	case wireFixed32:
		if len(b) < 4 {
			return 0, 0, nil, nil, ErrMalformed
		}
		return num, typ, b[:4], b[4:], nil
	case wireBytes:
		n, b, err := varint(b)
		if err != nil {
			return 0, 0, nil, nil, err
		}
		if n > uint64(len(b)) {
			return 0, 0, nil, nil, ErrMalformed
		}
		return num, typ, b[:n], b[n:], nil
	}
	return 0, 0, nil, nil, ErrMalformed
}

// varint decodes one base-128 varint of at most 10 bytes.
func varint(b []byte) (uint64, []byte, error) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		c := b[i]
		if i == 9 && c > 1 {
			return 0, nil, ErrMalformed // more than 64 bits
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, b[i+1:], nil
		}
	}
	return 0, nil, ErrMalformed
}

// mapEntry decodes a map<string, message> entry: key (1) and value (2).
// Either may be absent (the empty string, the empty message); a repeated
// one is refused, since protobuf would merge two messages.
func mapEntry(b []byte) (key, value []byte, err error) {
	var hasKey, hasValue bool
	for len(b) > 0 {
		num, typ, body, rest, err := field(b)
		if err != nil {
			return nil, nil, err
		}
		b = rest
		switch num {
		case 1, 2:
			if typ != wireBytes {
				return nil, nil, ErrMalformed
			}
			if num == 1 {
				if hasKey {
					return nil, nil, ErrMalformed
				}
				key, hasKey = body, true
			} else {
				if hasValue {
					return nil, nil, ErrMalformed
				}
				value, hasValue = body, true
			}
		}
	}
	return key, value, nil
}

// smallKeys is how many keys of one Struct are checked for repeats by
// comparing them pairwise; larger Structs use a map.
const smallKeys = 8

// appendStruct appends a google.protobuf.Struct (fields, 1: map<string,
// Value>) as a JSON object at the given depth.
func appendStruct(out, b []byte, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return nil, ErrTooDeep
	}
	var small [smallKeys][]byte
	var seen map[string]struct{}
	n := 0
	out = append(out, '{')
	for len(b) > 0 {
		num, typ, body, rest, err := field(b)
		if err != nil {
			return nil, err
		}
		b = rest
		if num != 1 {
			continue
		}
		if typ != wireBytes {
			return nil, ErrMalformed
		}
		key, value, err := mapEntry(body)
		if err != nil {
			return nil, err
		}
		if n < smallKeys {
			for _, k := range small[:n] {
				if string(k) == string(key) {
					return nil, ErrDuplicateKey
				}
			}
			small[n] = key
		} else {
			if seen == nil {
				seen = make(map[string]struct{}, 2*smallKeys)
				for _, k := range small {
					seen[string(k)] = struct{}{}
				}
			}
			if _, dup := seen[string(key)]; dup {
				return nil, ErrDuplicateKey
			}
			seen[string(key)] = struct{}{}
		}
		if n > 0 {
			out = append(out, ',')
		}
		n++
		if out, err = appendString(out, key); err != nil {
			return nil, err
		}
		out = append(out, ':')
		// An absent Value has no kind, which appendValue refuses.
		if out, err = appendValue(out, value, depth); err != nil {
			return nil, err
		}
	}
	return append(out, '}'), nil
}

// appendList appends a google.protobuf.ListValue (values, 1: repeated
// Value) as a JSON array at the given depth.
func appendList(out, b []byte, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return nil, ErrTooDeep
	}
	n := 0
	out = append(out, '[')
	for len(b) > 0 {
		num, typ, body, rest, err := field(b)
		if err != nil {
			return nil, err
		}
		b = rest
		if num != 1 {
			continue
		}
		if typ != wireBytes {
			return nil, ErrMalformed
		}
		if n > 0 {
			out = append(out, ',')
		}
		n++
		if out, err = appendValue(out, body, depth); err != nil {
			return nil, err
		}
	}
	return append(out, ']'), nil
}

// appendValue appends a google.protobuf.Value found inside a Struct or a
// list at depth; its own Struct or list is one level deeper. The kind is
// a oneof: exactly one of its fields must be present.
//
//	1 null_value   varint (any enum value)  null
//	2 number_value fixed64 double            strconv 'g'; NaN, ±Inf refused
//	3 string_value bytes, UTF-8              JSON string
//	4 bool_value   varint                    true (non-zero) or false
//	5 struct_value Struct                    object
//	6 list_value   ListValue                 array
func appendValue(out, b []byte, depth int) ([]byte, error) {
	kinds := 0
	for len(b) > 0 {
		num, typ, body, rest, err := field(b)
		if err != nil {
			return nil, err
		}
		b = rest
		if num > 6 {
			continue
		}
		if kinds++; kinds > 1 {
			return nil, ErrMalformed
		}
		want := wireBytes
		switch num {
		case 1, 4:
			want = wireVarint
		case 2:
			want = wireFixed64
		}
		if typ != want {
			return nil, ErrMalformed
		}
		switch num {
		case 1:
			out = append(out, "null"...)
		case 2:
			f := math.Float64frombits(le64(body))
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, ErrNotFinite
			}
			out = strconv.AppendFloat(out, f, 'g', -1, 64)
		case 3:
			if out, err = appendString(out, body); err != nil {
				return nil, err
			}
		case 4:
			v, _, _ := varint(body) // field has already checked it
			out = strconv.AppendBool(out, v != 0)
		case 5:
			if out, err = appendStruct(out, body, depth+1); err != nil {
				return nil, err
			}
		case 6:
			if out, err = appendList(out, body, depth+1); err != nil {
				return nil, err
			}
		}
	}
	if kinds == 0 {
		return nil, ErrNoKind
	}
	return out, nil
}

// le64 reads 8 little-endian bytes.
func le64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Control characters, '"' and '\'
// are escaped; everything else, valid UTF-8, is copied as it is.
func appendString(out, s []byte) ([]byte, error) {
	if !utf8.Valid(s) {
		return nil, ErrInvalidUTF8
	}
	out = append(out, '"')
	start := 0
	for i, c := range s {
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		out = append(out, s[start:i]...)
		start = i + 1
		switch c {
		case '"', '\\':
			out = append(out, '\\', c)
		case '\n':
			out = append(out, '\\', 'n')
		case '\r':
			out = append(out, '\\', 'r')
		case '\t':
			out = append(out, '\\', 't')
		default:
			out = append(out, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
	}
	out = append(out, s[start:]...)
	return append(out, '"'), nil
}
