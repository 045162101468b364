"""Safety rails: applied after every strategy (built-in or third-party), before any veto or apply.

Configured by the ``[policy]`` table of the lnlens TOML file (docs/FEES.md lists every key).
In order, for one channel:

1. **unmanaged** channels (by channel id or peer id) are never touched;
2. **cooldown**: no change within ``cooldown`` of the channel's last applied change (and
   ``rollback_cooldown`` after an automatic rollback), and at most ``max_changes_per_day``;
3. **step**: each fee field moves at most ``max(max_step_ppm, max_step_share × |old|)``
   (base fees: ``max_step_base_msat``) toward the strategy's value;
4. **floors and ceilings**, global then per channel (``[policy.channels."BLOCKxTXxOUT"]``),
   always win, so no output ever leaves them. Inbound fees are also kept from discounting
   more than our cheapest outbound rate (``inbound_fee_ppm >= -min outbound ppm``), so
   a forward's total fee never goes negative;
5. **hysteresis**: a ppm change smaller than ``min_change_ppm`` is dropped, and so is a change
   reversing the direction of the last one within ``flap_window``.

For charge-lnd's own strategies chosen by the policy file the engine applies only 1 and the
cool-down after an automatic rollback, unless ``charge_lnd_rails = true``: a charge-lnd file
makes charge-lnd's updates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ..config import parse_duration
from ..domain import Channel, ChannelId, ChannelPolicy, FeeUpdate
from ..errors import ConfigError

__all__ = ["Bounds", "Rails", "RailResult", "ChannelHistory", "apply_rails", "guarded_bounds", "rails_from_table"]

_FEE_FIELDS = ("base_fee_msat", "fee_ppm", "inbound_base_fee_msat", "inbound_fee_ppm")
_ALL_FIELDS = (*_FEE_FIELDS, "min_htlc_msat", "max_htlc_msat", "cltv_delta", "disabled")


@dataclass(frozen=True, slots=True)
class Bounds:
    """Floors and ceilings per fee field (None: unbounded on that side)."""

    min_fee_ppm: int | None = None
    max_fee_ppm: int | None = None
    min_base_fee_msat: int | None = None
    max_base_fee_msat: int | None = None
    min_inbound_fee_ppm: int | None = None
    max_inbound_fee_ppm: int | None = None
    min_inbound_base_fee_msat: int | None = None
    max_inbound_base_fee_msat: int | None = None

    def limits(self, name: str) -> tuple[int | None, int | None]:
        return getattr(self, f"min_{name}"), getattr(self, f"max_{name}")

    def tighter(self, other: Bounds) -> Bounds:
        """Both bounds at once: the higher floor and the lower ceiling of each field."""
        values: dict[str, int | None] = {}
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if a is None or b is None:
                values[f.name] = a if b is None else b
            else:
                values[f.name] = max(a, b) if f.name.startswith("min_") else min(a, b)
        return Bounds(**values)


@dataclass(frozen=True, slots=True)
class Rails:
    """The rails and the engine's other ``[policy]`` settings (defaults: conservative)."""

    bounds: Bounds = Bounds(min_fee_ppm=0, max_fee_ppm=5000, min_base_fee_msat=0, max_base_fee_msat=10_000,
                            min_inbound_fee_ppm=-5000, max_inbound_fee_ppm=5000,
                            min_inbound_base_fee_msat=-10_000, max_inbound_base_fee_msat=10_000)  # fmt: skip
    channel_bounds: Mapping[ChannelId, Bounds] = field(default_factory=dict)
    max_step_ppm: int = 50
    max_step_share: float = 0.25
    max_step_base_msat: int = 1000
    cooldown_s: int = 6 * 3600
    max_changes_per_day: int = 2
    min_change_ppm: int = 2
    flap_window_s: int = 24 * 3600
    unmanaged: frozenset[str] = frozenset()
    """Channel ids (``BLOCKxTXxOUT``) and peer node ids the engine never touches."""
    auto_rollback: bool = False
    rollback_window_s: int = 2 * 86_400
    rollback_drop_share: float = 0.3
    rollback_min_forwards: int = 10
    rollback_alpha: float = 0.05
    rollback_cooldown_s: int = 7 * 86_400
    charge_lnd_rails: bool = False
    """Apply these rails to charge-lnd's own strategies too (by default a charge-lnd file decides as charge-lnd)."""

    def bounds_for(self, channel_id: ChannelId) -> Bounds:
        extra = self.channel_bounds.get(channel_id)
        return self.bounds if extra is None else self.bounds.tighter(extra)

    def unmanaged_channel(self, channel: Channel) -> bool:
        return str(channel.channel_id) in self.unmanaged or channel.peer_id in self.unmanaged


@dataclass(frozen=True, slots=True)
class ChannelHistory:
    """What the journal says about one channel's recent changes (times in epoch seconds)."""

    last_change_time: float | None = None
    last_fee_direction: int = 0
    """+1 or -1: the sign of the last applied ``fee_ppm`` change; 0 if none."""
    changes_last_day: int = 0
    rolled_back_time: float | None = None


@dataclass(frozen=True, slots=True)
class RailResult:
    """The update after the rails (None: nothing to do), what they changed, and a block reason."""

    update: FeeUpdate | None
    applied: tuple[str, ...] = ()
    blocked: str | None = None


def _clamp(value: int, lo: int | None, hi: int | None) -> int:
    if lo is not None and value < lo:
        value = lo
    if hi is not None and value > hi:
        value = hi
    return value


def _step_limit(name: str, old: int, rails: Rails) -> int:
    if name.endswith("_msat"):
        return rails.max_step_base_msat
    return max(rails.max_step_ppm, int(rails.max_step_share * abs(old)))


def apply_rails(
    channel: Channel,
    update: FeeUpdate | None,
    rails: Rails,
    history: ChannelHistory,
    *,
    now: float,
    min_outbound_ppm: int | None = None,
    bounds: Bounds | None = None,
    guards_only: bool = False,
) -> RailResult:
    """Bring one strategy's update within the rails. Pure: everything it reads is an argument.

    :param min_outbound_ppm: our cheapest outbound rate among active channels (inbound guard).
    :param bounds: ``rails.bounds_for(channel)`` with the inbound guard already applied, when
        the caller has it (the engine computes it once per run); computed here otherwise.
    :param guards_only: only the guards the operator set up explicitly hold (unmanaged channels,
        the cool-down after an automatic rollback); the update is otherwise passed unchanged
        (a charge-lnd strategy without ``charge_lnd_rails``).
    """
    if update is None:
        return RailResult(None)
    values = {name: getattr(update, name) for name in _ALL_FIELDS}
    values = {k: v for k, v in values.items() if v is not None}
    if not values:
        return RailResult(None)
    if rails.unmanaged_channel(channel):
        return RailResult(None, blocked="unmanaged channel: never touched")
    if guards_only:
        wait = _rollback_cooldown(history, rails, now)
        return RailResult(None, blocked=wait) if wait else RailResult(update)
    wait = _cooldown(history, rails, now)
    if wait:
        return RailResult(None, blocked=wait)
    old = channel.local_policy
    if bounds is None:
        bounds = guarded_bounds(rails, channel.channel_id, min_outbound_ppm)
    notes: list[str] = []
    for name in _FEE_FIELDS:
        if name not in values:
            continue
        wanted, current = values[name], getattr(old, name)
        limit = _step_limit(name, current, rails)
        value = _clamp(wanted, current - limit, current + limit)
        if value != wanted:
            notes.append(f"{name} step limited to ±{limit}: {wanted} → {value}")
        lo, hi = bounds.limits(name)
        clamped = _clamp(value, lo, hi)
        if clamped != value:
            notes.append(f"{name} clamped to [{lo}, {hi}]: {value} → {clamped}")
        values[name] = clamped
    if "fee_ppm" in values:
        delta = values["fee_ppm"] - old.fee_ppm
        inside = _within(old.fee_ppm, *bounds.limits("fee_ppm"))
        if delta and abs(delta) < rails.min_change_ppm and inside:
            notes.append(f"fee_ppm change {delta:+d} below min_change_ppm {rails.min_change_ppm}: kept")
            values["fee_ppm"] = old.fee_ppm
        elif delta and inside and _flaps(delta, history, rails, now):
            notes.append("fee_ppm change reverses the last one within flap_window: kept")
            values["fee_ppm"] = old.fee_ppm
    changed = {k: v for k, v in values.items() if getattr(old, k) != v}
    if not changed:
        return RailResult(None, tuple(notes))
    return RailResult(FeeUpdate(**changed), tuple(notes))


def guarded_bounds(rails: Rails, channel_id: ChannelId, min_outbound_ppm: int | None) -> Bounds:
    """The channel's bounds, with inbound discounts kept within ``min_outbound_ppm``."""
    bounds = rails.bounds_for(channel_id)
    if min_outbound_ppm is not None:
        bounds = bounds.tighter(Bounds(min_inbound_fee_ppm=-min_outbound_ppm))
    return bounds


def _within(value: int, lo: int | None, hi: int | None) -> bool:
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def _flaps(delta: int, history: ChannelHistory, rails: Rails, now: float) -> bool:
    if history.last_change_time is None or now - history.last_change_time >= rails.flap_window_s:
        return False
    return history.last_fee_direction != 0 and (delta > 0) != (history.last_fee_direction > 0)


def _rollback_cooldown(history: ChannelHistory, rails: Rails, now: float) -> str | None:
    if history.rolled_back_time is not None and now - history.rolled_back_time < rails.rollback_cooldown_s:
        until = history.rolled_back_time + rails.rollback_cooldown_s
        return f"cooling down after an automatic rollback (until {until:.0f})"
    return None


def _cooldown(history: ChannelHistory, rails: Rails, now: float) -> str | None:
    wait = _rollback_cooldown(history, rails, now)
    if wait:
        return wait
    if history.last_change_time is not None and now - history.last_change_time < rails.cooldown_s:
        return f"cooldown: last change {now - history.last_change_time:.0f} s ago (< {rails.cooldown_s} s)"
    if history.changes_last_day >= rails.max_changes_per_day:
        return f"already {history.changes_last_day} changes in the last 24 h (max_changes_per_day)"
    return None


def history_from_journal(rows: Sequence[Mapping[str, Any]], *, now: float) -> ChannelHistory:
    """A channel's :class:`ChannelHistory` from its journal rows (``Store.journal``), oldest first."""
    last_time, direction, per_day, rolled = None, 0, 0, None
    for row in rows:
        if row["state"] not in ("applied", "verified", "rolled_back"):
            continue
        when = row["applied_time"] or row["planned_time"]
        if row["rollback_of"] is not None and (row["detail"] or "").startswith("auto"):
            rolled = when
        if now - when < 86_400:
            per_day += 1
        if last_time is None or when >= last_time:
            last_time = when
            old, new = _ppm(row["old_policy"]), _ppm(row["new_policy"])
            direction = (new > old) - (new < old) if old is not None and new is not None else 0
    return ChannelHistory(last_time, direction, per_day, rolled)


def _ppm(text: str) -> int | None:
    try:
        return int(json.loads(text)["fee_ppm"])
    except (ValueError, KeyError, TypeError):
        return None


_INT_KEYS = {"max_step_ppm", "max_step_base_msat", "max_changes_per_day", "min_change_ppm", "rollback_min_forwards"}
_FLOAT_KEYS = {"max_step_share", "rollback_drop_share", "rollback_alpha"}
_DURATION_KEYS = {"cooldown": "cooldown_s", "flap_window": "flap_window_s", "rollback_window": "rollback_window_s",
                  "rollback_cooldown": "rollback_cooldown_s"}  # fmt: skip
_BOUND_KEYS = {f.name for f in fields(Bounds)}


def _bounds(table: Mapping[str, Any], where: str, problems: list[str], base: Bounds | None) -> Bounds:
    values = {}
    for key, raw in table.items():
        if isinstance(raw, bool) or not isinstance(raw, int):
            problems.append(f"{where}.{key}: must be an integer, not {raw!r}")
            continue
        values[key] = raw
    bounds = replace(base, **values) if base is not None else Bounds(**values)
    for name in ("fee_ppm", "base_fee_msat", "inbound_fee_ppm", "inbound_base_fee_msat"):
        lo, hi = bounds.limits(name)
        if lo is not None and hi is not None and lo > hi:
            problems.append(f"{where}: min_{name} {lo} is above max_{name} {hi}")
    return bounds


def rails_from_table(table: Mapping[str, Any] | None) -> Rails:
    """Rails from the ``[policy]`` TOML table.

    :raises ConfigError: listing every unknown key and bad value, with the accepted keys.
    """
    table = dict(table or {})
    problems: list[str] = []
    values: dict[str, Any] = {}
    bound_values = {k: table.pop(k) for k in list(table) if k in _BOUND_KEYS}
    bounds = _bounds(bound_values, "policy", problems, Rails().bounds)
    channel_bounds = {}
    for cid_text, sub in dict(table.pop("channels", {}) or {}).items():
        try:
            cid = ChannelId.parse(cid_text)
        except ValueError as exc:
            problems.append(f"policy.channels: {exc}")
            continue
        unknown = set(sub) - _BOUND_KEYS
        if unknown:
            problems.append(f"policy.channels.{cid_text}: unknown keys {', '.join(sorted(unknown))} "
                            f"(accepted: {', '.join(sorted(_BOUND_KEYS))})")  # fmt: skip
        channel_bounds[cid] = _bounds({k: v for k, v in sub.items() if k in _BOUND_KEYS},
                                      f"policy.channels.{cid_text}", problems, None)  # fmt: skip
    for key, raw in table.items():
        try:
            if key in _INT_KEYS:
                if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
                    raise ValueError(f"must be a non-negative integer, not {raw!r}")
                values[key] = raw
            elif key in _FLOAT_KEYS:
                if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 <= raw <= 1:
                    raise ValueError(f"must be a number from 0 to 1, not {raw!r}")
                values[key] = float(raw)
            elif key in _DURATION_KEYS:
                values[_DURATION_KEYS[key]] = parse_duration(raw)
            elif key in ("auto_rollback", "charge_lnd_rails"):
                if not isinstance(raw, bool):
                    raise ValueError("must be true or false")
                values[key] = raw
            elif key == "unmanaged":
                if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
                    raise ValueError("must be a list of channel ids or peer ids")
                values[key] = frozenset(_normalise(x) for x in raw)
            else:
                accepted = sorted({*_INT_KEYS, *_FLOAT_KEYS, *_DURATION_KEYS, *_BOUND_KEYS, "auto_rollback",
                                   "charge_lnd_rails", "unmanaged", "channels", "file"})  # fmt: skip
                raise ValueError(f"unknown setting (accepted: {', '.join(accepted)})")
        except ValueError as exc:
            problems.append(f"policy.{key}: {exc}")
    if problems:
        raise ConfigError(problems)
    return Rails(bounds=bounds, channel_bounds=channel_bounds, **values)


def _normalise(text: str) -> str:
    try:
        return str(ChannelId.parse(text))
    except ValueError:
        return text.strip()


def policy_after(channel: Channel, update: FeeUpdate | None) -> ChannelPolicy:
    """The channel's policy once ``update`` is applied."""
    return channel.local_policy if update is None else update.apply_to(channel.local_policy)
