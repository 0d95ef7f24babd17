"""hostile, in Python: misbehaves on the record ``"attack"`` the way
config ``{"mode": ...}`` says, for the sandbox tests: ``loop`` never
returns, ``grow`` allocates until memory runs out. Other records pass."""

from weir import Operator, export


class Hostile(Operator):
    def open(self, ctx):
        self.mode = ctx.config["mode"]

    def process(self, record, ctx):
        if record.value == b'"attack"':
            if self.mode == "loop":
                n = 0
                while True:
                    n += 1
            elif self.mode == "grow":
                hoard = []
                while True:
                    hoard.append(bytearray(1 << 20))
        ctx.emit(record.value)


WitWorld = export(Hostile)
