"""sensor-average, in Python: the average temperature per sensor over
tumbling event-time windows, like a Flink ``KeyedProcessFunction``.

Each reading (°C, keyed by sensor id) is added to its window's running sum
in keyed map state (window end → [sum, count]); the first reading of a
window registers an event-time timer at ``window_end - 1``. When it fires,
``{"id":…,"window_end":…,"avg_c":…,"count":…}`` is emitted (``avg_c``
rounded to 6 decimals) and the window's state removed. A reading whose
window has fired is late: dropped and counted in ``late_records_dropped``.

Config: ``window_ms`` (default 5000), ``input: json | binary`` (binary: the
Rust plugins' layout, as celsius writes it with ``output: binary``).
"""

import math

from weir import BinReader, Operator, encoding, export


def round_half_away(x):
    """Rounds to the nearest integer, halves away from zero (as Rust's
    ``f64::round``; Python's ``round`` goes to even)."""
    r = math.floor(abs(x))
    if abs(x) - r >= 0.5:
        r += 1
    return math.copysign(r, x)


class SensorAverage(Operator):
    def open(self, ctx):
        self.window_ms = (ctx.config or {}).get("window_ms", 5000)
        if self.window_ms <= 0:
            raise ValueError(f"window_ms must be positive, got {self.window_ms}")
        self.windows = ctx.map_state("windows")
        self.binary = encoding(ctx.config, "input")

    def process(self, record, ctx):
        if self.binary:
            r = BinReader(record.value)
            r.bytes()  # the id: the record's key is the sensor
            ts, temperature = r.i64(), r.f64()
            r.finish()
        else:
            reading = record.json()
            ts, temperature = reading["timestamp"], reading["temperature"]
        window_end = ts - ts % self.window_ms + self.window_ms
        if window_end - 1 <= ctx.watermark:
            ctx.count("late_records_dropped")
            return
        total = self.windows.get(window_end)
        if total is None:
            ctx.register_event_timer(window_end - 1)
            total = [0.0, 0]
        total[0] += temperature
        total[1] += 1
        self.windows.put(window_end, total)

    def on_timer(self, timer, ctx):
        window_end = timer.timestamp + 1
        total = self.windows.get(window_end)
        if total is None:
            return
        self.windows.remove(window_end)
        avg = total[0] / total[1]
        ctx.emit_json({"id": timer.key_str(), "window_end": window_end, "avg_c": round_half_away(avg * 1e6) / 1e6,
                       "count": total[1]})


WitWorld = export(SensorAverage)
