// A proxy-wasm ABI 0.2 host in JavaScript, for Node.js (V8): it runs a
// compiled Go wasip1 module (the filter, or the SDK no-op) as Envoy's V8 does,
// so that V8's own CPU profiler can say where a request's time goes inside the
// module. The semantics are measure/hostcount's (the Go/wazero host): the
// plugin configuration, shared data seeded so that the token is a cache hit,
// header maps, metrics, shared queues, ticks and logs. WASI is node:wasi
// (preview1).
//
// Every import of the module has an implementation here; one this host does
// not know throws with its name when the module calls it. Values returned to
// the module are copied into memory it allocates (proxy_on_memory_allocate),
// as Envoy does. Only the callbacks the module exports are called, as Envoy
// does: a request is context_create, request_headers, response_headers,
// response_body twice, done, log, delete, each skipped when not exported.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { WASI } from 'node:wasi';

// loadSeed reads the seed (the configuration, token, JWT and shared data a
// Host starts with) from path, or, without one, makes it with `go run
// ./v8prof/seed` in measure/.
export function loadSeed(path) {
  return JSON.parse(
    path
      ? readFileSync(path, 'utf8')
      : execFileSync('go', ['run', './v8prof/seed'], { cwd: fileURLToPath(new URL('..', import.meta.url)), encoding: 'utf8' }),
  );
}

// proxy-wasm ABI 0.2.1 values.
export const status = { ok: 0, notFound: 1, badArgument: 2, empty: 7, casMismatch: 8 };
export const action = { continue: 0, pause: 1 };
const mapType = { requestHeaders: 0, requestTrailers: 1, responseHeaders: 2, responseTrailers: 3 };
const bufferType = { vmConfiguration: 6, pluginConfiguration: 7 };
export const rootID = 1;

// logsKept bounds the logs the host keeps (the last ones, for an error).
const logsKept = 50;

// The request every run sends: a GET with no body, the client's opaque
// token in Authorization (5 headers, as hostcount's), and its answer.
function requestHeaders(token) {
  return [
    [':authority', 'api.example'],
    [':path', '/orders'],
    [':method', 'GET'],
    [':scheme', 'https'],
    ['authorization', 'Bearer ' + token],
  ];
}
const responseHeaders = [[':status', '200'], ['content-type', 'text/plain'], ['content-length', '12']];
const responseBodySize = 12;

// Host runs one module instance. calls counts host calls by import name
// ("env.proxy_…", "wasi_snapshot_preview1.…"); entries counts the entries
// into the module by export name (every callback, and every
// proxy_on_memory_allocate the host needs to return a value).
export class Host {
  // seed is measure/v8prof/seed's output: configuration, token, jwt, shared.
  constructor(code, seed) {
    this.module = new WebAssembly.Module(code);
    this.seed = seed;
    this.configuration = Buffer.from(seed.configuration, 'latin1');
    this.calls = new Map();
    this.entries = new Map();
    this.logs = [];
    this.shared = new Map(); // key -> {value: Uint8Array, cas}
    this.casNext = 1;
    this.queues = new Map(); // id -> {name, items: Uint8Array[]}
    this.queueIDs = new Map(); // name -> id
    this.queueReady = []; // queue ids enqueued to, for proxy_on_queue_ready
    this.metrics = []; // id - 1 -> {type, name, value: bigint}
    this.tickPeriod = 0;
    this.localResponses = 0;
    this.lastLocalResponse = 0;
    this.httpCalls = 0;
    // The header maps are arrays of [name, value], changed in place.
    this.requestTemplate = requestHeaders(seed.token);
    this.requestMap = [];
    this.responseMap = [];
    this.maps = new Map([[mapType.requestHeaders, this.requestMap], [mapType.responseHeaders, this.responseMap]]);
    this.buffer = null;
    this.u8 = null;
    this.dv = null;

    this.wasi = new WASI({ version: 'preview1', args: [], env: {}, returnOnExit: true });
    const imports = { env: this.env(), wasi_snapshot_preview1: this.counted('wasi_snapshot_preview1', this.wasi.getImportObject().wasi_snapshot_preview1) };
    for (const imp of WebAssembly.Module.imports(this.module)) {
      imports[imp.module] ??= {};
      if (imp.kind === 'function' && !(imp.name in imports[imp.module])) {
        const name = `${imp.module}.${imp.name}`;
        imports[imp.module][imp.name] = () => {
          throw new Error(`the module called ${name}, which this host does not implement`);
        };
      }
    }
    this.instance = new WebAssembly.Instance(this.module, imports);
    this.exports = this.instance.exports;
    this.memory = this.exports.memory;
    this.allocate = this.exported('proxy_on_memory_allocate');
    if (!this.allocate) throw new Error('the module does not export proxy_on_memory_allocate');
    // The request's callbacks the module exports, in Envoy's order.
    const create = this.exported('proxy_on_context_create');
    const headers = this.exported('proxy_on_request_headers');
    const respHeaders = this.exported('proxy_on_response_headers');
    const respBody = this.exported('proxy_on_response_body');
    const done = this.exported('proxy_on_done');
    const log = this.exported('proxy_on_log');
    const del = this.exported('proxy_on_delete');
    if (!headers) throw new Error('the module does not export proxy_on_request_headers');
    this.steps = [
      create && ((id) => create(id, rootID)),
      (id) => headers(id, this.requestMap.length, 1),
      respHeaders && ((id) => respHeaders(id, responseHeaders.length, 0)),
      respBody && ((id) => respBody(id, responseBodySize, 0)),
      respBody && ((id) => respBody(id, responseBodySize, 1)),
      done && ((id) => done(id)),
      log && ((id) => log(id)),
      del && ((id) => del(id)),
    ].filter(Boolean);
    this.headersStep = create ? 1 : 0;
  }

  // counted wraps each function of an import module with a call counter
  // (of its own arity: a rest parameter would allocate on every call).
  counted(module, fns) {
    const out = {};
    for (const [name, fn] of Object.entries(fns)) {
      out[name] = withCounter(fn, this.counter(this.calls, `${module}.${name}`));
    }
    return out;
  }

  // counter is the cell that counts key in m (a Map of cells).
  counter(m, key) {
    let c = m.get(key);
    if (!c) m.set(key, (c = { n: 0 }));
    return c;
  }

  // exported is an export of the module with its entry counter; undefined
  // when the module does not export it.
  exported(name) {
    const fn = this.exports[name];
    if (typeof fn !== 'function') return undefined;
    return withCounter(fn, this.counter(this.entries, name));
  }

  // callIf calls an export if the module has it (Envoy skips the others).
  callIf(name, ...args) {
    return this.exported(name)?.(...args);
  }

  // counts are the counters of m (calls or entries) as numbers by name.
  static counts(m) {
    return new Map([...m].map(([k, c]) => [k, c.n]));
  }

  // reset zeroes the counters.
  reset() {
    for (const c of this.calls.values()) c.n = 0;
    for (const c of this.entries.values()) c.n = 0;
  }

  // start initialises the module (WASI reactor: _initialize), creates the
  // plugin's root context, starts the VM and the plugin, then seeds the
  // shared data: the plugin's start empties the sets of the table it takes.
  start() {
    this.wasi.initialize(this.instance);
    this.callIf('proxy_on_context_create', rootID, 0);
    if (this.callIf('proxy_on_vm_start', rootID, 0) === 0) {
      throw new Error(`proxy_on_vm_start failed; logs:\n${this.lastLogs()}`);
    }
    if (this.callIf('proxy_on_configure', rootID, this.configuration.length) === 0) {
      throw new Error(`proxy_on_configure failed; logs:\n${this.lastLogs()}`);
    }
    for (const { key, value } of this.seed.shared) {
      this.shared.set(key, { value: Buffer.from(value, 'base64'), cas: this.casNext++ });
    }
  }

  // request sends one request through the module; it returns what
  // proxy_on_request_headers returned and the Authorization header the
  // upstream would get (undefined: none).
  request(id) {
    reset(this.requestMap, this.requestTemplate);
    reset(this.responseMap, responseHeaders);
    let result;
    for (let i = 0; i < this.steps.length; i++) {
      const r = this.steps[i](id);
      if (i === this.headersStep) result = r;
      if (this.queueReady.length > 0) this.deliverQueues();
    }
    let authorization;
    for (let i = 0; i < this.requestMap.length; i++) {
      if (this.requestMap[i][0] === 'authorization') authorization = this.requestMap[i][1];
    }
    return { action: result, authorization };
  }

  // tick is the plugin's timer, as Envoy fires it.
  tick() {
    this.callIf('proxy_on_tick', rootID);
    this.deliverQueues();
  }

  // deliverQueues wakes the root context for each queue enqueued to, after
  // the callback that enqueued (Envoy posts it to the worker's loop).
  deliverQueues() {
    while (this.queueReady.length > 0) {
      this.callIf('proxy_on_queue_ready', rootID, this.queueReady.shift());
    }
  }

  lastLogs() {
    return this.logs.slice(-5).join('\n');
  }

  // view refreshes the views of the memory, which growing replaces (and
  // detaches the old buffer, whose length becomes 0).
  view() {
    if (this.buffer === null || this.buffer.byteLength === 0) {
      this.buffer = this.memory.buffer;
      this.u8 = new Uint8Array(this.buffer);
      this.dv = new DataView(this.buffer);
    }
  }

  bytes(ptr, size) {
    this.view();
    return this.u8.subarray(ptr >>> 0, (ptr >>> 0) + (size >>> 0));
  }

  // str is the bytes at ptr as a latin1 string, decoded by Buffer's native
  // code from the memory's own view (no Buffer made; a string built char by
  // char would be a rope, flattened at each comparison).
  str(ptr, size) {
    this.view();
    ptr >>>= 0;
    return latin1Slice.call(this.u8, ptr, ptr + (size >>> 0));
  }

  u32(ptr, v) {
    this.view();
    this.dv.setUint32(ptr >>> 0, v >>> 0, true);
  }

  // give copies v (a Uint8Array or a latin1 string) into memory the module
  // allocates, and writes its address and size, as Envoy does (nothing is
  // allocated for an empty value).
  give(v, ptrPtr, sizePtr) {
    let ptr = 0;
    if (v.length > 0) {
      ptr = this.allocate(v.length) >>> 0;
      if (ptr === 0) throw new Error(`proxy_on_memory_allocate(${v.length}) returned 0`);
      this.view();
      if (typeof v === 'string') {
        latin1Write.call(this.u8, v, ptr, v.length);
      } else {
        this.u8.set(v, ptr);
      }
    }
    this.u32(ptrPtr, ptr);
    this.u32(sizePtr, v.length);
    return status.ok;
  }

  headerMap(type) {
    return this.maps.get(type);
  }

  // env is the proxy-wasm host functions, each counted by name.
  env() {
    const fns = {
      proxy_log: (level, ptr, size) => {
        this.logs.push(`[${level}] ${this.str(ptr, size)}`);
        if (this.logs.length > 2 * logsKept) this.logs.splice(0, this.logs.length - logsKept);
        return status.ok;
      },
      proxy_get_buffer_bytes: (type, start, maxSize, ptrPtr, sizePtr) => {
        if (type !== bufferType.pluginConfiguration) return status.notFound;
        const b = this.configuration;
        return this.give(b.subarray(Math.min(start, b.length), Math.min(start + maxSize, b.length)), ptrPtr, sizePtr);
      },
      proxy_get_header_map_value: (type, keyPtr, keySize, ptrPtr, sizePtr) => {
        const m = this.headerMap(type);
        if (!m) return status.badArgument;
        const key = this.str(keyPtr, keySize);
        // Envoy joins repeated headers with commas.
        let value;
        for (let i = 0; i < m.length; i++) {
          if (m[i][0] === key) value = value === undefined ? m[i][1] : value + ',' + m[i][1];
        }
        if (value === undefined) return status.notFound;
        return this.give(value, ptrPtr, sizePtr);
      },
      proxy_get_header_map_pairs: (type, ptrPtr, sizePtr) => {
        const m = this.headerMap(type);
        if (!m) return status.badArgument;
        return this.give(encodePairs(m), ptrPtr, sizePtr);
      },
      proxy_replace_header_map_value: (type, keyPtr, keySize, valuePtr, valueSize) => {
        const m = this.headerMap(type);
        if (!m) return status.badArgument;
        const key = this.str(keyPtr, keySize);
        const value = this.str(valuePtr, valueSize);
        let i = 0;
        while (i < m.length && m[i][0] !== key) i++;
        if (i === m.length) {
          m.push([key, value]);
        } else {
          m[i] = [key, value];
          for (let j = m.length - 1; j > i; j--) if (m[j][0] === key) m.splice(j, 1);
        }
        return status.ok;
      },
      proxy_remove_header_map_value: (type, keyPtr, keySize) => {
        const m = this.headerMap(type);
        if (!m) return status.badArgument;
        const key = this.str(keyPtr, keySize);
        for (let i = m.length - 1; i >= 0; i--) if (m[i][0] === key) m.splice(i, 1);
        return status.ok;
      },
      proxy_add_header_map_value: (type, keyPtr, keySize, valuePtr, valueSize) => {
        const m = this.headerMap(type);
        if (!m) return status.badArgument;
        m.push([this.str(keyPtr, keySize), this.str(valuePtr, valueSize)]);
        return status.ok;
      },
      proxy_send_local_response: (code) => {
        this.localResponses++;
        this.lastLocalResponse = code;
        return status.ok;
      },
      proxy_continue_stream: () => status.ok,
      proxy_set_effective_context: () => status.ok,
      // No cluster answers: the call is counted and never completes (a hit
      // makes none).
      proxy_http_call: (_cluster, _clusterSize, _headers, _headersSize, _body, _bodySize, _trailers, _trailersSize, _timeout, idPtr) => {
        this.httpCalls++;
        this.u32(idPtr, this.httpCalls);
        return status.ok;
      },
      // Envoy answers NotFound for a foreign function it does not have; this
      // host has none.
      proxy_call_foreign_function: () => status.notFound,
      proxy_get_shared_data: (keyPtr, keySize, ptrPtr, sizePtr, casPtr) => {
        const e = this.shared.get(this.str(keyPtr, keySize));
        if (!e) return status.notFound;
        this.u32(casPtr, e.cas);
        return this.give(e.value, ptrPtr, sizePtr);
      },
      proxy_set_shared_data: (keyPtr, keySize, valuePtr, valueSize, cas) => {
        const key = this.str(keyPtr, keySize);
        const e = this.shared.get(key);
        if (e && cas !== 0 && e.cas !== cas >>> 0) return status.casMismatch;
        this.shared.set(key, { value: this.bytes(valuePtr, valueSize).slice(), cas: this.casNext++ });
        return status.ok;
      },
      proxy_register_shared_queue: (namePtr, nameSize, idPtr) => {
        const name = this.str(namePtr, nameSize);
        let id = this.queueIDs.get(name);
        if (id === undefined) {
          id = this.queueIDs.size + 1;
          this.queueIDs.set(name, id);
          this.queues.set(id, { name, items: [] });
        }
        this.u32(idPtr, id);
        return status.ok;
      },
      proxy_enqueue_shared_queue: (id, ptr, size) => {
        const q = this.queues.get(id >>> 0);
        if (!q) return status.notFound;
        if (q.items.length >= 10_000) throw new Error(`shared queue ${q.name}: more than 10,000 items never dequeued`);
        q.items.push(this.bytes(ptr, size).slice());
        this.queueReady.push(id >>> 0);
        return status.ok;
      },
      proxy_dequeue_shared_queue: (id, ptrPtr, sizePtr) => {
        const q = this.queues.get(id >>> 0);
        if (!q) return status.notFound;
        if (q.items.length === 0) return status.empty;
        return this.give(q.items.shift(), ptrPtr, sizePtr);
      },
      proxy_set_tick_period_milliseconds: (ms) => {
        this.tickPeriod = ms >>> 0;
        return status.ok;
      },
      // No property is known (no route name, no certificate).
      proxy_get_property: () => status.notFound,
      proxy_define_metric: (type, namePtr, nameSize, idPtr) => {
        this.metrics.push({ type, name: this.str(namePtr, nameSize), value: 0n });
        this.u32(idPtr, this.metrics.length);
        return status.ok;
      },
      proxy_increment_metric: (id, delta) => {
        const m = this.metrics[(id >>> 0) - 1];
        if (!m) return status.notFound;
        m.value += BigInt(delta);
        return status.ok;
      },
      proxy_record_metric: (id, value) => {
        const m = this.metrics[(id >>> 0) - 1];
        if (!m) return status.notFound;
        m.value = BigInt(value);
        return status.ok;
      },
      proxy_get_metric: (id, valuePtr) => {
        const m = this.metrics[(id >>> 0) - 1];
        if (!m) return status.notFound;
        this.view();
        this.dv.setBigUint64(valuePtr >>> 0, BigInt.asUintN(64, m.value), true);
        return status.ok;
      },
    };
    return this.counted('env', fns);
  }
}

const { latin1Slice, latin1Write } = Buffer.prototype;

// reset makes the header map m the pairs of template again, in place (pairs
// are never changed, only replaced).
function reset(m, template) {
  for (let i = 0; i < template.length; i++) m[i] = template[i];
  if (m.length > template.length) m.length = template.length;
}

// withCounter is fn counting its calls in c.n, with fn's arity.
function withCounter(fn, c) {
  switch (fn.length) {
    case 0: return () => (c.n++, fn());
    case 1: return (a) => (c.n++, fn(a));
    case 2: return (a, b) => (c.n++, fn(a, b));
    case 3: return (a, b, d) => (c.n++, fn(a, b, d));
    case 4: return (a, b, d, e) => (c.n++, fn(a, b, d, e));
    case 5: return (a, b, d, e, f) => (c.n++, fn(a, b, d, e, f));
    case 6: return (a, b, d, e, f, g) => (c.n++, fn(a, b, d, e, f, g));
  }
  return (...args) => (c.n++, fn(...args));
}

// encodePairs is the ABI's serialised header map: the number of pairs, then
// each key's and value's size, then each key and value with a 0 after it
// (little-endian u32s).
export function encodePairs(pairs) {
  const enc = pairs.map(([k, v]) => [Buffer.from(k, 'latin1'), Buffer.from(v, 'latin1')]);
  let size = 4 + 8 * enc.length;
  for (const [k, v] of enc) size += k.length + v.length + 2;
  const b = Buffer.alloc(size);
  b.writeUInt32LE(enc.length, 0);
  let at = 4;
  for (const [k, v] of enc) {
    b.writeUInt32LE(k.length, at);
    b.writeUInt32LE(v.length, at + 4);
    at += 8;
  }
  for (const [k, v] of enc) {
    k.copy(b, at);
    at += k.length + 1;
    v.copy(b, at);
    at += v.length + 1;
  }
  return b;
}
