"""What every world's runtime shares: error messages and packed items."""

import os
import traceback

from wit_world.imports import types as t


def message(e):
    """An exception as the host shows it: type, text and where it was raised."""
    where = traceback.extract_tb(e.__traceback__)
    at = f" (at {os.path.basename(where[-1].filename)}:{where[-1].lineno} in {where[-1].name})" if where else ""
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
