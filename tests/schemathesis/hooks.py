"""Schemathesis hooks for Weir's API: uploads are component bytes
(application/wasm), which schemathesis does not serialize on its own."""

import schemathesis


@schemathesis.serializer("application/wasm")
def wasm(ctx, value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, list):
        return bytes(v % 256 for v in value if isinstance(v, int))
    return str(value).encode()
