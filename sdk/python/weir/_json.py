"""JSON with what ``json.loads`` and ``json.dumps`` spend per call taken out.

``json.dumps(v, separators=...)`` builds an encoder every call and
``json.loads(bytes)`` sniffs the encoding first; on the per-record path of
an interpreter running in Wasm both are a good share of a record's time.
These call the C scanner and encoder of ``json`` directly and fall back to
``json.loads`` / ``JSONEncoder.encode`` for anything unusual, so results and
error messages are exactly ``json``'s own.
"""

import json
from json import encoder as _encoder

_scan = json.JSONDecoder().scan_once
_compact = json.JSONEncoder(separators=(",", ":"))


def loads(b):
    """``json.loads(b)`` for bytes or str."""
    try:
        s = b.decode() if isinstance(b, (bytes, bytearray)) else b
        value, end = _scan(s, 0)
        if end == len(s):
            return value
    except Exception:
        pass
    # whitespace, a BOM, UTF-16, another type, invalid input: json's own
    # path, and its own error
    return json.loads(b)


def _make_encoder():
    if _encoder.c_make_encoder is None:
        return None
    return _encoder.c_make_encoder({}, _compact.default, _encoder.encode_basestring_ascii, None, ":", ",",
                                   False, False, True)


_encode = _make_encoder()


def dumps(value):
    """``json.dumps(value, separators=(",", ":"))``."""
    global _encode
    if _encode is not None:
        try:
            return "".join(_encode(value, 0))
        except Exception:
            # its circular-reference markers may be left half-filled: a new one
            _encode = _make_encoder()
    return _compact.encode(value)


def dumpb(value):
    """``dumps(value)`` as UTF-8 bytes."""
    return dumps(value).encode()
