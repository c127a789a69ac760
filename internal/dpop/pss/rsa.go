package pss

import "math/bits"

// The RSA public-key operation, s^e mod n, with Montgomery multiplication
// (CIOS) on little-endian 32-bit words: products and carries fit a uint64,
// which WebAssembly multiplies natively. R is 2^(32k) for a modulus of k
// words.

// nat is a number of k words, least significant first.
type nat []uint32

// publicOp returns s^e mod n as len(n) big-endian bytes (RSAVP1, RFC 8017
// §5.2.2), n odd and without leading zero bytes, len(s) = len(n). ok is
// false when s is not below n.
func publicOp(n []byte, e uint32, s []byte) (m []byte, ok bool) {
	mod, sig := natFromBytes(n), natFromBytes(s)
	if !less(sig, mod) {
		return nil, false
	}
	k := len(mod)
	n0inv := -inverse(mod[0])
	// Into Montgomery form (sig·R), exponent bits from the top, out again.
	sigR := montMul(sig, rrMod(mod, n0inv), mod, n0inv)
	acc := append(nat(nil), sigR...)
	for i := 30 - bits.LeadingZeros32(e); i >= 0; i-- {
		acc = montMul(acc, acc, mod, n0inv)
		if e>>i&1 == 1 {
			acc = montMul(acc, sigR, mod, n0inv)
		}
	}
	one := make(nat, k)
	one[0] = 1
	return montMul(acc, one, mod, n0inv).bytes(len(n)), true
}

// montMul returns a·b·R⁻¹ mod n for a, b < n: CIOS (Koç, Acar, Kaliski,
// 1996), then one subtraction of n when the result is not below it.
func montMul(a, b, n nat, n0inv uint32) nat {
	k := len(n)
	t := make(nat, k+2)
	for i := 0; i < k; i++ {
		// t += a·b[i]
		var c uint64
		bi := uint64(b[i])
		for j := 0; j < k; j++ {
			v := uint64(a[j])*bi + uint64(t[j]) + c
			t[j], c = uint32(v), v>>32
		}
		v := uint64(t[k]) + c
		t[k], t[k+1] = uint32(v), uint32(v>>32)
		// t = (t + m·n) / 2^32, m making the low word zero
		m := uint64(t[0] * n0inv)
		c = (m*uint64(n[0]) + uint64(t[0])) >> 32
		for j := 1; j < k; j++ {
			v := m*uint64(n[j]) + uint64(t[j]) + c
			t[j-1], c = uint32(v), v>>32
		}
		v = uint64(t[k]) + c
		t[k-1] = uint32(v)
		t[k] = t[k+1] + uint32(v>>32)
	}
	// t < 2n: t[k] is 0 or 1.
	if t[k] != 0 || !less(t[:k], n) {
		var borrow uint64
		for j := 0; j < k; j++ {
			v := uint64(t[j]) - uint64(n[j]) - borrow
			t[j], borrow = uint32(v), v>>63
		}
	}
	return t[:k]
}

// rrMod returns R² mod n. 32k = odd·2^s: 2^(bitlen(n)-1) < n doubled up to
// R·2^odd mod n, the Montgomery form of 2^odd, then squared s times with
// montMul (the form of x squared is the form of x²): R·2^(odd·2^s) = R².
func rrMod(n nat, n0inv uint32) nat {
	k := len(n)
	odd, s := k, 5
	for odd%2 == 0 {
		odd, s = odd/2, s+1
	}
	top := 32*k - bits.LeadingZeros32(n[k-1]) - 1 // n's top bit
	x := make(nat, k)
	x[top/32] = 1 << (top % 32)
	for i := top; i < 32*k+odd; i++ {
		// x = 2x mod n: x < n, so 2x < 2n needs one subtraction at most.
		var carry uint32
		for j := range x {
			x[j], carry = x[j]<<1|carry, x[j]>>31
		}
		if carry != 0 || !less(x, n) {
			var borrow uint64
			for j := range x {
				v := uint64(x[j]) - uint64(n[j]) - borrow
				x[j], borrow = uint32(v), v>>63
			}
		}
	}
	for range s {
		x = montMul(x, x, n, n0inv)
	}
	return x
}

// inverse returns x⁻¹ mod 2^32 for odd x, by Newton's iteration: each step
// doubles the correct low bits (x·x ≡ 1 mod 8 gives three to start).
func inverse(x uint32) uint32 {
	y := x
	for range 4 {
		y *= 2 - x*y
	}
	return y
}

// less reports whether a < b, both of len(b) words.
func less(a, b nat) bool {
	for i := len(b) - 1; i >= 0; i-- {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// natFromBytes reads the big-endian b.
func natFromBytes(b []byte) nat {
	x := make(nat, (len(b)+3)/4)
	for i, c := range b {
		pos := len(b) - 1 - i
		x[pos/4] |= uint32(c) << (8 * (pos % 4))
	}
	return x
}

// bytes writes x big-endian in size bytes (x must fit).
func (x nat) bytes(size int) []byte {
	b := make([]byte, size)
	for pos := 0; pos < size; pos++ {
		if pos/4 < len(x) {
			b[size-1-pos] = byte(x[pos/4] >> (8 * (pos % 4)))
		}
	}
	return b
}
