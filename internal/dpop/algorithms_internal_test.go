package dpop

import (
	"strings"
	"testing"
)

// TestAlgorithmsListed: Algorithms and the verification table agree, and
// neither has "none" or an HMAC.
func TestAlgorithmsListed(t *testing.T) {
	if len(Algorithms) != len(algorithms) {
		t.Fatalf("%d names, %d algorithms", len(Algorithms), len(algorithms))
	}
	for i, a := range algorithms {
		if Algorithms[i] != a.name {
			t.Errorf("Algorithms[%d] = %q, table has %q", i, Algorithms[i], a.name)
		}
		if strings.HasPrefix(a.name, "HS") || strings.EqualFold(a.name, "none") {
			t.Errorf("%q supported", a.name)
		}
	}
}
