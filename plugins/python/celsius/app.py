"""celsius, in Python: converts sensor readings from °F to °C.

Input: JSON readings ``{"id":"sensor_7","timestamp":1700000000000,"temperature":71.3}``
(°F). Output: the same reading in °C, with the record's key and timestamp.
"""

import json

from weir import Operator, export


class Celsius(Operator):
    def process(self, record, ctx):
        reading = json.loads(record.value)
        reading["temperature"] = (reading["temperature"] - 32.0) * (5.0 / 9.0)
        ctx.emit_json(reading)


WitWorld = export(Celsius)
