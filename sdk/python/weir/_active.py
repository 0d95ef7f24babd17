"""The `process` or `on-timer` call in progress: the operator runtime sets
``call`` for the length of one, the state handles read it."""

call = None
