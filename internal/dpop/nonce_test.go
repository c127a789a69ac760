package dpop_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/phantom-token/envoy-phantom-token/internal/dpop"
)

func TestNonce(t *testing.T) {
	key := []byte(strings.Repeat("k", dpop.MinNonceKeyLen))
	otherKey := []byte(strings.Repeat("o", dpop.MinNonceKeyLen))
	made := time.Unix(1_800_000_000, 0)
	lifetime := time.Minute
	nonce := dpop.NewNonce(key, made)
	if len(nonce) != dpop.NonceLen || !dpop.IsBase64URL(nonce) {
		t.Fatalf("NewNonce = %q, want %d base64url characters", nonce, dpop.NonceLen)
	}
	tests := []struct {
		name  string
		key   []byte
		nonce string
		now   time.Time
		ok    bool
	}{
		{"just made", key, nonce, made, true},
		{"made lifetime ago", key, nonce, made.Add(lifetime), true},
		{"made longer ago", key, nonce, made.Add(lifetime + time.Second), false},
		{"made up to lifetime ahead (another proxy's clock)", key, nonce, made.Add(-lifetime), true},
		{"made further ahead", key, nonce, made.Add(-lifetime - time.Second), false},
		{"same second, same nonce", key, dpop.NewNonce(key, made.Add(999*time.Millisecond)), made, true},
		{"made with another key", otherKey, nonce, made, false},
		{"MAC changed", key, nonce[:dpop.NonceLen-2] + flip(nonce[dpop.NonceLen-2]) + nonce[dpop.NonceLen-1:], made, false},
		{"time changed", key, nonce[:5] + flip(nonce[5]) + nonce[6:], made, false},
		{"version changed", key, flip(nonce[0]) + nonce[1:], made, false},
		{"one character short", key, nonce[:dpop.NonceLen-1], made, false},
		{"one character more", key, nonce + "A", made, false},
		{"unused bits set", key, setLastBits(nonce), made, false},
		{"not base64url", key, strings.Repeat("*", dpop.NonceLen), made, false},
		{"empty", key, "", made, false},
		{"key too short", key[:dpop.MinNonceKeyLen-1], dpop.NewNonce(key[:dpop.MinNonceKeyLen-1], made), made, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := dpop.ValidNonce(tt.key, tt.nonce, tt.now, lifetime); got != tt.ok {
				t.Errorf("ValidNonce = %v, want %v", got, tt.ok)
			}
		})
	}
	if dpop.NewNonce(key[:dpop.MinNonceKeyLen-1], made) != "" {
		t.Errorf("NewNonce made a nonce with a short key")
	}
	if dpop.NewNonce(key, made) == dpop.NewNonce(key, made.Add(time.Second)) {
		t.Errorf("nonces of two seconds are equal")
	}
}

// flip returns another base64url character.
func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// The MAC written out is HMAC-SHA256.
func TestNonceMACIsHMAC(t *testing.T) {
	for _, n := range []int{32, 64, 65, 100} {
		key := bytes.Repeat([]byte{byte(n)}, n)
		m := hmac.New(sha256.New, key)
		m.Write([]byte("dpop-nonce"))
		m.Write([]byte{1, 2, 3})
		if got, want := dpop.NonceMAC(key, []byte{1, 2, 3}), m.Sum(nil)[:16]; !bytes.Equal(got, want) {
			t.Errorf("key of %d bytes: %x, want %x", n, got, want)
		}
	}
}
