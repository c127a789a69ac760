package cache

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// model drives the cache's decisions the way the filter does, for several
// workers sharing one table, one request at a time: each worker's own copy
// first, then the token's two sets (Lookup), then a call whose answer is
// stored (Store) and kept by the worker (Local). It counts the calls.
type model struct {
	shared     map[string][]byte
	locals     []*Local
	maxEntries int
	calls      int
	negative   time.Duration
}

func newModel(workers, maxEntries int, negative time.Duration) *model {
	m := &model{shared: map[string][]byte{}, maxEntries: maxEntries, negative: negative}
	for range workers {
		m.locals = append(m.locals, NewLocal(maxEntries))
	}
	return m
}

// request is one request of worker w for token at now; valid tokens are
// active until now + ttl.
func (m *model) request(w int, token string, valid bool, now time.Time, ttl time.Duration) {
	local := m.locals[w]
	lk := local.Key("0123456789abcdef", token)
	if _, ok := local.Get(lk, now); ok {
		return
	}
	h := Hash("ns", token)
	keys := Keys("ns", h, m.maxEntries)
	which, step, rec := Lookup(Decode(m.shared[keys[0]]), Decode(m.shared[keys[1]]), h, now, NewRequest)
	key := keys[which]
	switch step {
	case Serve:
		local.Put(lk, LocalEntry{Upstream: "Bearer " + rec.JWT, Expires: rec.Expires})
		return
	case Refuse:
		if set, ok := MarkSeen(Decode(m.shared[key]), h, now); ok {
			m.shared[key] = Encode(set)
		}
		return
	}
	m.calls++
	r := Record{Kind: Inactive, Hash: h, Expires: now.Add(m.negative)}
	if valid {
		r = Record{Kind: Active, Hash: h, Expires: now.Add(ttl), JWT: "header.payload-of-" + token + ".signature"}
		local.Put(lk, LocalEntry{Upstream: "Bearer " + r.JWT, Expires: r.Expires})
	} else if m.negative == 0 {
		return
	}
	if set, _, ok := Store(Decode(m.shared[key]), r, now); ok {
		m.shared[key] = Encode(set)
	}
}

// TestLiveTokensAreCachedAtCapacity: cache_max_entries live tokens, each
// requested five times within its lifetime by either of two workers, cost at
// most 1.05 introspections each.
func TestLiveTokensAreCachedAtCapacity(t *testing.T) {
	for _, entries := range []int{1000, 10000} {
		rnd := rand.New(rand.NewPCG(1, uint64(entries)))
		m := newModel(2, entries, 0)
		var order []int
		for i := range entries {
			for range 5 {
				order = append(order, i)
			}
		}
		rnd.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, i := range order {
			m.request(rnd.IntN(2), "token-"+strconv.Itoa(i), true, t0, time.Hour)
		}
		perToken := float64(m.calls) / float64(entries)
		t.Logf("%d live tokens, cache_max_entries %d, 2 workers: %.4f introspections a token", entries, entries, perToken)
		if perToken > 1.05 {
			t.Errorf("%d entries: %.4f introspections a token, want at most 1.05", entries, perToken)
		}
	}
}

// TestValidTokensCannotPinTheTable: after 40,000 distinct valid tokens with
// 300 s lifetimes, one every 7.5 ms (133 a second, the table full four times
// over), 200 new tokens requested ten times each cost about one call each.
func TestValidTokensCannotPinTheTable(t *testing.T) {
	rnd := rand.New(rand.NewPCG(2, 2))
	m := newModel(2, 10000, 0)
	now := t0
	for i := range 40000 {
		now = now.Add(7500 * time.Microsecond)
		m.request(rnd.IntN(2), "flood-"+strconv.Itoa(i), true, now, 300*time.Second)
	}
	m.calls = 0
	for i := range 200 {
		for range 10 {
			now = now.Add(time.Millisecond)
			m.request(rnd.IntN(2), "new-"+strconv.Itoa(i), true, now, 300*time.Second)
		}
	}
	t.Logf("200 new tokens after a flood of 40,000: %d calls", m.calls)
	if m.calls > 210 {
		t.Errorf("200 new tokens cost %d calls, want about 200", m.calls)
	}
}

// TestReplayedVerdictsSurviveARandomFlood: with cache_negative_ttl 10s, 100
// invalid tokens replayed while 100 random tokens a second flood a 1,000-entry
// table cost about one call each per 10 s, over 20 s.
func TestReplayedVerdictsSurviveARandomFlood(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 3))
	m := newModel(2, 1000, 10*time.Second)
	replayed := 0
	now := t0
	for step := range 20000 { // 1 ms each
		now = now.Add(time.Millisecond)
		if step%10 == 0 {
			m.request(rnd.IntN(2), "random-"+strconv.Itoa(step), false, now, 0)
		}
		before := m.calls
		m.request(rnd.IntN(2), "replayed-"+strconv.Itoa(rnd.IntN(100)), false, now, 0)
		replayed += m.calls - before
	}
	t.Logf("100 replayed invalid tokens over 20 s beside 2,000 random ones: %d calls", replayed)
	if replayed > 220 {
		t.Errorf("%d calls for the replayed tokens, want about 200", replayed)
	}
}
