// Command hit.mjs sends cache hits through a compiled proxy-wasm module
// under Node.js's V8 (host.mjs), and with --profile DIR writes V8's CPU
// profile of the measured hits only (not the start nor the warm-up, while
// V8 compiles and tiers the module up) as DIR/<label>.cpuprofile, for
// report.mjs. It checks every request: proxy_on_request_headers returned
// Continue, and the upstream's Authorization is "Bearer <the JWT>" (with
// --expect unchanged, the client's, for the no-op), and stops at the first
// that is not. It prints the wall time per request (of N requests without
// the profiler; with --profile, N more are profiled) and the host calls and
// entries into the module per request.
//
//	node hit.mjs [--wasm ../../build/phantom_token.wasm] [--seed seed.json]
//	             [--warmup 20000] [--n 200000] [--expect jwt|unchanged|any]
//	             [--profile DIR] [--interval 50] [--label filter]
//
// --expect any checks only that each request was let through (for the
// bench's mini modules, which put a value of the JWT's length upstream).
// cold.mjs times hits with the CPU's caches cold, as in Envoy.
//
// Without --seed it runs `go run ./v8prof/seed` in measure/ for one.
// `node --cpu-prof` on this script profiles the whole run instead; V8's
// flags choose its compiler, e.g. `node --no-liftoff hit.mjs` (TurboFan only)
// or `node --liftoff --no-wasm-tier-up hit.mjs` (Liftoff only).

import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { Session } from 'node:inspector';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Host, loadSeed, rootID } from './host.mjs';

const { values: opts } = parseArgs({
  options: {
    wasm: { type: 'string', default: fileURLToPath(new URL('../../build/phantom_token.wasm', import.meta.url)) },
    seed: { type: 'string' },
    warmup: { type: 'string', default: '20000' },
    n: { type: 'string', default: '200000' },
    expect: { type: 'string', default: 'jwt' },
    'tick-every': { type: 'string', default: '10000' },
    profile: { type: 'string' },
    interval: { type: 'string', default: '50' },
    label: { type: 'string' },
  },
});

function count(name) {
  const v = Number(opts[name]);
  if (!Number.isInteger(v) || v < 0) throw new Error(`--${name}: not a count: ${opts[name]}`);
  return v;
}

const warmup = count('warmup');
const n = count('n');
const tickEvery = count('tick-every');
const interval = count('interval');
if (n === 0) throw new Error('--n: at least one request');
if (!['jwt', 'unchanged', 'any'].includes(opts.expect)) throw new Error(`--expect: jwt, unchanged or any, not ${opts.expect}`);
const label = opts.label ?? (opts.expect === 'jwt' ? 'filter' : 'noop');

const seed = loadSeed(opts.seed);
const want = opts.expect === 'jwt' ? 'Bearer ' + seed.jwt : 'Bearer ' + seed.token;

const host = new Host(readFileSync(opts.wasm), seed);
host.start();

let id = rootID + 1;
// drive sends k requests, checking each; the message never holds the
// header's value (a token or a JWT).
function drive(k) {
  for (let i = 0; i < k; i++, id++) {
    const r = host.request(id);
    if (r.action !== 0 || (opts.expect !== 'any' && r.authorization !== want)) {
      const what = r.action !== 0 ? `action ${r.action}, not Continue` : r.authorization === undefined ? 'no Authorization upstream' : `the upstream's Authorization is not ${opts.expect === 'jwt' ? 'the JWT' : "the client's"}`;
      throw new Error(`request ${id}: ${what} (local responses: ${host.localResponses}, last ${host.lastLocalResponse}; HTTP calls: ${host.httpCalls}); last logs:\n${host.lastLogs()}`);
    }
    if (tickEvery > 0 && id % tickEvery === 0) host.tick();
  }
}

drive(warmup);
// The wall time is of a run without the profiler (whose sampling slows the
// run), then the same number of requests again under it.
host.reset();
let t0 = process.hrtime.bigint();
drive(n);
const wall = Number(process.hrtime.bigint() - t0) / n;

let session;
const post = (method, params) => new Promise((resolve, reject) => session.post(method, params, (err, res) => (err ? reject(err) : resolve(res))));
if (opts.profile) {
  session = new Session();
  session.connect();
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval });
  await post('Profiler.start');
}
let wallProfiled;
if (opts.profile) {
  host.reset();
  t0 = process.hrtime.bigint();
  drive(n);
  wallProfiled = Number(process.hrtime.bigint() - t0) / n;
  const { profile } = await post('Profiler.stop');
  session.disconnect();
  mkdirSync(opts.profile, { recursive: true });
  const file = join(opts.profile, `${label}.cpuprofile`);
  // What report.mjs needs to give times per request (DevTools ignores it).
  profile.v8prof = { label, wasm: opts.wasm, requests: n, wallNs: wall, wallProfiledNs: wallProfiled, intervalUs: interval };
  writeFileSync(file, JSON.stringify(profile));
  console.log(`profile: ${file} (sampling every ${interval} µs)`);
}

const per = (x) => `${(x / n).toFixed(3)}${x > 0 && x < n / 100 ? ` (${x} in all)` : ''}`;
console.log(`${label}: ${opts.wasm}, ${n} requests after ${warmup} not counted, Node.js ${process.version} (V8 ${process.versions.v8})`);
console.log(`  wall per request: ${wall.toFixed(0)} ns${wallProfiled ? ` (${wallProfiled.toFixed(0)} ns while profiled)` : ''}, this host's JavaScript included`);
for (const [title, m] of [['host calls per request', Host.counts(host.calls)], ['entries into the module per request', Host.counts(host.entries)]]) {
  console.log(`  ${title}`);
  let total = 0;
  for (const k of [...m.keys()].filter((k) => m.get(k) > 0).sort()) {
    console.log(`    ${k.padEnd(46)} ${per(m.get(k))}`);
    total += m.get(k);
  }
  console.log(`    ${'total'.padEnd(46)} ${per(total)}`);
}
