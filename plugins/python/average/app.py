"""average, in Python: the average temperature of a sensor's readings per
window, as an aggregate for the host's windows (the Rust ``average``'s
output: ``{"id":…,"window_end":…,"avg_c":…,"count":…}``, ``avg_c`` rounded
to 6 decimals, halves away from zero)."""

import math

from weir import Aggregate, export_aggregate


def round_half_away(x):
    r = math.floor(abs(x))
    if abs(x) - r >= 0.5:
        r += 1
    return math.copysign(r, x)


class Average(Aggregate):
    def create_accumulator(self):
        return [0.0, 0]

    def add(self, acc, record):
        acc[0] += record.json()["temperature"]
        acc[1] += 1
        return acc

    def merge(self, acc, other):
        return [acc[0] + other[0], acc[1] + other[1]]

    def result(self, acc, window):
        return {"id": window.key_str(), "window_end": window.end,
                "avg_c": round_half_away(acc[0] / acc[1] * 1e6) / 1e6, "count": acc[1]}


WitWorld = export_aggregate(Average)
