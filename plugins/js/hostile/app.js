// hostile, in JavaScript: misbehaves on the record `"attack"` as config
// `{"mode": ...}` says, for the sandbox tests: `loop` never returns, `grow`
// allocates until memory runs out. Other records pass.
import { Operator, exportOperator } from "./weir.js";

class Hostile extends Operator {
  open(ctx) {
    this.mode = ctx.config.mode;
  }

  process(record, ctx) {
    if (record.text() === '"attack"') {
      if (this.mode === "loop") {
        for (let n = 0; ; n++) {}
      } else if (this.mode === "grow") {
        const hoard = [];
        for (;;) hoard.push(new Uint8Array(1 << 20).fill(1));
      }
    }
    ctx.emit(record.value);
  }
}

export const { init, process, onTimer } = exportOperator(Hostile);
