package cache

import (
	"math"
	"math/rand/v2"
	"time"
	"unsafe"

	"github.com/phantom-token/envoy-phantom-token/internal/claims"
	"github.com/phantom-token/envoy-phantom-token/internal/jwt"
)

// Local is a worker's own copy of the active answers it stored in, or served
// from, the shared table, so that a token seen a moment ago costs neither a
// shared-data copy nor parsing its JWT again. Its policy:
//
//   - it holds every active answer the worker served from the shared table
//     or received itself, whether or not the table had a place for it;
//   - an entry keeps the expiry of its shared record, never longer;
//   - it is bounded in entries (LocalMax) and in bytes (LocalMaxBytes, an
//     estimate of what an entry holds, see size); when full, arbitrary
//     entries make room, and an entry larger than the whole bound is not
//     kept.
//
// It is keyed by a 128-bit SipHash of the token (the filter gives it the
// whole Authorization value that carries the token, so that a hit needs no
// parsing) under a key derived from the cache namespace and a key random to
// this VM: a keyed hash, so no raw token is kept, far cheaper than SHA-256
// in a Go wasm module, and one an attacker cannot make two tokens share. The
// namespace keeps the answers of two identity servers apart, as in the
// shared table.
type Local struct {
	// namespace and nsKey are the key derived for the namespace last asked
	// for (most plugins have one).
	namespace string
	nsKey     [2]uint64
	// table holds the entries by open addressing: an entry is in the slot
	// its key's first half names (its home), or in the first free one after
	// it (linear probing); n are held. It has at least twice as many slots as
	// entries, a power of two. A lookup reads the slot and the entry, where
	// a Go map reads four or five cache lines more (docs/performance.md).
	table []*LocalEntry
	n     int
	// next is where evictOne looks for an entry first.
	next     uint64
	key      [2]uint64
	max      int
	bytes    int
	maxBytes int
}

// tableSize is the number of slots for n entries: a power of two at least
// 2n.
func tableSize(n int) int {
	size := 2
	for size < 2*n {
		size *= 2
	}
	return size
}

// LocalKey names a token in a Local.
type LocalKey [2]uint64

// LocalEntry is a cached active answer, ready to use.
type LocalEntry struct {
	// key is the entry's key in a Local (set by Put).
	key LocalKey
	// until is the first instant, in Unix nanoseconds, at which a hit on
	// the entry is no plain hit (Hit): its expiry, its refresh time or its
	// JWT's exp, whichever comes first; never for a bound token (set by Put
	// and Postpone).
	until int64
	// Upstream is "Bearer <jwt>", built once per entry: the value of an
	// Authorization upstream header, and after its 7 bytes the bare JWT for
	// any other.
	Upstream string
	// Claims come after what a hit reads first; a hit reads their Exp and
	// Scopes too.
	Claims jwt.Claims
	// Headers are the values of the configuration's claims (ClaimPaths),
	// read once per entry.
	Headers []claims.Value
	Expires time.Time
	// RefreshAt is when a hit starts a refresh (zero: never; see
	// Record.RefreshAt), or checks again for one (Postpone).
	RefreshAt time.Time
	// Stale marks an answer served in place of a failed call; such an entry
	// is made for the requests it admits and never kept.
	Stale bool
}

// plainUntil is the first instant at which e is expired, due for a
// refresh, or past its JWT's exp; a hit on a token bound to a key or a
// certificate is never plain (it needs the request's proof or certificate).
func plainUntil(e *LocalEntry) int64 {
	if e.Claims.Binding.Bound() {
		return math.MinInt64
	}
	t := e.Expires
	if !e.RefreshAt.IsZero() && e.RefreshAt.Before(t) {
		t = e.RefreshAt
	}
	if !e.Claims.Exp.IsZero() && e.Claims.Exp.Before(t) {
		t = e.Claims.Exp
	}
	// UnixNano is undefined before 1678 and after 2262: a time out there
	// (a zero Expires, an exp far in the past) is never plain.
	if s := t.Unix(); s <= math.MinInt64/int64(time.Second)+1 || s >= math.MaxInt64/int64(time.Second)-1 {
		return math.MinInt64
	}
	return t.UnixNano()
}

// LocalMax and LocalMaxBytes bound a worker's copy; the shared table holds
// the rest.
const (
	LocalMax      = 1024
	LocalMaxBytes = 4 << 20
)

// entryOverhead is what an entry costs besides its strings: its slots in
// the table, the entry and the slice of scopes (an estimate, on the safe
// side).
const entryOverhead = 160

// size estimates the memory an entry holds.
func size(e *LocalEntry) int {
	n := entryOverhead + len(e.Upstream)
	for _, h := range e.Headers {
		n += 24 + len(h.Text)
	}
	for _, s := range e.Claims.Scopes {
		n += 16 + len(s)
	}
	return n
}

// NewLocal makes a copy of at most min(maxEntries, LocalMax) entries.
func NewLocal(maxEntries int) *Local {
	n := max(1, min(maxEntries, LocalMax))
	return &Local{
		key:      [2]uint64{rand.Uint64(), rand.Uint64()},
		table:    make([]*LocalEntry, tableSize(n)),
		max:      n,
		maxBytes: LocalMaxBytes,
	}
}

// Key is the token's key in this copy, in a cache namespace.
func (c *Local) Key(namespace, token string) LocalKey {
	if !c.sameNamespace(namespace) {
		c.setNamespace(namespace)
	}
	return sipHash128(c.nsKey, token)
}

// sameNamespace reports whether the key of namespace is the one kept. A
// plugin passes the same string each time: it is recognised by its address
// before its bytes are compared.
func (c *Local) sameNamespace(namespace string) bool {
	return len(namespace) == len(c.namespace) && c.nsKey != ([2]uint64{}) &&
		(unsafe.StringData(namespace) == unsafe.StringData(c.namespace) || namespace == c.namespace)
}

func (c *Local) setNamespace(namespace string) {
	c.namespace, c.nsKey = namespace, sipHash128(c.key, namespace)
}

// find is the entry of key k, nil when there is none.
func (c *Local) find(k LocalKey) *LocalEntry {
	_, e := c.slot(k)
	return e
}

// slot is where key k is in the table, or the free slot where it would go
// (e nil). At most half the slots are full, so a probe ends soon.
func (c *Local) slot(k LocalKey) (i uint64, e *LocalEntry) {
	mask := uint64(len(c.table) - 1)
	for i = k[0] & mask; ; i = (i + 1) & mask {
		if e = c.table[i]; e == nil || e.key == k {
			return i, e
		}
	}
}

// Get returns the token's entry unless it has expired at now. The entry is
// the copy's own, not a copy of it (a hit copies nothing): the caller reads
// it and never changes it.
func (c *Local) Get(k LocalKey, now time.Time) (*LocalEntry, bool) {
	e := c.find(k)
	if e == nil {
		return nil, false
	}
	if !now.Before(e.Expires) {
		c.Delete(k)
		return nil, false
	}
	return e, true
}

// Hit returns the token's entry when a hit on it is plain at now (Unix
// nanoseconds): the entry is not expired, not due for a refresh, its JWT's
// exp has not passed, and the token is not bound to a key or a certificate;
// nil otherwise, and then Get says more. It changes nothing. Like Get's, the
// entry is the copy's own.
func (c *Local) Hit(k LocalKey, now int64) *LocalEntry {
	if e := c.find(k); e != nil && now < e.until {
		return e
	}
	return nil
}

// Put keeps an entry until its expiry, unless it alone is over the bound in
// bytes.
func (c *Local) Put(k LocalKey, e LocalEntry) {
	n := size(&e)
	if n > c.maxBytes {
		return
	}
	if i, old := c.slot(k); old != nil {
		c.removeAt(i)
	}
	for c.n > 0 && (c.n >= c.max || c.bytes+n > c.maxBytes) {
		c.evictOne()
	}
	e.key, e.until = k, plainUntil(&e)
	i, _ := c.slot(k)
	c.table[i] = &e
	c.n++
	c.bytes += n
}

// evictOne removes an entry to make room: the next one after the last
// evicted, in table order (an arbitrary one, as far as tokens go).
func (c *Local) evictOne() {
	mask := uint64(len(c.table) - 1)
	for c.table[c.next] == nil {
		c.next = (c.next + 1) & mask
	}
	c.removeAt(c.next)
}

// Postpone moves the entry's refresh time to until, so that its hits look
// for a refresh at most once until then.
func (c *Local) Postpone(k LocalKey, until time.Time) {
	if e := c.find(k); e != nil {
		e.RefreshAt = until
		e.until = plainUntil(e)
	}
}

// Delete forgets the token's entry.
func (c *Local) Delete(k LocalKey) {
	if i, e := c.slot(k); e != nil {
		c.removeAt(i)
	}
}

// removeAt empties slot i, then moves back the entries of the probe run
// after it that may fill it (Knuth's deletion for linear probing, Algorithm
// R of TAOCP 6.4), so that every entry stays reachable from its home slot
// without tombstones.
func (c *Local) removeAt(i uint64) {
	c.n--
	c.bytes -= size(c.table[i])
	mask := uint64(len(c.table) - 1)
	for j := (i + 1) & mask; c.table[j] != nil; j = (j + 1) & mask {
		// The entry at j may move to i unless its home slot lies
		// cyclically in (i, j].
		if home := c.table[j].key[0] & mask; (j-home)&mask >= (j-i)&mask {
			c.table[i] = c.table[j]
			i = j
		}
	}
	c.table[i] = nil
}

// Bytes is the estimated memory the entries hold.
func (c *Local) Bytes() int { return c.bytes }

// Len is the number of entries held.
func (c *Local) Len() int { return c.n }
