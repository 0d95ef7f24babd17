"""Write Weir stream operators in Python.

An operator is a class with ``process(record, ctx)`` called once per record
(and ``on_timer(timer, ctx)`` per fired timer); keyed state handles declared
in ``open(ctx)`` read and write the state of the current record's key. The
SDK turns each batch the host sends into these calls and packs everything
they produce back into one answer: one host call per batch, not per record.

Example (``app.py``, built with ``componentize-py``; see docs/languages.md)::

    from weir import Operator, export

    class Counter(Operator):
        def open(self, ctx):
            self.count = ctx.value_state("count")

        def process(self, record, ctx):
            n = (self.count.value() or 0) + 1
            self.count.update(n)
            ctx.emit_json({"key": record.key_str(), "count": n})

    WitWorld = export(Counter)

State values are JSON by default (anything ``json.dumps`` takes); pass
``codec=BYTES`` to keep raw bytes. The names follow PyFlink's state API.
"""

from ._api import (
    BYTES,
    JSON,
    Context,
    InitContext,
    ListState,
    MapState,
    Operator,
    Record,
    Timer,
    ValueState,
)
from ._runtime import export

__all__ = [
    "BYTES",
    "JSON",
    "Context",
    "InitContext",
    "ListState",
    "MapState",
    "Operator",
    "Record",
    "Timer",
    "ValueState",
    "export",
]
