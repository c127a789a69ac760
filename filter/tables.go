package main

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/phantom-token/envoy-phantom-token/filter/abi"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/phantom-token/envoy-phantom-token/internal/cache"
	"github.com/phantom-token/envoy-phantom-token/internal/tables"
)

// The plugin's cache table (see internal/tables): which one it uses, its
// lease, and its share of emptying the tables nobody uses any more. Every
// decision is in internal/tables; this file reads and writes shared data.

// registryAttempts bounds the compare-and-swap retries on the registry.
const registryAttempts = 8

// visitPeriod is how often a plugin reads the registry on its tick, to renew
// its lease when due and to empty a chunk of an abandoned table.
const visitPeriod = time.Second

var errRegistryContended = errors.New("the table registry changed under every attempt")

// updateRegistry is the registry's one read-compare-and-swap: it reads the
// registry, lets decide make the new one, and writes it unless decide says
// there is nothing to write, retrying when another VM wrote in between. An
// unreadable registry reads as empty: the plugins in it find their tables
// again when they renew.
func updateRegistry(decide func(tables.Registry) (tables.Registry, bool)) error {
	for range registryAttempts {
		raw, cas, err := getShared(tables.Key)
		switch {
		case errors.Is(err, types.ErrorStatusNotFound):
			// The first write creates it. A write with CAS 0 is
			// unconditional: of two VMs that create it at once, one's
			// entry is lost, and it is made again at that plugin's first
			// renewal (see tables.Acquire: its current table).
			raw, cas = nil, 0
		case err != nil:
			return err
		}
		r, ok := tables.Decode(raw)
		if !ok && err == nil {
			abi.LogWarn("phantom-token: the cache table registry is unreadable: starting it afresh")
		}
		next, write := decide(r)
		if !write {
			return nil
		}
		err = setShared(tables.Key, tables.Encode(next), cas)
		if !errors.Is(err, types.ErrorStatusCasMismatch) {
			return err
		}
	}
	return errRegistryContended
}

// startTable finds the plugin's table at start. When the registry cannot be
// read or written, or holds MaxTables tables all in use, the plugin uses a
// table named after its namespace, as before the registry: correct, but left
// behind when the configuration changes.
func (p *pluginContext) startTable(t time.Time) {
	p.holder, p.tableNumber = randomHolder(), -1
	p.nextVisit, p.nextRenew = time.Time{}, time.Time{} // renew on the first tick
	if err := p.acquireTable(t, tables.StartLease); err != nil {
		p.table = p.cfg.CacheNamespace
		abi.LogWarn("phantom-token: no table in the cache table registry (" + err.Error() + "): using one named after the configuration, which stays when the configuration changes")
		p.createSets(0, 0)
	}
}

// randomHolder names a plugin context in the registry.
func randomHolder() uint64 { return rand.Uint64() }

var errNoTable = errors.New("every table is in use")

// acquireTable asks the registry for the plugin's table (see tables.Acquire)
// with a lease that ends after lease, and moves to the table it gets when
// that is another than the one it uses.
func (p *pluginContext) acquireTable(t time.Time, lease time.Duration) error {
	var g tables.Grant
	granted := false
	err := updateRegistry(func(r tables.Registry) (tables.Registry, bool) {
		next, grant, ok := tables.Acquire(r, tables.Request{
			Namespace: p.cfg.CacheNamespace, Sets: uint32(cache.Sets(p.cfg.CacheMaxEntries)),
			Holder: p.holder, Expires: t.Add(lease), Current: p.tableNumber,
		}, t)
		g, granted = grant, ok
		return next, ok
	})
	switch {
	case err != nil:
		return err
	case !granted:
		return errNoTable
	}
	if int64(g.Number) == p.tableNumber {
		return nil
	}
	if p.tableNumber >= 0 {
		abi.LogWarn("phantom-token: cache table " + tables.ID(uint32(p.tableNumber)) + " went to another configuration: moving to " + tables.ID(g.Number))
	}
	p.tableNumber, p.table = int64(g.Number), tables.ID(g.Number)
	p.emptySets(p.table, g.EmptyFrom, g.EmptyTo)
	p.createSets(g.EmptyFrom, g.EmptyTo)
	abi.LogInfo("phantom-token: cache table " + p.table + " (" + strconv.Itoa(cache.Sets(p.cfg.CacheMaxEntries)) + " sets)")
	return nil
}

// visitTables runs on the tick, at most once per visitPeriod: it renews the
// plugin's lease every tables.RenewEvery (first on its first tick), and
// empties a chunk of a table whose leases all ended.
func (p *pluginContext) visitTables(t time.Time) {
	if p.tableNumber < 0 || t.Before(p.nextVisit) {
		return
	}
	p.nextVisit = t.Add(visitPeriod)
	if !t.Before(p.nextRenew) {
		p.nextRenew = t.Add(tables.RenewEvery)
		if err := p.acquireTable(t, tables.Lease); err != nil {
			abi.LogWarn("phantom-token: cannot renew the lease of cache table " + p.table + ": " + err.Error())
		}
	}
	var c tables.Chunk
	found := false
	if err := updateRegistry(func(r tables.Registry) (tables.Registry, bool) {
		c, found = tables.NextDrain(r, t)
		return r, false
	}); err != nil || !found {
		return
	}
	p.emptySets(tables.ID(c.Number), c.From, c.To)
	if err := updateRegistry(func(r tables.Registry) (tables.Registry, bool) {
		return tables.Drained(r, c, t)
	}); err != nil {
		abi.LogWarn("phantom-token: cannot record the emptying of cache table " + tables.ID(c.Number) + ": " + err.Error())
	}
}

// releaseTable takes the plugin out of its table's holders: Envoy is done
// with it. The table is emptied by the plugins that remain, or taken over by
// the next configuration.
func (p *pluginContext) releaseTable() {
	if p.tableNumber < 0 {
		return
	}
	n := uint32(p.tableNumber)
	if err := updateRegistry(func(r tables.Registry) (tables.Registry, bool) {
		return tables.Release(r, n, p.holder)
	}); err != nil {
		abi.LogWarn("phantom-token: cannot release cache table " + p.table + " (its lease runs out instead): " + err.Error())
		return
	}
	abi.LogInfo("phantom-token: released cache table " + p.table)
}

// emptySets sets every set in [from, to) of table id to an empty value, which
// frees what it held. Envoy takes a write with CAS 0 unconditionally; a host
// that refuses it (the emulator) gets a compare-and-swap write.
func (p *pluginContext) emptySets(id string, from, to uint32) {
	failed := 0
	var last error
	for n := from; n < to; n++ {
		key := cache.SetKey(id, uint64(n))
		err := setShared(key, nil, 0)
		if errors.Is(err, types.ErrorStatusCasMismatch) {
			var cas uint32
			if _, cas, err = getShared(key); err == nil {
				err = setShared(key, nil, cas)
			}
		}
		if err != nil {
			failed, last = failed+1, err
		}
	}
	if failed > 0 {
		abi.LogWarn("phantom-token: cannot empty " + strconv.Itoa(failed) + " sets of cache table " + id + " (" + last.Error() + ")")
	}
}
