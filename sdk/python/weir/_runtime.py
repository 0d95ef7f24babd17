"""The `operator` world's exports over an `Operator`: unpacks each batch
once, calls the operator per record, packs its output, state changes and
timers into one answer."""

from componentize_py_types import Err

import wit_world
from wit_world.imports import state as host_state
from wit_world.imports import types as t

from . import _active
from ._runtime_common import message as _message

NO_KEY = 0xFFFFFFFF
_KINDS = {"value": t.StateKind.VALUE, "list": t.StateKind.LIST, "map": t.StateKind.MAP}


class _Batch:
    """Records being packed: keys and values in one buffer, four spans each."""

    __slots__ = ("data", "spans", "timestamps")

    def __init__(self):
        self.data, self.spans, self.timestamps = bytearray(), [], []

    def add(self, key, value, timestamp):
        if isinstance(value, str):
            value = value.encode()
        data = self.data
        at = len(data)
        if key is None:
            self.spans += (0, NO_KEY, at, len(value))
        else:
            if isinstance(key, str):
                key = key.encode()
            self.spans += (at, len(key), at + len(key), len(value))
            data += key
        data += value
        self.timestamps.append(timestamp)

    def finish(self):
        return t.RecordBatch(bytes(self.data), self.spans, self.timestamps)


class _Value:
    __slots__ = ("raw", "decoded", "dirty")

    def __init__(self, raw):
        self.raw, self.decoded, self.dirty = raw, _UNREAD, False

    def value(self, codec):
        if self.decoded is _UNREAD:
            self.decoded = None if self.raw is None else codec.decode(self.raw)
        return self.decoded

    def set(self, value):
        self.decoded, self.dirty = value, True

    def changed(self):
        return self.dirty

    def flush(self, handle, updates, state, key):
        if self.dirty:
            if self.decoded is None:
                updates.push(state, key, t.UpdateKind.CLEAR, ())
            else:
                updates.push(state, key, t.UpdateKind.SET, (handle._codec.encode(self.decoded),))


class _List:
    __slots__ = ("raw", "added", "replaced")

    def __init__(self, raw):
        self.raw, self.added, self.replaced = raw, [], False

    def items(self, codec):
        return [codec.decode(r) for r in self.raw] + self.added

    def append(self, value):
        self.added.append(value)

    def replace(self, values):
        self.raw, self.added, self.replaced = [], values, True

    def changed(self):
        return self.replaced or bool(self.added)

    def flush(self, handle, updates, state, key):
        encoded = [handle._codec.encode(v) for v in self.added]
        if self.replaced:
            updates.push(state, key, t.UpdateKind.REPLACE, encoded)
        elif encoded:
            updates.push(state, key, t.UpdateKind.APPEND, encoded)


class _Map:
    __slots__ = ("raw", "decoded", "dirty")

    def __init__(self, raw):
        self.raw, self.decoded, self.dirty = raw, None, False

    def mapping(self, key_codec, codec):
        if self.decoded is None:
            self.decoded = {key_codec.decode(k): codec.decode(v) for k, v in self.raw}
        return self.decoded

    def changed(self):
        return self.dirty

    def flush(self, handle, updates, state, key):
        if self.dirty:
            entries = sorted((handle._key_codec.encode(k), handle._codec.encode(v)) for k, v in self.decoded.items())
            updates.push(state, key, t.UpdateKind.REPLACE, [b for entry in entries for b in entry])


_UNREAD = object()
_SLOTS = {"value": _Value, "list": _List, "map": _Map}


class _Updates:
    """State updates being packed: operands (and keys) are items."""

    __slots__ = ("data", "spans", "updates")

    def __init__(self):
        self.data, self.spans, self.updates = bytearray(), [], []

    def item(self, b):
        self.spans += (len(self.data), len(b))
        self.data += b
        return len(self.spans) // 2 - 1

    def push(self, state, key, kind, operands):
        first = len(self.spans) // 2
        for o in operands:
            self.item(o)
        self.updates.append(t.StateUpdate(state, key, kind, first, len(self.spans) // 2 - first))

    def finish(self):
        return t.StateUpdates(t.Items(bytes(self.data), self.spans), self.updates)


class _Call:
    """One `process` or `on-timer` call: the prefetched state of its keys
    and everything it produces. Slots are keyed ``group * states + state``."""

    __slots__ = ("instance", "time", "key_of", "out", "sides", "timers", "counters", "same_key", "group", "key",
                 "slots", "states")

    def __init__(self, instance, prefetched, time, key_of):
        self.instance, self.time, self.key_of = instance, time, key_of
        self.states = states = len(instance.kinds)
        self.out, self.sides, self.timers, self.counters = _Batch(), {}, [], {}
        self.same_key = prefetched.same_key
        self.group, self.key = NO_KEY, None
        self.slots = {}
        data, spans = prefetched.items.data, prefetched.items.spans
        kinds = instance.kinds
        for e in prefetched.entries:
            group = self.same_key[e.key] if e.key < len(self.same_key) else NO_KEY
            if group == NO_KEY or e.state >= len(kinds):
                continue
            items = [data[spans[2 * j]:spans[2 * j] + spans[2 * j + 1]]
                     for j in range(e.first_item, e.first_item + e.item_count)]
            kind = kinds[e.state]
            if kind == "value":
                slot = _Value(items[0] if items else None)
            elif kind == "list":
                slot = _List(items)
            else:
                slot = _Map(list(zip(items[0::2], items[1::2])))
            self.slots[group * states + e.state] = slot

    def at(self, index, key):
        """Makes element `index` (with `key`) the current one."""
        self.key = key
        self.group = self.same_key[index] if index < len(self.same_key) else NO_KEY

    def slot(self, state):
        group = self.group
        if group == NO_KEY:
            raise RuntimeError("keyed state needs a keyed input: give the node `key_by`")
        at = group * self.states + state
        slot = self.slots.get(at)
        if slot is None:
            kind = self.instance.kinds[state]
            slot = self.slots[at] = _SLOTS[kind](None if kind == "value" else [])
        return slot

    def side(self, name):
        batch = self.sides.get(name)
        if batch is None:
            batch = self.sides[name] = _Batch()
        return batch

    def timer(self, key, timestamp, event_time, register):
        if key is None:
            raise RuntimeError("timers need a keyed input: give the node `key_by`")
        domain = t.TimeDomain.EVENT_TIME if event_time else t.TimeDomain.PROCESSING_TIME
        op = t.TimerOp_Register() if register else t.TimerOp_Delete()
        self.timers.append(t.TimerUpdate(key, timestamp, domain, op))

    # Non-prefetched state: one host call per access.
    def _key(self):
        if self.key is None:
            raise RuntimeError("keyed state needs a keyed input: give the node `key_by`")
        return self.key

    def remote_value(self, state, codec):
        got = host_state.get(state, self._key())
        return None if got is None else codec.decode(got.value)

    def remote_set(self, state, value):
        if value is None:
            host_state.clear(state, self._key())
        else:
            host_state.set(state, self._key(), value)

    def remote_list(self, state, codec):
        got = host_state.get(state, self._key())
        return [] if got is None else [codec.decode(v) for v in got.value]

    def remote_append(self, state, values):
        if values:
            host_state.append(state, self._key(), values)

    def remote_clear(self, state):
        host_state.clear(state, self._key())

    def remote_map_get(self, state, map_key, codec, default):
        got = host_state.map_get(state, self._key(), map_key)
        return default if got is None else codec.decode(got)

    def remote_map_put(self, state, map_key, value):
        host_state.map_put(state, self._key(), map_key, value)

    def remote_map_remove(self, state, map_key):
        host_state.map_remove(state, self._key(), map_key)

    def remote_map_items(self, state, key_codec, codec):
        out, after = [], None
        while True:
            page = host_state.map_range(state, self._key(), after, 1024)
            out += [(key_codec.decode(k), codec.decode(v)) for k, v in page]
            if len(page) < 1024:
                return out
            after = page[-1][0]

    def finish(self, errors):
        updates = _Updates()
        keys = {}
        for at, slot in self.slots.items():
            if not slot.changed():
                continue
            group, state = divmod(at, self.states)
            key = keys.get(group)
            if key is None:
                key = keys[group] = updates.item(self.key_of(group))
            slot.flush(self.instance.handles[state], updates, state, key)
        sides = [t.SideOutput(name, batch.finish()) for name, batch in self.sides.items()]
        return t.Effects(self.out.finish(), sides, updates.finish(), self.timers, list(self.counters.items()), errors)


class _Instance:
    def __init__(self, operator, handles, kinds):
        self.operator, self.handles, self.kinds = operator, handles, kinds


def export(operator_class):
    """The `WitWorld` class componentize-py exports, running `operator_class`."""
    from ._api import Context, InitContext, Record, Timer

    class WitWorld(wit_world.WitWorld):
        instance = None

        def init(self, context):
            ctx = InitContext(context)
            try:
                operator = operator_class()
                operator.open(ctx)
            except Exception as e:
                raise Err(t.OperatorError(_message(e)))
            WitWorld.instance = _Instance(operator, ctx.handles, [kind for _, kind, _ in ctx.states])
            return t.OperatorInfo([t.StateDescriptor(name, _KINDS[kind], prefetch) for name, kind, prefetch in ctx.states])

        def process(self, batch):
            instance = WitWorld.instance
            records = batch.records
            data, spans, stamps = records.data, records.spans, records.timestamps

            def key_of(i):
                kl = spans[4 * i + 1]
                return None if kl == NO_KEY else data[spans[4 * i]:spans[4 * i] + kl]

            call = _Call(instance, batch.state, batch.time, key_of)
            ctx = Context(call)
            process = instance.operator.process
            errors = []
            same_key = call.same_key
            grouped = len(same_key)
            spans_of = iter(spans)
            _active.call = call
            try:
                # four spans and a timestamp a record
                for i, (ko, kl, vo, vl, ts) in enumerate(zip(spans_of, spans_of, spans_of, spans_of, stamps)):
                    key = None if kl == NO_KEY else data[ko:ko + kl]
                    # call.at(i, key), inlined on the per-record path
                    call.key = ctx.key = key
                    call.group = same_key[i] if i < grouped else NO_KEY
                    ctx.timestamp = ts
                    try:
                        process(Record(key, data[vo:vo + vl], ts), ctx)
                    except Exception as e:
                        errors.append(t.RecordError(i, _message(e)))
            finally:
                _active.call = None
            return call.finish(errors)

        def on_timer(self, timers):
            instance = WitWorld.instance
            fired = timers.timers
            call = _Call(instance, timers.state, timers.time, lambda i: fired[i].key)
            ctx = Context(call)
            errors = []
            _active.call = call
            try:
                for i, timer in enumerate(fired):
                    call.at(i, timer.key)
                    ctx.key, ctx.timestamp = timer.key, timer.timestamp
                    try:
                        instance.operator.on_timer(
                            Timer(timer.key, timer.timestamp, timer.domain == t.TimeDomain.EVENT_TIME), ctx)
                    except Exception as e:
                        errors.append(t.RecordError(i, _message(e)))
            finally:
                _active.call = None
            return call.finish(errors)

    return WitWorld
