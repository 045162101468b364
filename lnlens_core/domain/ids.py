"""Channel ids: ``BLOCKxTXxOUT``, converting to LND's uint64 and charge-lnd's ``BLOCK:TX:OUT``."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

__all__ = ["ChannelId"]

_SCID_X = re.compile(r"^(\d+)x(\d+)x(\d+)$")
_SCID_COLON = re.compile(r"^(\d+):(\d+):(\d+)$")


@dataclass(frozen=True, slots=True, order=True, eq=True)
class ChannelId:
    """A short channel id: funding block height, transaction index, output index.

    The canonical text form is ``BLOCKxTXxOUT`` (CLN). LND uses the packed uint64
    ``block << 40 | tx << 16 | out``; charge-lnd also accepts ``BLOCK:TX:OUT``.
    """

    block: int
    tx: int
    output: int
    # Channel ids key every hot dictionary (flows, policies) and are written with every stored
    # forward: hash and format once, not per lookup or row.
    _hash: int = field(init=False, repr=False, compare=False, default=0)
    _text: str = field(init=False, repr=False, compare=False, default="")

    def __post_init__(self) -> None:
        if not (0 <= self.block < 1 << 24 and 0 <= self.tx < 1 << 24 and 0 <= self.output < 1 << 16):
            raise ValueError(f"short channel id out of range: {self.block}x{self.tx}x{self.output}")
        object.__setattr__(self, "_hash", hash(self.block << 40 | self.tx << 16 | self.output))
        object.__setattr__(self, "_text", f"{self.block}x{self.tx}x{self.output}")

    def __hash__(self) -> int:
        return self._hash

    @classmethod
    def parse(cls, value: str | int | ChannelId) -> ChannelId:
        """Read ``BLOCKxTXxOUT``, ``BLOCK:TX:OUT`` or a decimal uint64 (int or string).

        :raises ValueError: naming the value when it is none of these.
        """
        if isinstance(value, ChannelId):
            return value
        if isinstance(value, bool):
            raise ValueError(f"not a channel id: {value!r}")
        if isinstance(value, int):
            return cls.from_int(value)
        return _parse_text(str(value))

    @classmethod
    def _from_text(cls, value: str) -> ChannelId:
        text = value.strip()
        # charge-lnd checks the colon form first; the order does not matter for valid input.
        match = _SCID_COLON.match(text) or _SCID_X.match(text)
        if match:
            return cls(int(match[1]), int(match[2]), int(match[3]))
        if text.isdigit():
            return cls.from_int(int(text))
        raise ValueError(f"not a channel id (want BLOCKxTXxOUT, BLOCK:TX:OUT or a uint64): {value!r}")

    @classmethod
    def from_int(cls, value: int) -> ChannelId:
        """Unpack LND's uint64 form."""
        if not 0 <= value < 1 << 64:
            raise ValueError(f"channel id out of uint64 range: {value}")
        return cls(value >> 40, (value >> 16) & 0xFFFFFF, value & 0xFFFF)

    def to_int(self) -> int:
        """Pack into LND's uint64 form."""
        return self.block << 40 | self.tx << 16 | self.output

    def colon(self) -> str:
        """The ``BLOCK:TX:OUT`` form."""
        return f"{self.block}:{self.tx}:{self.output}"

    def __str__(self) -> str:
        return self._text


@functools.lru_cache(maxsize=65_536)
def _parse_text(value: str) -> ChannelId:
    # Stores and wire formats repeat the same few thousand ids millions of times.
    return ChannelId._from_text(value)
