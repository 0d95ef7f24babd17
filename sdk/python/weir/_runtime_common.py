"""What every world's runtime shares: error messages and packed items."""

import os
import traceback

from wit_world.imports import types as t


_SDK = os.path.dirname(os.path.abspath(__file__))
_STDLIB = os.path.dirname(os.path.abspath(os.__file__))


def _operators(frame):
    """Whether a frame is the operator's code (not this SDK's or Python's own)."""
    path = os.path.abspath(frame.filename)
    return not path.startswith((_SDK + os.sep, _STDLIB + os.sep))


def message(e):
    """An exception as the host shows it: its type, its text and the
    operator's line it came from (the innermost, even when it was raised
    further down, in ``json`` or this SDK), else where it was raised."""
    frames = traceback.extract_tb(e.__traceback__)
    own = [f for f in frames if _operators(f)] or frames
    at = f" (at {os.path.basename(own[-1].filename)}:{own[-1].lineno} in {own[-1].name})" if own else ""
    return f"{type(e).__name__}: {e}{at}"


def items_of(items):
    """The byte strings of packed `items`."""
    data, spans = items.data, items.spans
    return [data[spans[k]:spans[k] + spans[k + 1]] for k in range(0, len(spans), 2)]


def pack_items(values):
    """Byte strings packed as `items`."""
    data, spans = bytearray(), []
    for v in values:
        spans += (len(data), len(v))
        data += v
    return t.Items(bytes(data), spans)
