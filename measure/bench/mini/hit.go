//go:build wasip1 && mini_hit

package main

import "unsafe"

//go:wasmimport env proxy_get_header_map_value
//go:noescape
func getHeaderMapValue(mapType uint32, key *byte, keySize int32, value unsafe.Pointer, valueSize *int32) uint32

//go:wasmimport env proxy_replace_header_map_value
//go:noescape
func replaceHeaderMapValue(mapType uint32, key *byte, keySize int32, value *byte, valueSize int32) uint32

//go:wasmimport wasi_snapshot_preview1 clock_time_get
//go:noescape
func clockTimeGet(id uint32, precision uint64, t *uint64) uint32

// jwtLen is the length of the bench's JWT (the Go identity server fixture's,
// for a token with scope "read"), which the filter sends upstream on a hit.
const jwtLen = 441

var (
	name  = "authorization"
	value = func() []byte {
		b := make([]byte, len("Bearer ")+jwtLen)
		copy(b, "Bearer ")
		for i := len("Bearer "); i < len(b); i++ {
			b[i] = 'x'
		}
		return b
	}()
	// The out-parameters, global so that they do not escape per call.
	valueData *byte
	valueSize int32
	clock     uint64
)

// hit makes a cache hit's three host calls.
func hit() {
	if getHeaderMapValue(0, unsafe.StringData(name), int32(len(name)), unsafe.Pointer(&valueData), &valueSize) != 0 || valueSize == 0 {
		return
	}
	replaceHeaderMapValue(0, unsafe.StringData(name), int32(len(name)), &value[0], int32(len(value)))
	clockTimeGet(0, 1, &clock)
}
