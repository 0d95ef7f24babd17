// Window functions for the host's windows in JavaScript: the `aggregator`
// world (build with `--world-name aggregator`). The host keeps one
// accumulator per window — any JSON value — and asks for the result when
// the window fires.
//
//   import { Aggregate, exportAggregate } from "./weir-aggregate.js";
//   class Count extends Aggregate {
//     createAccumulator() { return 0; }
//     add(n, record) { return n + 1; }
//     merge(a, b) { return a + b; }
//     result(n, window) { return { key: window.keyString(), end: window.end, count: n }; }
//   }
//   export const { init, createAccumulator, add, merge, getResult } = exportAggregate(Count);

import { JSON_CODEC, NO_KEY, Record, decoder, encoder, itemsOf, message, packItems, s64 } from "./weir-common.js";

export { Record };

/** A window of one key: `[start, end)` of event time (ms). */
export class Window {
  constructor(key, start, end) {
    this.key = key;
    this.start = start;
    this.end = end;
  }
  keyString() { return decoder.decode(this.key); }
}

/** Extend it; `exportAggregate(YourAggregate)` gives the component's exports. */
export class Aggregate {
  /** Called once per instance: `ctx.config` (the spec's, parsed). */
  open(ctx) {}
  createAccumulator() { return null; }
  /** Returns the accumulator with `record` added; throwing refuses the record (`on_error`). */
  add(acc, record) { throw new Error("an aggregate must define add(acc, record)"); }
  /** Returns the two merged (session windows that touch). */
  merge(acc, other) { throw new Error("session windows need merge(acc, other)"); }
  /** The window's output: a Uint8Array or string as is, anything else as JSON. */
  result(acc, window) { throw new Error("an aggregate must define result(acc, window)"); }
}

const output = (v) => (v instanceof Uint8Array ? v : encoder.encode(typeof v === "string" ? v : JSON.stringify(v)));

/** The `aggregator` world's exports running `AggregateClass`. */
export function exportAggregate(AggregateClass) {
  let aggregate = null;
  const fail = (e) => ({ message: message(e) });
  const guard = (f) => { try { return f(); } catch (e) { throw fail(e); } };
  return {
    init(context) {
      guard(() => {
        aggregate = new AggregateClass();
        aggregate.open({ config: context.config ? JSON.parse(context.config) : null, nodeId: context.nodeId,
                         subtaskIndex: context.subtaskIndex, parallelism: context.parallelism });
      });
    },
    createAccumulator() {
      return guard(() => JSON_CODEC.encode(aggregate.createAccumulator()));
    },
    add(input) {
      const accs = itemsOf(input.accumulators).map(JSON_CODEC.decode);
      const { data, spans, timestamps } = input.records;
      const additions = input.additions;
      const errors = [], failed = new Set();
      for (let n = 0; n < additions.length; n += 2) {
        const i = additions[n], j = additions[n + 1];
        if (failed.has(i)) continue;
        const kl = spans[4 * i + 1], vo = spans[4 * i + 2];
        const key = kl === NO_KEY ? null : data.subarray(spans[4 * i], spans[4 * i] + kl);
        try {
          accs[j] = aggregate.add(accs[j], new Record(key, data.subarray(vo, vo + spans[4 * i + 3]), s64(timestamps[i])));
        } catch (e) {
          failed.add(i);
          errors.push({ index: i, message: message(e) });
        }
      }
      return { accumulators: packItems(accs.map(JSON_CODEC.encode)), errors };
    },
    merge(accumulators, groupSizes) {
      return guard(() => {
        const accs = itemsOf(accumulators).map(JSON_CODEC.decode);
        const merged = [];
        let at = 0;
        for (const size of groupSizes) {
          const group = accs.slice(at, at + size);
          at += size;
          let acc = group.length ? group[0] : aggregate.createAccumulator();
          for (const other of group.slice(1)) acc = aggregate.merge(acc, other);
          merged.push(JSON_CODEC.encode(acc));
        }
        return packItems(merged);
      });
    },
    getResult(windows, accumulators) {
      return guard(() => {
        const accs = itemsOf(accumulators).map(JSON_CODEC.decode);
        return packItems(windows.map((w, k) => output(aggregate.result(accs[k], new Window(w.key, s64(w.start), s64(w.end))))));
      });
    },
  };
}
