package cache

import (
	"encoding/binary"
	"testing"
)

// The first vectors of SipHash-2-4's 128-bit output from its authors'
// reference implementation: key 00 01 … 0f, message 00 01 … (n-1), output
// as 16 bytes (the two 64-bit halves little-endian).
func TestSipHash128Vectors(t *testing.T) {
	key := [2]uint64{0x0706050403020100, 0x0f0e0d0c0b0a0908}
	for n, want := range []string{
		"a3817f04ba25a8e66df67214c7550293",
		"da87c1d86b99af44347659119b22fc45",
	} {
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = byte(i)
		}
		h := sipHash128(key, string(msg))
		var b [16]byte
		binary.LittleEndian.PutUint64(b[:8], h[0])
		binary.LittleEndian.PutUint64(b[8:], h[1])
		if got := hexString(b[:]); got != want {
			t.Errorf("%d bytes: %s, want %s", n, got, want)
		}
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	s := make([]byte, 0, 2*len(b))
	for _, c := range b {
		s = append(s, digits[c>>4], digits[c&15])
	}
	return string(s)
}
