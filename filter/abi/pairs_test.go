package abi

import (
	"reflect"
	"testing"
)

func TestPairsRoundTrip(t *testing.T) {
	for _, ps := range [][][2]string{
		{},
		{{":status", "200"}},
		{{"content-type", "application/jwt"}, {"cache-control", "max-age=60"}, {"x-empty", ""}},
		{{"", ""}},
	} {
		got, err := decodePairs(encodePairs(ps))
		if err != nil || !reflect.DeepEqual(got, ps) && len(ps) > 0 {
			t.Errorf("%q: decoded %q, %v", ps, got, err)
		}
	}
}

// A map whose counts and lengths do not fit its bytes is an error, never a
// panic or a read past its end.
func TestPairsMalformed(t *testing.T) {
	good := encodePairs([][2]string{{"a", "bc"}, {"de", "f"}})
	cases := map[string][]byte{
		"empty":              {},
		"short count":        {1, 0},
		"count too large":    {0xff, 0xff, 0xff, 0x7f},
		"cut short":          good[:len(good)-1],
		"no NUL after value": append(append([]byte{}, good[:len(good)-1]...), 'x'),
		"length past end":    func() []byte { b := append([]byte{}, good...); b[4] = 200; return b }(),
	}
	for name, b := range cases {
		if ps, err := decodePairs(b); err == nil {
			t.Errorf("%s: decoded %q, want an error", name, ps)
		}
	}
}
