// celsius, in JavaScript: converts sensor readings from °F to °C, keeping
// the record's key and timestamp.
import { Operator, exportOperator } from "./weir.js";

class Celsius extends Operator {
  process(record, ctx) {
    const reading = record.json();
    reading.temperature = (reading.temperature - 32.0) * (5.0 / 9.0);
    ctx.emitJson(reading);
  }
}

export const { init, process, onTimer } = exportOperator(Celsius);
