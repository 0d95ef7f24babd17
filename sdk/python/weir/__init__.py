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
``BinWriter`` and ``BinReader`` read and write records in the Rust SDK's
binary encoding, to exchange them with Rust plugins without JSON.

A window function for the host's windows (the ``aggregator`` world, built
with ``-w aggregator``) subclasses ``Aggregate`` and is exported with
``export_aggregate``.
"""

from ._binary import BinReader, BinWriter, encoding
from ._api import (
    BYTES,
    Aggregate,
    JSON,
    Context,
    InitContext,
    ListState,
    MapState,
    Operator,
    Record,
    Timer,
    ValueState,
    Window,
)


def export(operator_class):
    """The ``WitWorld`` class of an ``operator``-world component running
    ``operator_class`` (an ``Operator``)."""
    from ._runtime import export as export_operator

    return export_operator(operator_class)


def export_aggregate(aggregate_class):
    """The ``WitWorld`` class of an ``aggregator``-world component running
    ``aggregate_class`` (an ``Aggregate``)."""
    from ._aggregate import export as export_aggregator

    return export_aggregator(aggregate_class)

__all__ = [
    "BYTES",
    "BinReader",
    "BinWriter",
    "encoding",
    "Aggregate",
    "JSON",
    "Context",
    "InitContext",
    "ListState",
    "MapState",
    "Operator",
    "Record",
    "Timer",
    "ValueState",
    "Window",
    "export",
    "export_aggregate",
]
