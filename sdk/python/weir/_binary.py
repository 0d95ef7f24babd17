"""The Rust SDK's binary encoding (postcard), field by field: what a Rust
plugin with ``Bin`` (or ``output: binary``) reads and writes. A struct is
its fields in order; a string or bytes field its length as a varint, then
its bytes; an unsigned integer a varint (7 bits a byte, low first); a signed
one a zigzag varint; a float its 8 little-endian bytes."""

import struct

_F64 = struct.Struct("<d")


def encoding(config, field):
    """Whether ``config[field]`` asks for the binary encoding: ``"binary"``
    does, ``"json"`` or nothing does not; anything else is a ValueError."""
    value = (config or {}).get(field, "json")
    if value not in ("json", "binary"):
        raise ValueError(f"{field} must be json or binary, got {value!r}")
    return value == "binary"


class BinWriter:
    """Appends fields: ``BinWriter().string(id).i64(ts).f64(t).bytes()``."""

    __slots__ = ("_out",)

    def __init__(self):
        self._out = bytearray()

    def string(self, s):
        """A str (as UTF-8) or bytes field."""
        b = s.encode() if isinstance(s, str) else s
        self.u64(len(b))
        self._out += b
        return self

    def u64(self, v):
        out = self._out
        while v >= 0x80:
            out.append((v & 0x7F) | 0x80)
            v >>= 7
        out.append(v)
        return self

    def i64(self, v):
        return self.u64((v << 1) ^ (v >> 63))

    def f64(self, v):
        self._out += _F64.pack(v)
        return self

    def bytes(self):
        return bytes(self._out)


class BinReader:
    """Reads fields in the order they were written; a field that runs past
    the end raises ValueError, and so does ``finish`` with bytes left."""

    __slots__ = ("_b", "_at")

    def __init__(self, b):
        self._b, self._at = b, 0

    def u64(self):
        b, at, shift, v = self._b, self._at, 0, 0
        while True:
            if at >= len(b) or shift > 63:
                raise ValueError("invalid binary value: it ends inside a field")
            c = b[at]
            at += 1
            v |= (c & 0x7F) << shift
            if c < 0x80:
                self._at = at
                return v
            shift += 7

    def i64(self):
        u = self.u64()
        return (u >> 1) ^ -(u & 1)

    def bytes(self):
        n = self.u64()
        at = self._at
        if n > len(self._b) - at:
            raise ValueError("invalid binary value: it ends inside a field")
        self._at = at + n
        return bytes(self._b[at : at + n])

    def string(self):
        return self.bytes().decode()

    def f64(self):
        at = self._at
        if len(self._b) - at < 8:
            raise ValueError("invalid binary value: it ends inside a field")
        self._at = at + 8
        return _F64.unpack_from(self._b, at)[0]

    def finish(self):
        if self._at != len(self._b):
            raise ValueError(f"invalid binary value: {len(self._b) - self._at} bytes left over")
