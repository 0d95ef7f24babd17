"""What an operator sees: records, timers, its context and state handles."""

import json

from . import _active
from ._json import dumpb as _json_encode, loads as _json_decode


def _current():
    call = _active.call
    if call is None:
        raise RuntimeError("state is read and written only inside process() and on_timer()")
    return call


class Codec:
    """How state values (and map keys) become bytes and back."""

    def __init__(self, name, encode, decode):
        self.name, self.encode, self.decode = name, encode, decode


JSON = Codec("json", _json_encode, _json_decode)
"""JSON values (the default): anything ``json.dumps`` takes."""
BYTES = Codec("bytes", bytes, bytes)
"""Raw bytes, as they are."""


class Record:
    """One input record: ``key`` (bytes or None), ``value`` (bytes) and its
    event ``timestamp`` (ms)."""

    __slots__ = ("key", "value", "timestamp")

    def __init__(self, key, value, timestamp):
        self.key, self.value, self.timestamp = key, value, timestamp

    def json(self):
        """The value parsed as JSON."""
        return _json_decode(self.value)

    def key_str(self):
        """The key as text (None without a key)."""
        return None if self.key is None else self.key.decode()


class Timer:
    """A timer that fired: its ``key`` (bytes), ``timestamp`` (ms) and
    whether it is an ``event_time`` timer (else processing time)."""

    __slots__ = ("key", "timestamp", "event_time")

    def __init__(self, key, timestamp, event_time):
        self.key, self.timestamp, self.event_time = key, timestamp, event_time

    def key_str(self):
        return self.key.decode()


class Operator:
    """Subclass it; ``export(YourOperator)`` makes it the component's."""

    def open(self, ctx):
        """Called once per instance: read ``ctx.config``, declare state."""

    def process(self, record, ctx):
        """Called for every record. Raising fails this record only: the
        host applies the node's ``on_error`` (fail, skip or dead-letter)."""
        raise NotImplementedError("an operator must define process(record, ctx)")

    def on_timer(self, timer, ctx):
        """Called for every timer that fired, in time order."""


class Window:
    """A window of one key: ``[start, end)`` of event time (ms)."""

    __slots__ = ("key", "start", "end")

    def __init__(self, key, start, end):
        self.key, self.start, self.end = key, start, end

    def key_str(self):
        return self.key.decode()


class Aggregate:
    """An incremental window function (Flink's ``AggregateFunction``): the
    host keeps one accumulator per window — any JSON value — and asks for
    the result when the window fires. ``export_aggregate(YourAggregate)``."""

    def open(self, ctx):
        """Called once per instance: ``ctx.config``."""

    def create_accumulator(self):
        """A new, empty accumulator."""
        return None

    def add(self, accumulator, record):
        """Returns the accumulator with ``record`` added. Raising refuses
        the record: the node's ``on_error`` decides."""
        raise NotImplementedError("an aggregate must define add(accumulator, record)")

    def merge(self, accumulator, other):
        """Returns the two merged (session windows that touch)."""
        raise NotImplementedError("session windows need merge(accumulator, other)")

    def result(self, accumulator, window):
        """The window's output value: bytes or str as is, anything else as JSON."""
        raise NotImplementedError("an aggregate must define result(accumulator, window)")


class InitContext:
    """What ``open`` gets: the node, the config and state declarations."""

    def __init__(self, wit):
        self.node_id = wit.node_id
        self.subtask_index = wit.subtask_index
        self.parallelism = wit.parallelism
        self.attempt = wit.attempt
        self.config = json.loads(wit.config) if wit.config else None
        self.states = []
        self.handles = []

    def _declare(self, handle, name, kind, prefetch):
        if any(s[0] == name for s in self.states):
            raise ValueError(f"state {name!r} is declared twice")
        handle._index = len(self.states)
        self.states.append((name, kind, prefetch))
        self.handles.append(handle)
        return handle

    def value_state(self, name, codec=JSON, prefetch=True):
        """One value per key."""
        return self._declare(ValueState(codec, prefetch), name, "value", prefetch)

    def list_state(self, name, codec=JSON, prefetch=True):
        """A list of values per key. Large lists: ``prefetch=False`` (read
        and appended through the host, one call per access)."""
        return self._declare(ListState(codec, prefetch), name, "list", prefetch)

    def map_state(self, name, codec=JSON, key_codec=JSON, prefetch=True):
        """A map per key. Large maps: ``prefetch=False``."""
        handle = MapState(codec, prefetch)
        handle._key_codec = key_codec
        return self._declare(handle, name, "map", prefetch)


class Context:
    """What ``process`` and ``on_timer`` get: output, timers and time, for
    the current record's (or timer's) key."""

    __slots__ = ("_call", "key", "timestamp")

    def __init__(self, call):
        self._call = call
        self.key = None
        self.timestamp = 0

    @property
    def watermark(self):
        """The operator's event-time watermark (ms): a record at or below it is late."""
        return self._call.time.watermark

    @property
    def processing_time(self):
        """The host's wall clock (ms) when the call started."""
        return self._call.time.processing_time

    def emit(self, value, key=..., timestamp=None):
        """Emits ``value`` (bytes or str) on the main output, with the
        current key and timestamp unless given."""
        self._call.out.add(self.key if key is ... else key, value, self.timestamp if timestamp is None else timestamp)

    def emit_json(self, value, key=..., timestamp=None):
        """Emits ``value`` as compact JSON."""
        self.emit(_json_encode(value), key, timestamp)

    def emit_to(self, output, value, key=..., timestamp=None):
        """Emits on the side output ``output`` (consumed as ``NODE.output``)."""
        self._call.side(output).add(self.key if key is ... else key, value,
                                    self.timestamp if timestamp is None else timestamp)

    def register_event_timer(self, timestamp):
        """Fires ``on_timer`` once the watermark passes ``timestamp``."""
        self._call.timer(self.key, timestamp, event_time=True, register=True)

    def register_processing_timer(self, timestamp):
        """Fires ``on_timer`` once the wall clock passes ``timestamp``."""
        self._call.timer(self.key, timestamp, event_time=False, register=True)

    def delete_event_timer(self, timestamp):
        self._call.timer(self.key, timestamp, event_time=True, register=False)

    def delete_processing_timer(self, timestamp):
        self._call.timer(self.key, timestamp, event_time=False, register=False)

    def count(self, name, n=1):
        """Adds ``n`` to the counter ``name`` (a host metric)."""
        counters = self._call.counters
        counters[name] = counters.get(name, 0) + n


class _State:
    __slots__ = ("_codec", "_prefetch", "_index", "_key_codec")

    def __init__(self, codec, prefetch):
        self._codec, self._prefetch, self._index = codec, prefetch, None


class ValueState(_State):
    """One value per key (PyFlink's ``ValueState``)."""

    def value(self):
        """The value, or None."""
        call = _current()
        if not self._prefetch:
            return call.remote_value(self._index, self._codec)
        return call.slot(self._index).value(self._codec)

    def update(self, value):
        """Sets the value (None clears it)."""
        call = _current()
        if not self._prefetch:
            return call.remote_set(self._index, None if value is None else self._codec.encode(value))
        call.slot(self._index).set(value)

    def clear(self):
        self.update(None)


class ListState(_State):
    """A list of values per key (PyFlink's ``ListState``)."""

    def get(self):
        """Every value, in order (a new list)."""
        call = _current()
        if not self._prefetch:
            return call.remote_list(self._index, self._codec)
        return list(call.slot(self._index).items(self._codec))

    def add(self, value):
        """Appends a value."""
        call = _current()
        if not self._prefetch:
            return call.remote_append(self._index, [self._codec.encode(value)])
        call.slot(self._index).append(value)

    def update(self, values):
        """Replaces the whole list."""
        call = _current()
        if not self._prefetch:
            call.remote_clear(self._index)
            return call.remote_append(self._index, [self._codec.encode(v) for v in values])
        call.slot(self._index).replace(list(values))

    def clear(self):
        self.update([])


class MapState(_State):
    """A map per key (PyFlink's ``MapState``)."""

    def _map(self, call):
        return call.slot(self._index).mapping(self._key_codec, self._codec)

    def get(self, key, default=None):
        call = _current()
        if not self._prefetch:
            return call.remote_map_get(self._index, self._key_codec.encode(key), self._codec, default)
        return call.slot(self._index).mapping(self._key_codec, self._codec).get(key, default)

    def put(self, key, value):
        call = _current()
        if not self._prefetch:
            return call.remote_map_put(self._index, self._key_codec.encode(key), self._codec.encode(value))
        slot = call.slot(self._index)
        slot.mapping(self._key_codec, self._codec)[key] = value
        slot.dirty = True

    def contains(self, key):
        return self.get(key, _MISSING) is not _MISSING

    def remove(self, key):
        call = _current()
        if not self._prefetch:
            return call.remote_map_remove(self._index, self._key_codec.encode(key))
        slot = call.slot(self._index)
        if slot.mapping(self._key_codec, self._codec).pop(key, _MISSING) is not _MISSING:
            slot.dirty = True

    def items(self):
        """Every entry as (key, value), in the order of their encoded keys."""
        call = _current()
        if not self._prefetch:
            return call.remote_map_items(self._index, self._key_codec, self._codec)
        encode = self._key_codec.encode
        return sorted(self._map(call).items(), key=lambda entry: encode(entry[0]))

    def keys(self):
        return [k for k, _ in self.items()]

    def values(self):
        return [v for _, v in self.items()]

    def is_empty(self):
        return not self.items()

    def clear(self):
        call = _current()
        if not self._prefetch:
            return call.remote_clear(self._index)
        slot = call.slot(self._index)
        slot.mapping(self._key_codec, self._codec).clear()
        slot.dirty = True


_MISSING = object()
