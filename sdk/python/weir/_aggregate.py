"""The `aggregator` world's exports over an `Aggregate`: accumulators are
JSON bytes the host keeps per window; each call decodes and encodes them
once."""

from componentize_py_types import Err

import wit_world
from wit_world.imports import types as t

from ._json import dumpb as _encode, loads as _decode
from ._runtime_common import items_of, message, pack_items


def _output(value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return _encode(value)


def export(aggregate_class):
    """The `WitWorld` class componentize-py exports, running `aggregate_class`."""
    from ._api import InitContext, Record, Window

    def fail(e):
        return Err(t.OperatorError(message(e)))

    class WitWorld(wit_world.WitWorld):
        aggregate = None

        def init(self, context):
            try:
                aggregate = aggregate_class()
                aggregate.open(InitContext(context))
            except Exception as e:
                raise fail(e)
            WitWorld.aggregate = aggregate

        def create_accumulator(self):
            try:
                return _encode(WitWorld.aggregate.create_accumulator())
            except Exception as e:
                raise fail(e)

        def add(self, input):
            aggregate = WitWorld.aggregate
            accumulators = [_decode(a) for a in items_of(input.accumulators)]
            records = input.records
            data, spans, stamps = records.data, records.spans, records.timestamps
            additions = input.additions
            errors, failed = [], set()
            for n in range(0, len(additions), 2):
                i, j = additions[n], additions[n + 1]
                if i in failed:
                    continue
                ko, kl, vo, vl = spans[4 * i:4 * i + 4]
                record = Record(None if kl == 0xFFFFFFFF else data[ko:ko + kl], data[vo:vo + vl], stamps[i])
                try:
                    accumulators[j] = aggregate.add(accumulators[j], record)
                except Exception as e:
                    failed.add(i)
                    errors.append(t.RecordError(i, message(e)))
            return wit_world.imports.windows.AddOutput(pack_items([_encode(a) for a in accumulators]), errors)

        def merge(self, accumulators, group_sizes):
            aggregate = WitWorld.aggregate
            all_accs = [_decode(a) for a in items_of(accumulators)]
            merged, at = [], 0
            try:
                for size in group_sizes:
                    group = all_accs[at:at + size]
                    at += size
                    acc = group[0] if group else aggregate.create_accumulator()
                    for other in group[1:]:
                        acc = aggregate.merge(acc, other)
                    merged.append(_encode(acc))
            except Exception as e:
                raise fail(e)
            return pack_items(merged)

        def get_result(self, windows, accumulators):
            aggregate = WitWorld.aggregate
            try:
                values = [_output(aggregate.result(_decode(a), Window(w.key, w.start, w.end)))
                          for w, a in zip(windows, items_of(accumulators))]
            except Exception as e:
                raise fail(e)
            return pack_items(values)

    return WitWorld
