// pass-through, in JavaScript: emits every record unchanged (what the SDK
// costs per record, for `make bench`).
import { Operator, exportOperator } from "./weir.js";

class PassThrough extends Operator {
  process(record, ctx) { ctx.emit(record.value); }
}

export const { init, process, onTimer } = exportOperator(PassThrough);
