"""The charge-lnd vocabulary: every criterion and property key, its type and its unit.

Values are converted exactly as charge-lnd 0.3.1 converts them: Python ``int()`` /
``float()`` on the raw string (underscores and signs allowed, inline comments not
stripped), configparser's boolean words, and ``activity_period`` durations. The
only deliberate difference is that the property booleans (``sum_peer_chans``,
``cb_clear_limit``) use configparser's words too instead of string truthiness
(quirk 2, see docs/charge-lnd.md).
"""

from __future__ import annotations

import configparser
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "NAMESPACES",
    "Criterion",
    "CRITERIA",
    "ACTIVITY_KEYS",
    "PROPERTIES",
    "COMMON_PROPERTIES",
    "CIRCUITBREAKER_PROPERTIES",
    "to_int",
    "to_float",
    "to_bool",
    "to_duration_s",
    "split_list",
]

NAMESPACES = ("chan", "node", "onchain")

_DURATION_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def to_int(raw: str) -> int:
    """``int()`` on the raw text, as configparser's ``getint`` does."""
    return int(raw)


def to_float(raw: str) -> float:
    """``float()`` on the raw text (exponents, ``inf`` and ``nan`` included)."""
    return float(raw)


def to_bool(raw: str) -> bool:
    """configparser's boolean words: 1/yes/true/on and 0/no/false/off, any case."""
    try:
        return configparser.ConfigParser.BOOLEAN_STATES[raw.lower()]
    except KeyError:
        raise ValueError(f"not a boolean (1/yes/true/on or 0/no/false/off): {raw!r}") from None


def _period_s(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        pass
    unit = _DURATION_S.get(text[-1:])
    if unit is None:
        return None
    try:
        return int(text[:-1]) * unit
    except ValueError:
        return None


def to_duration_s(raw: str) -> int:
    """``chan.activity_period``: ``int()`` seconds, or an ``int()`` followed by s, m, h or d (as charge-lnd).

    Negative periods are refused: they would make every window empty.
    """
    seconds = _period_s(raw.strip())
    if seconds is None:
        raise ValueError(f"not a period (integer seconds, or like 90m, 12h, 7d): {raw!r}")
    if seconds < 0:
        raise ValueError(f"a period cannot be negative: {raw!r}")
    return seconds


def split_list(raw: str) -> list[str]:
    """charge-lnd's list converter: split on commas, strip each item."""
    return [item.strip() for item in raw.split(",")]


@dataclass(frozen=True, slots=True)
class Criterion:
    """One matcher key (without its namespace): how to read its value and in which unit it is compared.

    ``kind`` is ``min``/``max`` (an inclusive bound on the quantity ``quantity``),
    ``bool`` (equality), ``list`` (membership) or ``param`` (a setting of the
    matcher itself, not a test).
    """

    kind: str
    convert: Callable[[str], Any]
    unit: str
    quantity: str


def _bounds(quantity: str, convert: Callable[[str], Any], unit: str) -> dict[str, Criterion]:
    return {
        f"min_{quantity}": Criterion("min", convert, unit, quantity),
        f"max_{quantity}": Criterion("max", convert, unit, quantity),
    }


_ACTIVITY = {
    **_bounds("htlcs_in", to_int, "forwards"),
    **_bounds("htlcs_out", to_int, "forwards"),
    **_bounds("sats_in", to_int, "sat"),
    **_bounds("sats_out", to_int, "sat"),
    **_bounds("htlcs_ratio", to_float, "ratio"),
    **_bounds("sats_ratio", to_float, "ratio"),
}

CRITERIA: dict[str, dict[str, Criterion]] = {
    "chan": {
        "id": Criterion("list", str, "channel id", "id"),
        "initiator": Criterion("bool", to_bool, "bool", "initiator"),
        "private": Criterion("bool", to_bool, "bool", "private"),
        "disabled": Criterion("bool", to_bool, "bool", "disabled"),
        **_bounds("capacity", to_int, "sat"),
        **_bounds("ratio", to_float, "ratio"),
        **_bounds("local_balance", to_int, "sat"),
        **_bounds("remote_balance", to_int, "sat"),
        **_bounds("base_fee_msat", to_int, "msat"),
        **_bounds("fee_ppm", to_int, "ppm"),
        **_bounds("age", to_int, "blocks"),
        "activity_period": Criterion("param", to_duration_s, "s", "activity_period"),
        "activity_period_ignore_channel_age": Criterion("param", to_bool, "bool", "activity_period_ignore_channel_age"),
        **_ACTIVITY,
        **_bounds("count_pending_htlcs", to_int, "htlcs"),
        **_bounds("next_pending_htlc_expiry", to_int, "blocks"),
    },
    "node": {
        "id": Criterion("list", str, "node id", "id"),
        **_bounds("channels", to_int, "channels"),
        **_bounds("capacity", to_int, "sat"),
        **_bounds("shared_channels_active", to_int, "channels"),
        **_bounds("shared_channels_inactive", to_int, "channels"),
        **_bounds("shared_capacity_active", to_int, "sat"),
        **_bounds("shared_capacity_inactive", to_int, "sat"),
        **_bounds("shared_ratio", to_float, "ratio"),
        **_bounds("shared_ratio_active", to_float, "ratio"),
        **_bounds("shared_ratio_inactive", to_float, "ratio"),
    },
    "onchain": {
        "conf_target": Criterion("param", to_int, "blocks", "conf_target"),
        **_bounds("fee_rate", to_float, "sat/vB"),
        "synced_to_chain": Criterion("bool", to_bool, "bool", "synced_to_chain"),
    },
}

ACTIVITY_KEYS = frozenset(f"chan.{name}" for name in _ACTIVITY)

COMMON_PROPERTIES: dict[str, Callable[[str], Any]] = {
    "min_htlc_msat": to_int,
    "max_htlc_msat": to_int,
    "max_htlc_msat_ratio": to_float,
    "time_lock_delta": to_int,
    "min_fee_ppm_delta": to_int,
    "min_inbound_fee_ppm_delta": to_int,
    "inbound_level_ppm": to_int,
}
"""Read by the evaluator for every strategy except ``ignore``, not passed to strategies."""

CIRCUITBREAKER_PROPERTIES: dict[str, Callable[[str], Any]] = {
    "cb_max_hourly_rate": to_int,
    "cb_max_pending": to_int,
    "cb_mode": to_int,
    "cb_clear_limit": to_bool,
}
"""Accepted and type-checked; lnlens does not talk to circuitbreaker, so they are reported, not applied."""

PROPERTIES: dict[str, Callable[[str], Any]] = {
    "strategy": str,
    "base_fee_msat": to_int,
    "fee_ppm": to_int,
    "inbound_base_fee_msat": to_int,
    "inbound_fee_ppm": to_int,
    "min_fee_ppm": to_int,
    "max_fee_ppm": to_int,
    "sum_peer_chans": to_bool,
    "cost_factor": to_float,
    "onchain_fee_btc": to_float,
    "onchain_fee_numblocks": to_int,
    "config_file": str,
    **COMMON_PROPERTIES,
    **CIRCUITBREAKER_PROPERTIES,
}
"""Every un-namespaced key charge-lnd 0.3.1 reads, with its converter."""
