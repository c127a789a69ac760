// Command cold.mjs times cache hits of several compiled modules with cold
// CPU caches, the way Envoy runs them: before each request a walk over
// --evict KiB of memory (one write per 64-byte line) pushes the module's
// code and data out of the caches, as Envoy's own work between two requests
// of a worker does. In a tight loop (hit.mjs) the filter's Go code costs a
// few hundred ns per hit; in Envoy, several µs: what a hit costs there
// follows the code and data it touches more than the instructions it runs.
//
// The modules take turns, one request each (each after its own walk), in
// one process, so that the machine's drift falls on all alike; only the
// requests are timed, one by one. It prints, per module, the median and the
// mean of 10% to 90% of its times, and the median of its same-turn
// differences to the first module.
//
//	node cold.mjs [--seed seed.json] [--evict 4096] [--n 20000] [--warmup 20000] \
//	              LABEL=PATH[:jwt|unchanged|any] ...
//
// PATH's expectation is as hit.mjs's --expect (default jwt): what the
// upstream's Authorization must be after each request.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Host, loadSeed, rootID } from './host.mjs';

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    seed: { type: 'string' },
    evict: { type: 'string', default: '4096' },
    n: { type: 'string', default: '20000' },
    warmup: { type: 'string', default: '20000' },
  },
});

function count(name) {
  const v = Number(opts[name]);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name}: not a positive count: ${opts[name]}`);
  return v;
}
const n = count('n');
const warmup = count('warmup');
const walk = new Uint8Array(count('evict') << 10);
if (positionals.length === 0) throw new Error('name at least one module: LABEL=PATH[:expect]');

const seed = loadSeed(opts.seed);

const modules = positionals.map((arg) => {
  const m = /^([^=]+)=(.+?)(?::(jwt|unchanged|any))?$/.exec(arg);
  if (!m) throw new Error(`not LABEL=PATH[:jwt|unchanged|any]: ${arg}`);
  const [, label, path, expect = 'jwt'] = m;
  const host = new Host(readFileSync(path), seed);
  host.start();
  const want = expect === 'jwt' ? 'Bearer ' + seed.jwt : expect === 'unchanged' ? 'Bearer ' + seed.token : undefined;
  return { label, path, host, want, id: rootID + 1, times: new Float64Array(n) };
});

// one sends a request to m and returns its time in ns, checking it; the
// message never holds the header's value (a token or a JWT).
function one(m) {
  const t = process.hrtime.bigint();
  const r = m.host.request(m.id);
  const ns = Number(process.hrtime.bigint() - t);
  if (r.action !== 0 || (m.want !== undefined && r.authorization !== m.want)) {
    throw new Error(`${m.label}: request ${m.id}: not let through with the expected Authorization (local responses: ${m.host.localResponses}); last logs:\n${m.host.lastLogs()}`);
  }
  if (++m.id % 10000 === 0) m.host.tick();
  return ns;
}

for (const m of modules) for (let i = 0; i < warmup; i++) one(m);
for (let i = 0; i < n; i++) {
  for (let k = 0; k < modules.length; k++) {
    const m = modules[(i + k) % modules.length];
    for (let j = 0; j < walk.length; j += 64) walk[j]++;
    m.times[i] = one(m);
  }
}

const median = (a) => {
  const s = Float64Array.from(a).sort();
  return s[s.length >> 1];
};
const trimmedMean = (a) => {
  const s = Float64Array.from(a).sort();
  const part = s.subarray(Math.floor(s.length * 0.1), Math.ceil(s.length * 0.9));
  return part.reduce((x, y) => x + y, 0) / part.length;
};
console.log(`${n} cache hits per module after ${warmup} not counted, each after a walk over ${walk.length >> 10} KiB; ns per request (timer included)`);
console.log(`${'module'.padEnd(16)} ${'median'.padStart(8)} ${'mean 10-90%'.padStart(12)} ${'Δ first, median'.padStart(16)}`);
const first = modules[0];
for (const m of modules) {
  const d = m.times.map((t, i) => t - first.times[i]);
  console.log(`${m.label.padEnd(16)} ${median(m.times).toFixed(0).padStart(8)} ${trimmedMean(m.times).toFixed(0).padStart(12)} ${(m === first ? '' : median(d).toFixed(0)).padStart(16)}`);
}
