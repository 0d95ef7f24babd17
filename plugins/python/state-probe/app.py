"""state-probe, in Python: a test plugin that drives every kind of keyed
state and both kinds of timers (the Rust testing/state-probe's commands).

Each record is a JSON command for its key; after it the plugin emits the
key's state as ``{"key":..,"count":..,"items":[..],"tags":{..}}``:
``add`` (count += 1, append the item, tag it with the count), ``replace``
(the items), ``untag`` (an item), ``clear`` (everything). ``timer`` and
``untimer`` register and delete a timer (``at``, ``domain``: ``event`` or
``processing``) and emit nothing; a fired timer emits
``{"key":..,"fired":..,"event_time":..}``.

Config: ``{"large": true}`` keeps the list and the map in the host (read and
written through host calls) instead of prefetching them.
"""

from weir import Operator, export


class StateProbe(Operator):
    def open(self, ctx):
        large = (ctx.config or {}).get("large", False)
        self.count = ctx.value_state("count")
        self.items = ctx.list_state("items", prefetch=not large)
        self.tags = ctx.map_state("tags", prefetch=not large)

    def process(self, record, ctx):
        cmd = record.json()
        op = cmd["op"]
        if op == "add":
            count = (self.count.value() or 0) + 1
            self.count.update(count)
            self.items.add(cmd["item"])
            self.tags.put(cmd["item"], count)
        elif op == "replace":
            self.items.update(cmd["items"])
        elif op == "untag":
            self.tags.remove(cmd["item"])
        elif op == "clear":
            self.count.clear()
            self.items.clear()
            self.tags.clear()
        elif op in ("timer", "untimer"):
            event = cmd["domain"] == "event"
            if op == "timer":
                (ctx.register_event_timer if event else ctx.register_processing_timer)(cmd["at"])
            else:
                (ctx.delete_event_timer if event else ctx.delete_processing_timer)(cmd["at"])
            return
        else:
            raise ValueError(f"unknown op {op!r}")
        ctx.emit_json({"key": record.key_str(), "count": self.count.value(), "items": self.items.get(),
                       "tags": dict(sorted(self.tags.items()))})

    def on_timer(self, timer, ctx):
        ctx.emit_json({"key": timer.key_str(), "fired": timer.timestamp, "event_time": timer.event_time})


WitWorld = export(StateProbe)
