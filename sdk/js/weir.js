// Write Weir stream operators in JavaScript (built with componentize-js).
//
// An operator is a class with `process(record, ctx)` per record (and
// `onTimer(timer, ctx)` per fired timer); state handles declared in
// `open(ctx)` read and write the current key's state. The SDK unpacks each
// batch the host sends once, calls the operator per record and packs what
// it produced into one answer: one host call per batch.
//
//   import { Operator, exportOperator } from "./weir.js";
//   class Counter extends Operator {
//     open(ctx) { this.count = ctx.valueState("count"); }
//     process(record, ctx) {
//       const n = (this.count.value() ?? 0) + 1;
//       this.count.update(n);
//       ctx.emitJson({ key: record.keyString(), count: n });
//     }
//   }
//   export const { init, process, onTimer } = exportOperator(Counter);
//
// State values are JSON by default (`codec: BYTES` keeps bytes); the
// method names follow Flink's state API. `BinWriter` and `BinReader`
// (weir-binary.js) read and write records in the Rust SDK's binary
// encoding, to exchange them with Rust plugins without JSON.

import * as hostState from "weir:plugin/state@0.1.0";
import { BYTES, JSON_CODEC, NO_KEY, Record, decoder, encoder, itemsOf, message, packItems, s64 } from "./weir-common.js";

export { BYTES, JSON_CODEC, Record };
export { BinReader, BinWriter, encoding } from "./weir-binary.js";

/** A timer that fired: `key`, `timestamp` (ms), `eventTime` (else processing time). */
export class Timer {
  constructor(key, timestamp, eventTime) {
    this.key = key;
    this.timestamp = timestamp;
    this.eventTime = eventTime;
  }
  keyString() { return decoder.decode(this.key); }
}

/** Extend it; `exportOperator(YourOperator)` gives the component's exports. */
export class Operator {
  open(ctx) {}
  process(record, ctx) { throw new Error("an operator must define process(record, ctx)"); }
  onTimer(timer, ctx) {}
}

let current = null;
function call() {
  if (current === null) throw new Error("state is read and written only inside process() and onTimer()");
  return current;
}

class StateHandle {
  constructor(index, codec, prefetch) {
    this.index = index;
    this.codec = codec;
    this.prefetch = prefetch;
  }
  slot() { return call().slot(this.index); }
}

/** One value per key. */
export class ValueState extends StateHandle {
  value() {
    if (!this.prefetch) {
      const got = hostState.get(this.index, call().hostKey());
      return got === undefined || got === null ? null : this.codec.decode(got.val);
    }
    const s = this.slot();
    if (s.decoded === undefined) s.decoded = s.raw === null ? null : this.codec.decode(s.raw);
    return s.decoded;
  }
  update(v) {
    if (!this.prefetch) {
      if (v === null || v === undefined) hostState.clear(this.index, call().hostKey());
      else hostState.set(this.index, call().hostKey(), this.codec.encode(v));
      return;
    }
    const s = this.slot();
    s.decoded = v === undefined ? null : v;
    s.dirty = true;
  }
  clear() { this.update(null); }
}

/** A list of values per key. */
export class ListState extends StateHandle {
  get() {
    if (!this.prefetch) {
      const got = hostState.get(this.index, call().hostKey());
      return got === undefined || got === null ? [] : got.val.map((b) => this.codec.decode(b));
    }
    const s = this.slot();
    return s.raw.map((b) => this.codec.decode(b)).concat(s.added);
  }
  add(v) {
    if (!this.prefetch) return hostState.append(this.index, call().hostKey(), [this.codec.encode(v)]);
    this.slot().added.push(v);
  }
  update(values) {
    if (!this.prefetch) {
      const key = call().hostKey();
      hostState.clear(this.index, key);
      if (values.length) hostState.append(this.index, key, values.map((v) => this.codec.encode(v)));
      return;
    }
    const s = this.slot();
    s.raw = [];
    s.added = [...values];
    s.replaced = true;
  }
  clear() { this.update([]); }
}

/** A map per key (map keys are JSON-encoded by default: `keyCodec`). */
export class MapState extends StateHandle {
  constructor(index, codec, prefetch, keyCodec) {
    super(index, codec, prefetch);
    this.keyCodec = keyCodec;
  }
  map() {
    const s = this.slot();
    if (s.decoded === undefined) {
      s.decoded = new Map(s.raw.map(([k, v]) => [this.keyCodec.decode(k), this.codec.decode(v)]));
    }
    return s.decoded;
  }
  get(k, fallback = undefined) {
    if (!this.prefetch) {
      const got = hostState.mapGet(this.index, call().hostKey(), this.keyCodec.encode(k));
      return got === undefined || got === null ? fallback : this.codec.decode(got);
    }
    const m = this.map();
    return m.has(k) ? m.get(k) : fallback;
  }
  put(k, v) {
    if (!this.prefetch) return hostState.mapPut(this.index, call().hostKey(), this.keyCodec.encode(k), this.codec.encode(v));
    this.map().set(k, v);
    this.slot().dirty = true;
  }
  contains(k) { return this.get(k, MISSING) !== MISSING; }
  remove(k) {
    if (!this.prefetch) return hostState.mapRemove(this.index, call().hostKey(), this.keyCodec.encode(k));
    if (this.map().delete(k)) this.slot().dirty = true;
  }
  /** Every entry as [key, value], in the order of their encoded keys. */
  entries() {
    if (!this.prefetch) {
      const out = [];
      let after;
      for (;;) {
        const page = hostState.mapRange(this.index, call().hostKey(), after, 1024);
        for (const [k, v] of page) out.push([this.keyCodec.decode(k), this.codec.decode(v)]);
        if (page.length < 1024) return out;
        after = page[page.length - 1][0];
      }
    }
    return [...this.map().entries()];
  }
  keys() { return this.entries().map(([k]) => k); }
  values() { return this.entries().map(([, v]) => v); }
  isEmpty() { return this.entries().length === 0; }
  clear() {
    if (!this.prefetch) return hostState.clear(this.index, call().hostKey());
    this.map().clear();
    this.slot().dirty = true;
  }
}
const MISSING = Symbol("missing");

/** What `open` gets: the node, its config and state declarations. */
export class InitContext {
  constructor(wit) {
    this.nodeId = wit.nodeId;
    this.subtaskIndex = wit.subtaskIndex;
    this.parallelism = wit.parallelism;
    this.attempt = wit.attempt;
    this.config = wit.config ? JSON.parse(wit.config) : null;
    this.states = [];
    this.handles = [];
  }
  declare(name, kind, prefetch, make) {
    if (this.states.some((s) => s.name === name)) throw new Error(`state ${JSON.stringify(name)} is declared twice`);
    this.states.push({ name, kind, prefetch });
    const handle = make(this.states.length - 1);
    this.handles.push(handle);
    return handle;
  }
  valueState(name, { codec = JSON_CODEC, prefetch = true } = {}) {
    return this.declare(name, "value", prefetch, (i) => new ValueState(i, codec, prefetch));
  }
  listState(name, { codec = JSON_CODEC, prefetch = true } = {}) {
    return this.declare(name, "list", prefetch, (i) => new ListState(i, codec, prefetch));
  }
  mapState(name, { codec = JSON_CODEC, keyCodec = JSON_CODEC, prefetch = true } = {}) {
    return this.declare(name, "map", prefetch, (i) => new MapState(i, codec, prefetch, keyCodec));
  }
}

/** Records being packed: keys and values in one buffer, four spans each.
 * Strings are encoded straight into the buffer. */
class BatchBuilder {
  constructor() { this.buf = new Uint8Array(4096); this.len = 0; this.spans = []; this.stamps = []; }
  // Appends a string or bytes, returning its length in bytes.
  put(v) {
    if (typeof v === "string") {
      // UTF-8 takes at most 3 bytes per UTF-16 unit
      if (this.buf.length - this.len < 3 * v.length) this.grow(3 * v.length);
      const written = encoder.encodeInto(v, this.buf.subarray(this.len)).written;
      this.len += written;
      return written;
    }
    if (this.buf.length - this.len < v.length) this.grow(v.length);
    this.buf.set(v, this.len);
    this.len += v.length;
    return v.length;
  }
  grow(n) {
    const grown = new Uint8Array(Math.max(2 * this.buf.length, this.len + n));
    grown.set(this.buf.subarray(0, this.len));
    this.buf = grown;
  }
  add(key, value, timestamp) {
    if (key === null || key === undefined) this.spans.push(0, NO_KEY, this.len, this.put(value));
    else {
      const at = this.len, kl = this.put(key);
      this.spans.push(at, kl, at + kl, this.put(value));
    }
    this.stamps.push(typeof timestamp === "bigint" ? timestamp : BigInt(timestamp));
  }
  finish() {
    return { data: this.buf.subarray(0, this.len), spans: Uint32Array.from(this.spans), timestamps: BigInt64Array.from(this.stamps) };
  }
}

/** One `process` or `on-timer` call: its keys' prefetched state and everything it produces. */
class Call {
  constructor(kinds, prefetched, time, keyOf) {
    this.kinds = kinds;
    this.keyOf = keyOf;
    this.watermark = s64(time.watermark);
    this.processingTime = s64(time.processingTime);
    this.out = new BatchBuilder();
    this.sides = new Map();
    this.timers = [];
    this.counters = new Map();
    this.sameKey = prefetched.sameKey;
    this.group = NO_KEY;
    this.key = null;
    this.slots = new Map();
    const items = itemsOf(prefetched.items);
    for (const e of prefetched.entries) {
      const group = e.key < this.sameKey.length ? this.sameKey[e.key] : NO_KEY;
      if (group === NO_KEY || e.state >= kinds.length) continue;
      const its = items.slice(e.firstItem, e.firstItem + e.itemCount);
      this.slots.set(group * kinds.length + e.state, this.newSlot(kinds[e.state], its));
    }
  }
  newSlot(kind, its) {
    if (kind === "value") return { raw: its.length ? its[0] : null, decoded: undefined, dirty: false };
    if (kind === "list") return { raw: its, added: [], replaced: false };
    const raw = [];
    for (let i = 0; i + 1 < its.length; i += 2) raw.push([its[i], its[i + 1]]);
    return { raw, decoded: undefined, dirty: false };
  }
  at(index, key) {
    this.key = key;
    this.group = index < this.sameKey.length ? this.sameKey[index] : NO_KEY;
  }
  hostKey() {
    if (this.key === null) throw new Error("keyed state needs a keyed input: give the node `key_by`");
    return this.key;
  }
  slot(state) {
    if (this.group === NO_KEY) throw new Error("keyed state needs a keyed input: give the node `key_by`");
    const at = this.group * this.kinds.length + state;
    let s = this.slots.get(at);
    if (s === undefined) { s = this.newSlot(this.kinds[state], []); this.slots.set(at, s); }
    return s;
  }
  finish(handles, errors) {
    const items = [];
    const updates = [];
    const item = (b) => { items.push(b); return items.length - 1; };
    const push = (state, key, kind, operands) => {
      const firstItem = items.length;
      operands.forEach(item);
      updates.push({ state, key, kind, firstItem, itemCount: items.length - firstItem });
    };
    const keys = new Map();
    const n = this.kinds.length;
    for (const [at, s] of this.slots) {
      const state = at % n, group = (at - state) / n, kind = this.kinds[state], h = handles[state];
      const changed = kind === "list" ? s.replaced || s.added.length > 0 : s.dirty;
      if (!changed) continue;
      if (!keys.has(group)) keys.set(group, item(this.keyOf(group)));
      const key = keys.get(group);
      if (kind === "value") {
        if (s.decoded === null) push(state, key, "clear", []);
        else push(state, key, "set", [h.codec.encode(s.decoded)]);
      } else if (kind === "list") {
        push(state, key, s.replaced ? "replace" : "append", s.added.map((v) => h.codec.encode(v)));
      } else {
        const entries = [...s.decoded.entries()].map(([k, v]) => [h.keyCodec.encode(k), h.codec.encode(v)]);
        entries.sort((a, b) => compareBytes(a[0], b[0]));
        push(state, key, "replace", entries.flat());
      }
    }
    return {
      outputs: this.out.finish(),
      sideOutputs: [...this.sides].map(([name, b]) => ({ name, records: b.finish() })),
      stateUpdates: { items: packItems(items), updates },
      timerUpdates: this.timers,
      counters: [...this.counters].map(([name, v]) => [name, BigInt(v)]),
      errors,
    };
  }
}

function compareBytes(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** What `process` and `onTimer` get: output, timers and time for the current key. */
export class Context {
  constructor(c) { this.c = c; this.key = null; this.timestamp = 0; this.raw = 0n; }
  get watermark() { return this.c.watermark; }
  get processingTime() { return this.c.processingTime; }
  // (The current timestamp goes out as the host's BigInt, unconverted.)
  emit(value, options) {
    if (options === undefined) this.c.out.add(this.key, value, this.raw);
    else this.c.out.add(options.key === undefined ? this.key : options.key, value, options.timestamp ?? this.raw);
  }
  emitJson(value, options) { this.emit(JSON.stringify(value), options); }
  emitTo(output, value, { key = this.key, timestamp = this.timestamp } = {}) {
    let b = this.c.sides.get(output);
    if (b === undefined) { b = new BatchBuilder(); this.c.sides.set(output, b); }
    b.add(key, value, timestamp);
  }
  timer(timestamp, domain, tag) {
    if (this.key === null) throw new Error("timers need a keyed input: give the node `key_by`");
    this.c.timers.push({ key: this.key, timestamp: BigInt(timestamp), domain, op: { tag } });
  }
  registerEventTimer(t) { this.timer(t, "event-time", "register"); }
  registerProcessingTimer(t) { this.timer(t, "processing-time", "register"); }
  deleteEventTimer(t) { this.timer(t, "event-time", "delete"); }
  deleteProcessingTimer(t) { this.timer(t, "processing-time", "delete"); }
  count(name, n = 1) { this.c.counters.set(name, (this.c.counters.get(name) ?? 0) + n); }
}

/** The `operator` world's exports (`init`, `process`, `onTimer`) running `OperatorClass`. */
export function exportOperator(OperatorClass) {
  let operator = null, handles = [], kinds = [];
  const fail = (e) => ({ message: message(e) });
  return {
    init(context) {
      const ctx = new InitContext(context);
      try {
        operator = new OperatorClass();
        operator.open(ctx);
      } catch (e) {
        throw fail(e);
      }
      kinds = ctx.states.map((s) => s.kind);
      handles = ctx.handles;
      return { states: ctx.states.map((s) => ({ name: s.name, kind: s.kind, prefetch: s.prefetch })) };
    },
    process(batch) {
      const { data, spans, timestamps } = batch.records;
      const keyOf = (i) => (spans[4 * i + 1] === NO_KEY ? null : data.subarray(spans[4 * i], spans[4 * i] + spans[4 * i + 1]));
      const c = new Call(kinds, batch.state, batch.time, keyOf);
      const ctx = new Context(c);
      const errors = [], sameKey = c.sameKey, grouped = sameKey.length, n = timestamps.length;
      current = c;
      try {
        for (let i = 0, s = 0; i < n; i++, s += 4) {
          const kl = spans[s + 1], vo = spans[s + 2];
          const key = kl === NO_KEY ? null : data.subarray(spans[s], spans[s] + kl);
          // A BigInt64Array's elements are signed already.
          const raw = timestamps[i], ts = Number(raw);
          // c.at(i, key), inlined on the per-record path (as the loop is:
          // onTimer's twin of it runs once per fired timer, not per record)
          c.key = ctx.key = key;
          c.group = i < grouped ? sameKey[i] : NO_KEY;
          ctx.timestamp = ts;
          ctx.raw = raw;
          try {
            operator.process(new Record(key, data.subarray(vo, vo + spans[s + 3]), ts), ctx);
          } catch (e) {
            errors.push({ index: i, message: message(e) });
          }
        }
      } finally {
        current = null;
      }
      return c.finish(handles, errors);
    },
    onTimer(timerBatch) {
      const fired = timerBatch.timers;
      const c = new Call(kinds, timerBatch.state, timerBatch.time, (i) => fired[i].key);
      const ctx = new Context(c);
      const errors = [];
      current = c;
      try {
        for (let i = 0; i < fired.length; i++) {
          const t = fired[i], ts = s64(t.timestamp);
          c.at(i, t.key);
          ctx.key = t.key;
          ctx.timestamp = ts;
          ctx.raw = BigInt(ts);
          try {
            operator.onTimer(new Timer(t.key, ts, t.domain === "event-time"), ctx);
          } catch (e) {
            errors.push({ index: i, message: message(e) });
          }
        }
      } finally {
        current = null;
      }
      return c.finish(handles, errors);
    },
  };
}
