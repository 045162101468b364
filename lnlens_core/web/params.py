"""Query parameters, checked: every problem is a 400 naming the parameter and what it accepts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..config import parse_duration
from ..domain import ChannelId

__all__ = ["BadRequest", "Param", "parse_query"]


_MAX_DURATION_S = 999_999_999 * 604_800  # what the documented pattern allows


class BadRequest(Exception):
    """A request the API refuses with 400; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Param:
    """One query parameter: ``kind`` is int, duration, channel, choice or cursor."""

    name: str
    kind: str
    default: Any = None
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    description: str = ""


def _one(p: Param, raw: str) -> Any:
    if p.kind == "int":
        try:
            value = int(raw)
        except ValueError:
            raise BadRequest(f"{p.name}: not an integer: {raw!r}") from None
        if (p.minimum is not None and value < p.minimum) or (p.maximum is not None and value > p.maximum):
            raise BadRequest(f"{p.name}: must be between {p.minimum} and {p.maximum}, not {value}")
        return value
    if p.kind == "duration":
        try:
            value = parse_duration(raw)
        except ValueError as exc:
            raise BadRequest(f"{p.name}: {exc}") from None
        if value < 1 or value > _MAX_DURATION_S:
            raise BadRequest(f"{p.name}: must be at least 1s and at most 9 digits and a unit, not {raw!r}")
        return value
    if p.kind == "channel":
        try:
            return ChannelId.parse(raw)
        except (ValueError, TypeError):
            raise BadRequest(f"{p.name}: not a short channel id (BLOCKxTXxOUT): {raw!r}") from None
    if p.kind == "choice":
        if raw not in p.choices:
            raise BadRequest(f"{p.name}: must be one of {', '.join(p.choices)}, not {raw!r}")
        return raw
    if p.kind == "cursor":
        time_text, sep, key = raw.partition("_")
        try:
            when = float(time_text)
        except ValueError:
            when = float("nan")
        if not sep or not key or when != when or when in (float("inf"), float("-inf")):
            raise BadRequest(f"{p.name}: not a cursor from a previous page's next_cursor: {raw!r}")
        return (when, key)
    raise AssertionError(f"unknown parameter kind {p.kind}")


def parse_query(query: Mapping[str, str], params: tuple[Param, ...], *, multi: Mapping[str, list[str]]) -> dict:
    """Checked values for ``params`` (defaults filled in).

    :param multi: every value given per name, to refuse repeated parameters.
    :raises BadRequest: an unknown or repeated parameter, or a bad value.
    """
    known = {p.name: p for p in params}
    unknown = sorted(set(query) - set(known) - {"token"})
    if unknown:
        accepted = ", ".join(known) or "none"
        raise BadRequest(f"unknown query parameter(s) {', '.join(unknown)} (accepted: {accepted})")
    out: dict[str, Any] = {}
    for name, p in known.items():
        values = multi.get(name, [])
        if len(values) > 1:
            raise BadRequest(f"{name}: given {len(values)} times; give it once")
        out[name] = _one(p, values[0]) if values else p.default
    return out
