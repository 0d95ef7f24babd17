// What every world's part of the Weir JavaScript SDK shares: records,
// codecs, packed items and error messages.

export const NO_KEY = 0xffffffff;
export const encoder = new TextEncoder();
export const decoder = new TextDecoder();
// An s64 from the host as a number. componentize-js 0.23 hands scalar s64s
// over as unsigned BigInts (the empty watermark, i64::MIN, came as 2^63):
// read them back as signed.
export const s64 = (v) => Number(BigInt.asIntN(64, BigInt(v)));

/** JSON values (the default). */
export const JSON_CODEC = {
  encode: (v) => encoder.encode(JSON.stringify(v)),
  decode: (b) => JSON.parse(decoder.decode(b)),
};
/** Raw bytes (Uint8Array), as they are. */
export const BYTES = { encode: (v) => v, decode: (b) => b.slice() };

/** One input record: `key` (Uint8Array or null), `value` (Uint8Array), `timestamp` (ms). */
export class Record {
  constructor(key, value, timestamp) {
    this.key = key;
    this.value = value;
    this.timestamp = timestamp;
  }
  json() { return JSON.parse(decoder.decode(this.value)); }
  text() { return decoder.decode(this.value); }
  keyString() { return this.key === null ? null : decoder.decode(this.key); }
}

/** Byte strings packed as `items`. */
export function packItems(values) {
  const spans = new Uint32Array(2 * values.length);
  let len = 0;
  values.forEach((v, i) => { spans[2 * i] = len; spans[2 * i + 1] = v.length; len += v.length; });
  const data = new Uint8Array(len);
  values.forEach((v, i) => data.set(v, spans[2 * i]));
  return { data, spans };
}

export function itemsOf(items) {
  const out = [];
  for (let k = 0; k < items.spans.length; k += 2) out.push(items.data.subarray(items.spans[k], items.spans[k] + items.spans[k + 1]));
  return out;
}

/** An exception as the host shows it: its name, message and the operator's line that threw. */
export function message(e) {
  if (!(e instanceof Error)) return `thrown: ${String(e)}`;
  // The operator's own frame (not this SDK's) when there is one.
  const frames = (e.stack || "").split("\n").filter((l) => l.includes(".js:"));
  const frame = frames.find((l) => !/weir(-\w+)?\.js:/.test(l)) ?? frames[0];
  const where = frame ? ` (at ${frame.trim().replace(/^.*\/([^/]+\.js:\d+):\d+.*$/, "$1").replace(/^.*@/, "")})` : "";
  return `${e.name}: ${e.message}${where}`;
}

