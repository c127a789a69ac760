package main

import (
	"hash/maphash"
	"time"

	"github.com/phantom-token/envoy-phantom-token/internal/introspection"
)

// localCache is a small per-VM copy of the answers this VM served from the
// shared cache, so that a token seen a moment ago costs neither a shared-data
// copy nor parsing its JWT again. It holds nothing the shared cache did not,
// never for longer: every entry keeps the expiry of its shared record.
//
// It is keyed by two 64-bit hashes of the token with seeds random to this VM
// (a keyed hash, so no raw token is kept, and far cheaper than SHA-256 in a
// Go wasm module).
type localCache struct {
	seeds   [2]maphash.Seed
	entries map[localKey]localEntry
	max     int
}

type localKey [2]uint64

type localEntry struct {
	answer introspection.Answer
	// upstream is the upstream header's value, built once per entry.
	upstream string
	expires  time.Time
}

// localCacheMax bounds the entries per VM; the shared cache holds the rest.
const localCacheMax = 1024

func newLocalCache(maxEntries int) *localCache {
	return &localCache{
		seeds:   [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		entries: map[localKey]localEntry{},
		max:     min(maxEntries, localCacheMax),
	}
}

func (c *localCache) key(token string) localKey {
	return localKey{maphash.String(c.seeds[0], token), maphash.String(c.seeds[1], token)}
}

func (c *localCache) get(k localKey, t time.Time) (localEntry, bool) {
	e, ok := c.entries[k]
	if ok && !t.Before(e.expires) {
		delete(c.entries, k)
		return localEntry{}, false
	}
	return e, ok
}

// put keeps an active answer until expires. When full, it drops an arbitrary
// entry (Go's map order), which is as good as any without access times.
func (c *localCache) put(k localKey, e localEntry) {
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.max {
		for old := range c.entries {
			delete(c.entries, old)
			break
		}
	}
	c.entries[k] = e
}
