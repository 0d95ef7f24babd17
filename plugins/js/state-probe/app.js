// state-probe, in JavaScript: the Rust and Python state-probes' commands
// (add, replace, untag, clear; timer and untimer), emitting the key's state
// as {"key","count","items","tags"} after each, and a fired timer as
// {"key","fired","event_time"}. Config {"large": true} keeps the list and
// the map in the host instead of prefetching them.
import { Operator, exportOperator } from "./weir.js";

class StateProbe extends Operator {
  open(ctx) {
    const large = (ctx.config ?? {}).large ?? false;
    this.count = ctx.valueState("count");
    this.items = ctx.listState("items", { prefetch: !large });
    this.tags = ctx.mapState("tags", { prefetch: !large });
  }

  process(record, ctx) {
    const cmd = record.json();
    switch (cmd.op) {
      case "add": {
        const count = (this.count.value() ?? 0) + 1;
        this.count.update(count);
        this.items.add(cmd.item);
        this.tags.put(cmd.item, count);
        break;
      }
      case "replace":
        this.items.update(cmd.items);
        break;
      case "untag":
        this.tags.remove(cmd.item);
        break;
      case "clear":
        this.count.clear();
        this.items.clear();
        this.tags.clear();
        break;
      case "timer":
      case "untimer": {
        const event = cmd.domain === "event";
        if (cmd.op === "timer") event ? ctx.registerEventTimer(cmd.at) : ctx.registerProcessingTimer(cmd.at);
        else event ? ctx.deleteEventTimer(cmd.at) : ctx.deleteProcessingTimer(cmd.at);
        return;
      }
      default:
        throw new Error(`unknown op ${JSON.stringify(cmd.op)}`);
    }
    const tags = Object.fromEntries(this.tags.entries().sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    ctx.emitJson({ key: record.keyString(), count: this.count.value(), items: this.items.get(), tags });
  }

  onTimer(timer, ctx) {
    ctx.emitJson({ key: timer.keyString(), fired: timer.timestamp, event_time: timer.eventTime });
  }
}

export const { init, process, onTimer } = exportOperator(StateProbe);
