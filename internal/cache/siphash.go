package cache

import (
	"encoding/binary"
	"math/bits"
)

// sipHash128 is SipHash-2-4 with its 128-bit output (Aumasson and
// Bernstein, "SipHash: a fast short-input PRF"): a keyed function whose
// outputs an attacker who does not know the key can neither predict nor make
// collide. It keys a worker's copy of the cache, where maphash (whose
// non-AES form a Go wasm module gets) is not meant to resist that, and is
// one small function where maphash is seven.
func sipHash128(k [2]uint64, m string) [2]uint64 {
	v0 := k[0] ^ 0x736f6d6570736575
	v1 := k[1] ^ 0x646f72616e646f6d ^ 0xee
	v2 := k[0] ^ 0x6c7967656e657261
	v3 := k[1] ^ 0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13) ^ v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16) ^ v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21) ^ v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17) ^ v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	n := len(m)
	for len(m) >= 8 {
		w := binary.LittleEndian.Uint64([]byte(m[:8]))
		v3 ^= w
		round()
		round()
		v0 ^= w
		m = m[8:]
	}
	last := uint64(n) << 56
	for i := range len(m) {
		last |= uint64(m[i]) << (8 * i)
	}
	v3 ^= last
	round()
	round()
	v0 ^= last
	v2 ^= 0xee
	for range 4 {
		round()
	}
	lo := v0 ^ v1 ^ v2 ^ v3
	v1 ^= 0xdd
	for range 4 {
		round()
	}
	return [2]uint64{lo, v0 ^ v1 ^ v2 ^ v3}
}
