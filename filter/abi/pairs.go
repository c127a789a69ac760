package abi

import (
	"encoding/binary"
	"errors"
	"unsafe"
)

// encodePairs is the ABI's encoding of a header map: the number of pairs,
// each pair's key and value lengths (32-bit little-endian), then each key
// and value followed by a NUL byte.
func encodePairs(ps [][2]string) []byte {
	n := 4
	for _, p := range ps {
		n += 8 + len(p[0]) + len(p[1]) + 2
	}
	b := make([]byte, 4, n)
	binary.LittleEndian.PutUint32(b, uint32(len(ps)))
	for _, p := range ps {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p[0])))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p[1])))
	}
	for _, p := range ps {
		b = append(b, p[0]...)
		b = append(b, 0)
		b = append(b, p[1]...)
		b = append(b, 0)
	}
	return b
}

// decodePairs reads encodePairs' encoding. The strings share b's memory. A
// map that does not fit its bytes is an error, never a panic.
func decodePairs(b []byte) ([][2]string, error) {
	bad := errors.New("the host's header map is malformed")
	if len(b) < 4 {
		return nil, bad
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n > (len(b)-4)/10 {
		return nil, bad
	}
	sizes, data := b[4:4+8*n], b[4+8*n:]
	ps := make([][2]string, n)
	for i := range ps {
		for j := range 2 {
			size := int(binary.LittleEndian.Uint32(sizes[8*i+4*j:]))
			if size >= len(data) || data[size] != 0 {
				return nil, bad
			}
			ps[i][j] = unsafe.String(unsafe.SliceData(data), size)
			data = data[size+1:]
		}
	}
	return ps, nil
}
