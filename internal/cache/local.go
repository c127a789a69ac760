package cache

import (
	"hash/maphash"
	"time"

	"github.com/phantom-token/envoy-phantom-token/internal/jwt"
)

// Local is a worker's own copy of the active answers it stored in, or served
// from, the shared table, so that a token seen a moment ago costs neither a
// shared-data copy nor parsing its JWT again. Its policy:
//
//   - it holds an answer only once the shared table held it (the worker
//     served it from there, or its own write there succeeded);
//   - an entry keeps the expiry of its shared record, never longer;
//   - it is bounded (LocalMax); when full, an arbitrary entry makes room.
//
// It is keyed by two 64-bit hashes of the token with seeds random to this VM:
// a keyed hash, so no raw token is kept, and far cheaper than SHA-256 in a Go
// wasm module.
type Local struct {
	seeds   [2]maphash.Seed
	entries map[LocalKey]LocalEntry
	max     int
}

// LocalKey names a token in a Local.
type LocalKey [2]uint64

// LocalEntry is a cached active answer, ready to use.
type LocalEntry struct {
	Claims jwt.Claims
	// Upstream is the upstream header's value, built once per entry.
	Upstream string
	Expires  time.Time
}

// LocalMax bounds a worker's copy; the shared table holds the rest.
const LocalMax = 1024

// NewLocal makes a copy of at most min(maxEntries, LocalMax) entries.
func NewLocal(maxEntries int) *Local {
	return &Local{
		seeds:   [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		entries: map[LocalKey]LocalEntry{},
		max:     max(1, min(maxEntries, LocalMax)),
	}
}

// Key is the token's key in this copy.
func (c *Local) Key(token string) LocalKey {
	return LocalKey{maphash.String(c.seeds[0], token), maphash.String(c.seeds[1], token)}
}

// Get returns the token's entry unless it has expired at now.
func (c *Local) Get(k LocalKey, now time.Time) (LocalEntry, bool) {
	e, ok := c.entries[k]
	if ok && !now.Before(e.Expires) {
		delete(c.entries, k)
		return LocalEntry{}, false
	}
	return e, ok
}

// Put keeps an entry until its expiry.
func (c *Local) Put(k LocalKey, e LocalEntry) {
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.max {
		for old := range c.entries {
			delete(c.entries, old)
			break
		}
	}
	c.entries[k] = e
}

// Len is the number of entries held.
func (c *Local) Len() int { return len(c.entries) }
