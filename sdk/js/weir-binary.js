// The Rust SDK's binary encoding (postcard), field by field: what a Rust
// plugin with `Bin` (or `output: binary`) reads and writes. A struct is its
// fields in order; a string or bytes field its length as a varint, then its
// bytes; an unsigned integer a varint (7 bits a byte, low first); a signed
// one a zigzag varint; a float its 8 little-endian bytes. Integers are
// JavaScript numbers, exact up to 2^53 (a larger one is a RangeError).
//
//   const out = new BinWriter().string(id).i64(timestamp).f64(t).bytes();
//   const r = new BinReader(record.value);
//   const id = r.string(), ts = r.i64(), t = r.f64();
//   r.finish();
//
// Per record, keep one of each in the operator and `reset()` it: a writer
// keeps its buffer, a reader its view of the batch.

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** Whether `config[field]` asks for the binary encoding ("binary"; "json" or nothing does not). */
export function encoding(config, field) {
  const value = (config ?? {})[field] ?? "json";
  if (value !== "json" && value !== "binary") throw new RangeError(`${field} must be json or binary, got ${JSON.stringify(value)}`);
  return value === "binary";
}

export class BinWriter {
  constructor() { this.buf = new Uint8Array(64); this.view = new DataView(this.buf.buffer); this.len = 0; }
  /** Empties it for the next value (keeping its buffer). */
  reset() { this.len = 0; return this; }
  room(n) {
    if (this.len + n <= this.buf.length) return;
    const grown = new Uint8Array(Math.max(2 * this.buf.length, this.len + n));
    grown.set(this.buf.subarray(0, this.len));
    this.buf = grown;
    this.view = new DataView(grown.buffer);
  }
  /** A string (as UTF-8) or bytes field. */
  string(s) {
    const b = typeof s === "string" ? utf8.encode(s) : s;
    this.u64(b.length);
    this.room(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }
  u64(v) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`not an unsigned safe integer: ${v}`);
    return this.varint(v);
  }
  i64(v) {
    if (!Number.isSafeInteger(v)) throw new RangeError(`not a safe integer: ${v}`);
    // A zigzag of 2^52 or more is past what a number holds exactly.
    if (Math.abs(v) < 2 ** 52) return this.varint(v >= 0 ? 2 * v : -2 * v - 1);
    const b = BigInt(v);
    return this.varint(b >= 0n ? 2n * b : -2n * b - 1n);
  }
  varint(v) {
    this.room(10);
    if (typeof v === "bigint") {
      for (; v >= 0x80n; v >>= 7n) this.buf[this.len++] = Number(v & 0x7fn) | 0x80;
      this.buf[this.len++] = Number(v);
      return this;
    }
    while (v >= 0x80) {
      this.buf[this.len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.len++] = v;
    return this;
  }
  f64(v) {
    this.room(8);
    this.view.setFloat64(this.len, v, true);
    this.len += 8;
    return this;
  }
  bytes() { return this.buf.slice(0, this.len); }
}

const ENDS_INSIDE = "invalid binary value: it ends inside a field";

export class BinReader {
  constructor(bytes) { this.view = null; this.reset(bytes); }
  /** Reads `bytes` from their start. */
  reset(bytes) {
    this.b = bytes;
    this.at = 0;
    // One view of the whole buffer: the values of a batch share one.
    if (this.view === null || this.view.buffer !== bytes.buffer) this.view = new DataView(bytes.buffer);
    return this;
  }
  // A varint as a number while it has up to 7 bytes (49 bits), else as a BigInt.
  varint() {
    let v = 0, scale = 1, big = null;
    for (let i = 0; ; i++) {
      if (this.at >= this.b.length || i >= 10) throw new RangeError(ENDS_INSIDE);
      const c = this.b[this.at++];
      if (i === 7) big = BigInt(v);
      if (big === null) v += (c & 0x7f) * scale;
      else big |= BigInt(c & 0x7f) << BigInt(7 * i);
      if (c < 0x80) return big ?? v;
      scale *= 0x80;
    }
  }
  u64() {
    const v = this.varint();
    if (typeof v === "bigint" && v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`integer past 2^53: ${v}`);
    return Number(v);
  }
  i64() {
    const u = this.varint();
    if (typeof u === "number") return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
    const v = u & 1n ? -((u + 1n) >> 1n) : u >> 1n;
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw new RangeError(`integer past 2^53: ${v}`);
    return Number(v);
  }
  bytes() {
    const n = this.u64();
    if (n > this.b.length - this.at) throw new RangeError(ENDS_INSIDE);
    const out = this.b.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  string() { return fromUtf8.decode(this.bytes()); }
  f64() {
    if (this.b.length - this.at < 8) throw new RangeError(ENDS_INSIDE);
    const v = this.view.getFloat64(this.b.byteOffset + this.at, true);
    this.at += 8;
    return v;
  }
  finish() {
    if (this.at !== this.b.length) throw new RangeError(`invalid binary value: ${this.b.length - this.at} bytes left over`);
  }
}
