// celsius, in JavaScript: converts sensor readings from °F to °C, keeping
// the record's key and timestamp. Config (optional): `output: json | binary`,
// the encoding of the readings it emits (binary: the Rust plugins' layout).
import { BinWriter, Operator, encoding, exportOperator } from "./weir.js";

class Celsius extends Operator {
  open(ctx) {
    this.binary = encoding(ctx.config, "output");
    this.out = new BinWriter();
  }

  process(record, ctx) {
    const reading = record.json();
    reading.temperature = (reading.temperature - 32.0) * (5.0 / 9.0);
    if (this.binary) ctx.emit(this.out.reset().string(reading.id).i64(reading.timestamp).f64(reading.temperature).bytes());
    else ctx.emitJson(reading);
  }
}

export const { init, process, onTimer } = exportOperator(Celsius);
