// average, in JavaScript: the average temperature of a sensor's readings per
// window, as an aggregate for the host's windows (the Rust average's output,
// avg_c rounded to 6 decimals, halves away from zero).
import { Aggregate, exportAggregate } from "./weir-aggregate.js";

const roundHalfAway = (x) => Math.sign(x) * Math.round(Math.abs(x));

class Average extends Aggregate {
  createAccumulator() {
    return [0.0, 0];
  }

  add(acc, record) {
    acc[0] += record.json().temperature;
    acc[1] += 1;
    return acc;
  }

  merge(acc, other) {
    return [acc[0] + other[0], acc[1] + other[1]];
  }

  result(acc, window) {
    return { id: window.keyString(), window_end: window.end, avg_c: roundHalfAway((acc[0] / acc[1]) * 1e6) / 1e6, count: acc[1] };
  }
}

export const { init, createAccumulator, add, merge, getResult } = exportAggregate(Average);
