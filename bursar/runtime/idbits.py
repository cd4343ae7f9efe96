"""A set of store ids in one bit each: what a job has already seen in a run over every fine.

Store ids are small positive integers handed out by a counter, so a bitmap indexed by id takes
an eighth of a byte per id up to the highest one seen (125 kB for 1,000,000 fines), where a
Python set of ints takes about 60 bytes per member.  Anything that is not such an id (None,
say, from a damaged document) is kept in a plain set beside it."""

from __future__ import annotations

from typing import Any


class IdBits:
    """add / `in` for store ids, memory bounded by the highest id, not by how many are added."""

    def __init__(self) -> None:
        self._bits = bytearray()
        self._other: set[Any] = set()

    def add(self, value: Any) -> None:
        if type(value) is int and value >= 0:
            byte = value >> 3
            if byte >= len(self._bits):
                self._bits.extend(bytes(max(byte + 1 - len(self._bits), len(self._bits))))
            self._bits[byte] |= 1 << (value & 7)
        else:
            self._other.add(value)

    def __contains__(self, value: Any) -> bool:
        if type(value) is int and value >= 0:
            byte = value >> 3
            return byte < len(self._bits) and bool(self._bits[byte] & (1 << (value & 7)))
        return value in self._other
