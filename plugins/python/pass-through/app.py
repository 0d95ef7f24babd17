"""pass-through, in Python: emits every record unchanged (what the SDK
costs per record, for ``make bench``)."""

from weir import Operator, export


class PassThrough(Operator):
    def process(self, record, ctx):
        ctx.emit(record.value)


WitWorld = export(PassThrough)
