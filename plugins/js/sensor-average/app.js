// sensor-average, in JavaScript: the average temperature per sensor over
// tumbling event-time windows (keyed map state: window end → [sum, count];
// an event-time timer at window_end - 1 emits and forgets the window).
// Late readings are dropped and counted (`late_records_dropped`).
// Config: `window_ms` (default 5000), `input: json | binary` (binary: the
// Rust plugins' layout, as celsius writes it with `output: binary`).
import { BinReader, Operator, encoding, exportOperator } from "./weir.js";

// Halves away from zero, as Rust's f64::round (Math.round goes up).
const roundHalfAway = (x) => Math.sign(x) * Math.round(Math.abs(x));

class SensorAverage extends Operator {
  open(ctx) {
    this.windowMs = (ctx.config ?? {}).window_ms ?? 5000;
    if (!(this.windowMs > 0)) throw new RangeError(`window_ms must be positive, got ${this.windowMs}`);
    this.windows = ctx.mapState("windows");
    this.binary = encoding(ctx.config, "input");
    this.reader = new BinReader(new Uint8Array(0));
  }

  process(record, ctx) {
    let ts, temperature;
    if (this.binary) {
      const r = this.reader.reset(record.value);
      r.bytes(); // the id: the record's key is the sensor
      ts = r.i64();
      temperature = r.f64();
      r.finish();
    } else ({ timestamp: ts, temperature } = record.json());
    const windowEnd = ts - (((ts % this.windowMs) + this.windowMs) % this.windowMs) + this.windowMs;
    if (windowEnd - 1 <= ctx.watermark) {
      ctx.count("late_records_dropped");
      return;
    }
    let total = this.windows.get(windowEnd);
    if (total === undefined) {
      ctx.registerEventTimer(windowEnd - 1);
      total = [0.0, 0];
    }
    total[0] += temperature;
    total[1] += 1;
    this.windows.put(windowEnd, total);
  }

  onTimer(timer, ctx) {
    const windowEnd = timer.timestamp + 1;
    const total = this.windows.get(windowEnd);
    if (total === undefined) return;
    this.windows.remove(windowEnd);
    ctx.emitJson({ id: timer.keyString(), window_end: windowEnd, avg_c: roundHalfAway((total[0] / total[1]) * 1e6) / 1e6,
                   count: total[1] });
  }
}

export const { init, process, onTimer } = exportOperator(SensorAverage);
