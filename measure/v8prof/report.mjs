// Command report.mjs reads V8 CPU profiles (.cpuprofile: hit.mjs --profile,
// or node --cpu-prof) of a proxy-wasm module under the JavaScript host and
// prints, for each: the self time of the functions that took most, with the
// Go names of the module's functions made readable; the self time by group
// (this project's Go code, the Go runtime, the rest of Go's standard library,
// the SDK, other Go modules, V8's wrappers between JavaScript and wasm, the
// JavaScript host, node:wasi and Node's built-ins, V8's GC and the rest); and
// the inclusive time of each entry into the module (proxy_on_*), split into
// the module's own code, the host calls it made (JavaScript and node:wasi)
// and the entries nested in it (proxy_on_memory_allocate).
//
// Times per request come from the profile's v8prof field (hit.mjs writes the
// number of requests and the wall time per request without the profiler):
// a function's share of the profiled samples times that wall time.
//
// With --under F (a name as the report prints it, e.g.
// "internal/cache.(*Local).Key"; repeatable) it also splits F's inclusive
// time by the functions F calls.
//
//	node report.mjs [--top 40] [--under FUNCTION]... FILE.cpuprofile...

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

// Groups, in the order they print.
export const groups = {
  project: 'this project (main.*, phantom-token/…)',
  runtime: 'Go runtime (runtime, internal/…, sync, export glue)',
  std: 'other Go standard library',
  sdk: 'proxy-wasm Go SDK',
  thirdParty: 'other Go modules (gjson…)',
  wrappers: 'V8 wrappers between JS and wasm',
  host: 'JS host (host.mjs)',
  node: 'node:wasi and Node built-ins',
  driver: 'JS driver (hit.mjs)',
  v8: 'V8: GC, (program), idle',
};

// goGroups are the groups of the module's own (Go) code.
const goGroups = new Set(['project', 'runtime', 'std', 'sdk', 'thirdParty']);

const projectPrefix = 'github.com_phantom_token_envoy_phantom_token_';
const sdkPrefix = 'github.com_proxy_wasm_proxy_wasm_go_sdk_';

// goPackage is the package part of a Go symbol as the Go linker writes it
// in a wasm name section ('/', '-', '(', '*', ')' become '_'): up to the
// first dot that does not continue a domain name ("github.com_…").
export function goPackage(sym) {
  let from = 0;
  for (;;) {
    const dot = sym.indexOf('.', from);
    if (dot < 0) return sym;
    if (!/^(com|org|io|net|in|dev)_/.test(sym.slice(dot + 1))) return sym.slice(0, dot);
    from = dot + 1;
  }
}

// readable turns a Go symbol of the name section back into something like
// Go's own: "github.com_phantom_token_envoy_phantom_token_internal_cache.__Local_.Get"
// is "internal/cache.(*Local).Get". Package paths get '/' back for every '_'
// (exact for the standard library; a '-' or '_' inside a module path reads as
// '/'); pointer receivers get "(*T)" back.
export function readable(sym) {
  const pkg = goPackage(sym);
  if (pkg === sym || sym.startsWith('type_.') || sym.startsWith('wasm-to-js') || sym.startsWith('js-to-wasm')) return sym;
  let rest = sym.slice(pkg.length);
  rest = rest.replace(/^\.__([A-Za-z0-9]+(?:_[A-Za-z0-9]+)*?)_\./, '.(*$1).');
  let path;
  if (pkg.startsWith(projectPrefix)) path = pkg.slice(projectPrefix.length).replaceAll('_', '/');
  else if (pkg.startsWith(sdkPrefix)) path = 'sdk/' + pkg.slice(sdkPrefix.length).replaceAll('_', '/');
  else path = pkg.replaceAll('_', '/');
  return path + rest;
}

// groupOf is the group of a profile's call frame.
export function groupOf(frame) {
  const { functionName: name, url } = frame;
  if (url.startsWith('wasm://')) {
    if (name.startsWith('js-to-wasm') || name.startsWith('wasm-to-js')) return 'wrappers';
    if (name.startsWith('main.') || name.includes('phantom_token')) return 'project';
    if (name.startsWith(sdkPrefix)) return 'sdk';
    const pkg = goPackage(name);
    if (pkg === name) return 'runtime'; // no package: the linker's own (export glue, memeqbody, gcWriteBarrier…)
    if (/^(runtime|internal_|sync$|sync_|type_|go_|weak|unique|iter$)/.test(pkg) || pkg === 'sync') return 'runtime';
    if (pkg.includes('.')) return 'thirdParty';
    return 'std';
  }
  if (url.endsWith('/host.mjs')) return 'host';
  if (url.endsWith('/hit.mjs')) return 'driver';
  if (name.startsWith('(') && url === '') return 'v8';
  return 'node';
}

// isEntry says whether a frame is one of the module's exports called by the
// host: the Go linker names each export's wrapper after the export.
const isEntry = (frame) => frame.url.startsWith('wasm://') && frame.functionName.startsWith('proxy_on_');

// analyse sums a profile's samples by function, group and entry.
export function analyse(profile) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n);
  const count = new Map(); // node id -> samples
  for (const id of profile.samples) count.set(id, (count.get(id) ?? 0) + 1);
  const total = profile.samples.length;

  const self = new Map(); // readable name -> {group, n, callers: name -> n}
  const inclusive = new Map(); // readable name -> {group, n}
  const byGroup = new Map(Object.keys(groups).map((g) => [g, 0]));
  // entries: export -> {n: inclusive, own: its module code, host: host
  // calls (JS, node:wasi, wrappers), nested: other entries inside it}
  const entries = new Map();
  for (const [id, n] of count) {
    const node = nodes.get(id);
    const f = node.callFrame;
    const g = groupOf(f);
    const name = nameOf(f);
    const s = self.get(name) ?? { group: g, n: 0, callers: new Map() };
    s.n += n;
    self.set(name, s);
    byGroup.set(g, byGroup.get(g) + n);
    const caller = parent.get(id);
    if (caller) {
      const c = nameOf(caller.callFrame);
      s.callers.set(c, (s.callers.get(c) ?? 0) + n);
    }
    // Each function on the stack, once however often it recurses.
    const seen = new Set();
    for (let a = node; a; a = parent.get(a.id)) {
      const an = nameOf(a.callFrame);
      if (seen.has(an) || an === '(root)') continue;
      seen.add(an);
      const e = inclusive.get(an) ?? { group: groupOf(a.callFrame), n: 0 };
      e.n += n;
      inclusive.set(an, e);
    }

    // The entries on the sample's stack, innermost first: the sample counts
    // in full to each (inclusive); to the innermost as its own code or its
    // host calls, to the outer ones as nested.
    let inner = null;
    for (let a = node; a; a = parent.get(a.id)) {
      if (!isEntry(a.callFrame)) continue;
      const key = a.callFrame.functionName;
      const e = entries.get(key) ?? { n: 0, own: 0, host: 0, nested: 0, seen: -1 };
      if (e.seen !== id) {
        // a recursive entry counts once per sample
        e.n += n;
        if (inner === null) {
          if (g === 'host' || g === 'node' || g === 'wrappers' || g === 'v8') e.host += n;
          else e.own += n;
        } else if (inner !== key) {
          e.nested += n;
        }
        e.seen = id;
      }
      entries.set(key, e);
      inner ??= key;
    }
  }
  return { total, self, inclusive, byGroup, entries, meta: profile.v8prof, nodes, parent, count };
}

// under splits the inclusive time of a function by the functions it calls
// ("(self)": its own code), at its outermost call on each stack.
export function under(a, want) {
  const out = new Map();
  let total = 0;
  for (const [id, n] of a.count) {
    let outer = null;
    let child = null;
    let below = null;
    for (let node = a.nodes.get(id); node; child = node, node = a.parent.get(node.id)) {
      if (nameOf(node.callFrame) === want) {
        outer = node;
        below = child;
      }
    }
    if (!outer) continue;
    const k = below ? nameOf(below.callFrame) : '(self)';
    out.set(k, (out.get(k) ?? 0) + n);
    total += n;
  }
  return { total, parts: [...out].sort((x, y) => y[1] - x[1]) };
}

function nameOf(f) {
  if (f.url.startsWith('wasm://')) return readable(f.functionName);
  return `${f.functionName || '(anonymous)'} ${shortURL(f.url)}`.trim();
}

function shortURL(url) {
  if (url === '') return '';
  const i = url.lastIndexOf('/');
  return `(${i >= 0 && url.startsWith('file:') ? url.slice(i + 1) : url})`;
}

// print writes the report of one profile.
export function print(title, a, top, underNames = []) {
  const { total, meta } = a;
  const pct = (n) => `${((100 * n) / total).toFixed(1).padStart(5)}%`;
  // ns per request: the share of the samples times the wall time per
  // request measured without the profiler.
  const ns = meta?.wallNs ? (n) => `${((n / total) * meta.wallNs).toFixed(0).padStart(6)} ns` : () => '';
  console.log(`== ${title}`);
  if (meta) {
    console.log(`${meta.wasm}: ${meta.requests} requests, ${meta.wallNs.toFixed(0)} ns per request without the profiler` +
      `${meta.wallProfiledNs ? `, ${meta.wallProfiledNs.toFixed(0)} ns with it` : ''}; ${total} samples every ${meta.intervalUs} µs` +
      ' (ns per request below: share of the samples × the wall time without the profiler)');
  } else {
    console.log(`${total} samples (no v8prof field: a profile not written by hit.mjs, no times per request)`);
  }
  console.log(`\nself time by group`);
  for (const [g, n] of [...a.byGroup].sort((x, y) => y[1] - x[1])) {
    if (n > 0) console.log(`  ${groups[g].padEnd(56)} ${pct(n)} ${ns(n)}`);
  }
  const inModule = [...a.byGroup].filter(([g]) => goGroups.has(g)).reduce((t, [, n]) => t + n, 0);
  console.log(`  ${'(the module\'s Go code, all Go groups)'.padEnd(56)} ${pct(inModule)} ${ns(inModule)}`);
  console.log(`\nentries into the module, inclusive (own: the module's code; host: host calls, JS and node:wasi, and V8's wrappers; nested: other entries inside it)`);
  for (const [k, e] of [...a.entries].sort((x, y) => y[1].n - x[1].n)) {
    console.log(`  ${k.padEnd(30)} ${pct(e.n)} ${ns(e.n)}   own ${pct(e.own)} ${ns(e.own)}   host ${pct(e.host)}   nested ${pct(e.nested)}`);
  }
  console.log(`\nthe module's functions by inclusive time (with what they call, host calls included), top ${Math.ceil(top / 2)}`);
  const inc = [...a.inclusive].filter(([k, e]) => goGroups.has(e.group) && !k.startsWith('proxy_on_'));
  for (const [name, e] of inc.sort((x, y) => y[1].n - x[1].n).slice(0, Math.ceil(top / 2))) {
    console.log(`  ${pct(e.n)} ${ns(e.n)}  ${e.group.padEnd(10)} ${name}`);
  }
  console.log(`\nself time, top ${top} (← the caller most of that time came from, and its share)`);
  const rows = [...a.self].sort((x, y) => y[1].n - x[1].n).slice(0, top);
  for (const [name, s] of rows) {
    const [caller, cn] = [...s.callers].sort((x, y) => y[1] - x[1])[0] ?? ['', 0];
    const from = caller && caller !== '(root)' ? `  ← ${caller} ${((100 * cn) / s.n).toFixed(0)}%` : '';
    console.log(`  ${pct(s.n)} ${ns(s.n)}  ${s.group.padEnd(10)} ${name}${from}`);
  }
  for (const want of underNames) {
    const u = under(a, want);
    console.log(`\nunder ${want}: ${pct(u.total)} ${ns(u.total)} inclusive`);
    for (const [k, n] of u.parts) console.log(`  ${pct(n)} ${ns(n)}  ${k}`);
  }
  console.log('');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({
    options: { top: { type: 'string', default: '40' }, under: { type: 'string', multiple: true, default: [] } },
    allowPositionals: true,
  });
  if (positionals.length === 0) {
    console.error('usage: node report.mjs [--top 40] [--under FUNCTION]... FILE.cpuprofile...');
    process.exit(2);
  }
  for (const file of positionals) {
    print(file, analyse(JSON.parse(readFileSync(file, 'utf8'))), Number(values.top), values.under);
  }
}
