"""celsius, in Python: converts sensor readings from °F to °C.

Input: JSON readings ``{"id":"sensor_7","timestamp":1700000000000,"temperature":71.3}``
(°F). Output: the same reading in °C, with the record's key and timestamp.
Config (optional): ``output: json | binary``, the encoding of the readings
it emits; binary is the Rust plugins' layout (id, timestamp, temperature).
"""

from weir import BinWriter, Operator, encoding, export


class Celsius(Operator):
    def open(self, ctx):
        self.binary = encoding(ctx.config, "output")

    def process(self, record, ctx):
        reading = record.json()
        reading["temperature"] = (reading["temperature"] - 32.0) * (5.0 / 9.0)
        if self.binary:
            ctx.emit(BinWriter().string(reading["id"]).i64(reading["timestamp"]).f64(reading["temperature"]).bytes())
        else:
            ctx.emit_json(reading)


WitWorld = export(Celsius)
