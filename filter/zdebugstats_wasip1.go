//go:build debugstats && wasip1

package main

import "unsafe"

// rawGetHeader is proxy_get_header_map_value called straight, its results in
// package variables: a header read without the SDK's wrapper, whose two
// out-parameters escape to the heap. The debugstats probes time both.
//
//go:wasmimport env proxy_get_header_map_value
func rawGetHeader(mapType uint32, keyData *byte, keySize int32, returnValueData unsafe.Pointer, returnValueSize *int32) uint32

var (
	rawValue *byte
	rawSize  int32
)

func init() {
	rawHeaderProbe = func(name string) {
		_ = rawGetHeader(0, unsafe.StringData(name), int32(len(name)), unsafe.Pointer(&rawValue), &rawSize)
	}
}
