// Tests of the V8 profile's host and report: node --test measure/v8prof/

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Host, encodePairs } from './host.mjs';
import { readable, groupOf } from './report.mjs';

test('Go names of the name section read as Go', () => {
  for (const [sym, want] of [
    ['github.com_phantom_token_envoy_phantom_token_internal_cache.__Local_.Get', 'internal/cache.(*Local).Get'],
    ['github.com_phantom_token_envoy_phantom_token_filter_abi.onRequestHeaders', 'filter/abi.onRequestHeaders'],
    ['main.__httpContext_.admit', 'main.(*httpContext).admit'],
    ['main.wallClock', 'main.wallClock'],
    ['internal_runtime_maps.__Map_.getWithKeySmall', 'internal/runtime/maps.(*Map).getWithKeySmall'],
    ['hash_maphash.__Hash_.WriteString', 'hash/maphash.(*Hash).WriteString'],
    ['time.Time.Before', 'time.Time.Before'],
    ['github.com_proxy_wasm_proxy_wasm_go_sdk_proxywasm_internal.proxyOnLog', 'sdk/proxywasm/internal.proxyOnLog'],
    ['github.com_tidwall_gjson.Get', 'github.com/tidwall/gjson.Get'],
    ['proxy_on_request_headers', 'proxy_on_request_headers'],
    ['wasm-to-js:iiiii:i', 'wasm-to-js:iiiii:i'],
  ]) {
    assert.equal(readable(sym), want, sym);
  }
});

test('each frame is in its group', () => {
  const wasm = (functionName) => ({ functionName, url: 'wasm://wasm/00f2efaa' });
  for (const [frame, want] of [
    [wasm('main.__httpContext_.admit'), 'project'],
    [wasm('github.com_phantom_token_envoy_phantom_token_internal_bearer.isB64Token'), 'project'],
    [wasm('runtime.memhashFallback'), 'runtime'],
    [wasm('internal_runtime_maps.__Map_.Delete'), 'runtime'],
    [wasm('sync.__Mutex_.Lock'), 'runtime'],
    [wasm('proxy_on_request_headers'), 'runtime'],
    [wasm('memeqbody'), 'runtime'],
    [wasm('hash_maphash.rthash'), 'std'],
    [wasm('strings.EqualFold'), 'std'],
    [wasm('github.com_proxy_wasm_proxy_wasm_go_sdk_proxywasm_internal.proxyOnLog'), 'sdk'],
    [wasm('github.com_tidwall_gjson.Get'), 'thirdParty'],
    [wasm('js-to-wasm:i:'), 'wrappers'],
    [{ functionName: 'give', url: 'file:///x/measure/v8prof/host.mjs' }, 'host'],
    [{ functionName: 'drive', url: 'file:///x/measure/v8prof/hit.mjs' }, 'driver'],
    [{ functionName: 'clock_time_get', url: '' }, 'node'],
    [{ functionName: 'slice', url: 'node:buffer' }, 'node'],
    [{ functionName: '(garbage collector)', url: '' }, 'v8'],
    [{ functionName: '(program)', url: '' }, 'v8'],
  ]) {
    assert.equal(groupOf(frame), want, frame.functionName);
  }
});

test('a header map is serialised as the ABI says', () => {
  const b = encodePairs([[':path', '/'], ['a', '']]);
  const want = Buffer.concat([
    Buffer.from([2, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]),
    Buffer.from(':path\0/\0a\0\0', 'latin1'),
  ]);
  assert.deepEqual(b, want);
});

// A module made by hand: it imports env.proxy_unknown_thing and calls it
// from proxy_on_request_headers.
function moduleCallingUnknownImport() {
  const vec = (items) => [items.length, ...items.flat()];
  const name = (s) => vec([...Buffer.from(s)]);
  const section = (id, body) => [id, body.length, ...body];
  const i32 = 0x7f;
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([
      [0x60, 2, i32, i32, 1, i32], // 0: the import
      [0x60, 1, i32, 1, i32], // 1: proxy_on_memory_allocate
      [0x60, 3, i32, i32, i32, 1, i32], // 2: proxy_on_request_headers
      [0x60, 0, 0], // 3: _initialize
    ])),
    ...section(2, vec([[...name('env'), ...name('proxy_unknown_thing'), 0x00, 0]])),
    ...section(3, vec([[1], [2], [3]])),
    ...section(5, vec([[0x00, 1]])),
    ...section(7, vec([
      [...name('memory'), 0x02, 0],
      [...name('proxy_on_memory_allocate'), 0x00, 1],
      [...name('proxy_on_request_headers'), 0x00, 2],
      [...name('_initialize'), 0x00, 3],
    ])),
    ...section(10, vec([
      [5, 0, 0x41, 0x80, 0x08, 0x0b], // i32.const 1024
      [8, 0, 0x41, 0, 0x41, 0, 0x10, 0, 0x0b], // call 0 (0, 0)
      [2, 0, 0x0b],
    ])),
  ]);
}

test('an import the host does not implement throws with its name when called', () => {
  const host = new Host(moduleCallingUnknownImport(), { configuration: '{}', token: 't', jwt: 'j', shared: [] });
  host.start();
  assert.throws(() => host.request(2), /env\.proxy_unknown_thing/);
});

// cold.mjs on the compiled module (make unit builds it first): it times
// each module's hits, and stops at a request that is not what was expected.
test('cold.mjs times hits and checks each', { timeout: 180000 }, () => {
  const script = fileURLToPath(new URL('./cold.mjs', import.meta.url));
  const wasm = fileURLToPath(new URL('../../build/phantom_token.wasm', import.meta.url));
  const run = (...modules) =>
    spawnSync(process.execPath, [script, '--n', '20', '--warmup', '5', '--evict', '64', ...modules], { encoding: 'utf8' });
  const ok = run(`a=${wasm}`, `b=${wasm}:jwt`);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /^a +\d+ +\d+ *$/m);
  assert.match(ok.stdout, /^b +\d+ +\d+ +-?\d+$/m);
  const wrong = run(`a=${wasm}:unchanged`);
  assert.notEqual(wrong.status, 0);
  assert.match(wrong.stderr, /a: request \d+: not let through with the expected Authorization/);
});
