"""The apply-step diff (CHARGE-LND.md D.7): current policy + desired values -> one FeeUpdate or none.

Pure: no I/O. Differences from charge-lnd 0.3.1, all documented in docs/charge-lnd.md:
the update carries only the fields that change, so a ``fee_ppm`` move smaller than
``min_fee_ppm_delta`` is never sent along with another change (quirk 5);
``max_htlc_msat = 0`` means "leave it" instead of an update on every run; fields
the backend cannot set are dropped with a note rather than sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ...backend import Capability
from ...domain import Channel, ChannelPolicy, FeeUpdate

__all__ = ["DesiredPolicy", "common_properties", "desired_policy", "diff_policy"]


@dataclass(frozen=True, slots=True)
class DesiredPolicy:
    """What the policy wants on a channel; None means undefined (keep the current value)."""

    base_fee_msat: int | None = None
    fee_ppm: int | None = None
    inbound_base_fee_msat: int | None = None
    inbound_fee_ppm: int | None = None
    inbound_level_ppm: int | None = None
    min_htlc_msat: int | None = None
    max_htlc_msat: int | None = None
    cltv_delta: int | None = None
    disabled: bool | None = None
    min_fee_ppm_delta: int = 0
    min_inbound_fee_ppm_delta: int | None = None
    """None: the same as ``min_fee_ppm_delta``."""
    sub_delta_ppm_with_other_changes: bool = False
    """charge-lnd 0.3.1's quirk 5 (``compat = strict``): a ``fee_ppm`` move below the delta
    is sent anyway when another field changes."""


def common_properties(
    props: Mapping[str, Any], channel: Channel, *, default_min_fee_ppm_delta: int = 0
) -> tuple[dict[str, Any], list[str]]:
    """The common properties of a property map as :class:`DesiredPolicy` fields, with notes.

    ``max_htlc_msat_ratio`` (clamped to 0..1; 0 ignored) gives
    ``int(ratio × (capacity − remote reserve in sat) × 1000)``, multiplied in
    charge-lnd's order (the product in sat first, then msat), so floating point
    rounds the same way; with ``max_htlc_msat`` also set the smaller wins.
    ``max_htlc_msat = 0`` is ignored.
    """
    notes: list[str] = []
    out: dict[str, Any] = {
        "min_htlc_msat": props.get("min_htlc_msat"),
        "cltv_delta": props.get("time_lock_delta"),
        "inbound_level_ppm": props.get("inbound_level_ppm"),
        "min_fee_ppm_delta": props.get("min_fee_ppm_delta", default_min_fee_ppm_delta),
        "min_inbound_fee_ppm_delta": props.get("min_inbound_fee_ppm_delta"),
    }
    max_htlc = props.get("max_htlc_msat")
    if max_htlc == 0:
        notes.append("max_htlc_msat = 0 ignored (it would be resent on every run)")
        max_htlc = None
    ratio = props.get("max_htlc_msat_ratio")
    if ratio is not None and ratio == ratio:  # NaN is ignored like 0
        ratio = min(1.0, max(0.0, ratio))
        if ratio > 0:
            sendable_sat = (channel.capacity_msat - channel.remote_reserve_msat) // 1000
            by_ratio = int(ratio * sendable_sat * 1000)
            max_htlc = by_ratio if max_htlc is None else min(max_htlc, by_ratio)
    out["max_htlc_msat"] = max_htlc
    return out, notes


def desired_policy(update: FeeUpdate, common: Mapping[str, Any], *, strict: bool = False) -> DesiredPolicy:
    """A strategy's fields, with the common properties filling what it left undefined.

    :param common: from :func:`common_properties`.
    :param strict: replicate charge-lnd 0.3.1's quirk 5 (``compat = strict``).
    """
    return DesiredPolicy(
        base_fee_msat=update.base_fee_msat,
        fee_ppm=update.fee_ppm,
        inbound_base_fee_msat=update.inbound_base_fee_msat,
        inbound_fee_ppm=update.inbound_fee_ppm,
        inbound_level_ppm=common["inbound_level_ppm"],
        min_htlc_msat=update.min_htlc_msat if update.min_htlc_msat is not None else common["min_htlc_msat"],
        max_htlc_msat=update.max_htlc_msat if update.max_htlc_msat is not None else common["max_htlc_msat"],
        cltv_delta=update.cltv_delta if update.cltv_delta is not None else common["cltv_delta"],
        disabled=bool(update.disabled),  # every strategy but `disable` (re-)enables the channel
        min_fee_ppm_delta=common["min_fee_ppm_delta"],
        min_inbound_fee_ppm_delta=common["min_inbound_fee_ppm_delta"],
        sub_delta_ppm_with_other_changes=strict,
    )


def _inbound(
    current: ChannelPolicy, desired: DesiredPolicy, new_ppm: int | None, changes: dict[str, Any], notes: list[str]
) -> None:
    in_ppm = desired.inbound_fee_ppm
    if desired.inbound_level_ppm is not None:
        out_ppm = new_ppm if new_ppm is not None else current.fee_ppm
        in_ppm = min(0, desired.inbound_level_ppm - out_ppm)
    base_changes = (
        desired.inbound_base_fee_msat is not None and desired.inbound_base_fee_msat != current.inbound_base_fee_msat
    )
    if base_changes:
        changes["inbound_base_fee_msat"] = desired.inbound_base_fee_msat
    if in_ppm is None or in_ppm == current.inbound_fee_ppm:
        return
    delta = (
        desired.min_fee_ppm_delta if desired.min_inbound_fee_ppm_delta is None else desired.min_inbound_fee_ppm_delta
    )
    if not base_changes and abs(current.inbound_fee_ppm - in_ppm) < delta and in_ppm != 0:
        notes.append(
            f"inbound_fee_ppm {current.inbound_fee_ppm} -> {in_ppm} kept: below min_inbound_fee_ppm_delta={delta}"
        )
        return
    changes["inbound_fee_ppm"] = in_ppm


_NEEDS = {
    "min_htlc_msat": Capability.HTLC_LIMITS,
    "max_htlc_msat": Capability.HTLC_LIMITS,
    "cltv_delta": Capability.CLTV_DELTA,
    "disabled": Capability.DISABLE_CHANNEL,
}


def _drop_unsupported(changes: dict[str, Any], capabilities: frozenset[Capability], notes: list[str]) -> None:
    for name, capability in _NEEDS.items():
        if name in changes and capability not in capabilities:
            notes.append(f"{name} -> {changes.pop(name)} not applied: this backend cannot set it")
    positive = [n for n in ("inbound_base_fee_msat", "inbound_fee_ppm") if (changes.get(n) or 0) > 0]
    if positive and Capability.POSITIVE_INBOUND_FEES not in capabilities:
        for name in positive:
            notes.append(f"{name} -> {changes.pop(name)} not applied: this node does not accept positive inbound fees")


def _outbound(current: ChannelPolicy, desired: DesiredPolicy, changes: dict[str, Any], notes: list[str]) -> int | None:
    """Outbound base and ppm; returns the new ppm when it changes. A negative outbound fee is never sent."""
    for name in ("base_fee_msat", "fee_ppm"):
        if (getattr(desired, name) or 0) < 0:
            notes.append(f"{name} {getattr(desired, name)} not applied: an outbound fee cannot be negative")
            desired = replace(desired, **{name: None})
    if desired.base_fee_msat is not None and desired.base_fee_msat != current.base_fee_msat:
        changes["base_fee_msat"] = desired.base_fee_msat
    if desired.fee_ppm is None or desired.fee_ppm == current.fee_ppm:
        return None
    if abs(desired.fee_ppm - current.fee_ppm) < desired.min_fee_ppm_delta:
        delta = desired.min_fee_ppm_delta
        notes.append(f"fee_ppm {current.fee_ppm} -> {desired.fee_ppm} kept: below min_fee_ppm_delta={delta}")
        return None
    changes["fee_ppm"] = desired.fee_ppm
    return desired.fee_ppm


def _limits(
    current: ChannelPolicy,
    desired: DesiredPolicy,
    min_htlc_floor_msat: int | None,
    max_htlc_cap_msat: int | None,
    changes: dict[str, Any],
) -> None:
    """HTLC limits (raised to the floor, lowered to the cap) and the CLTV delta."""
    if desired.min_htlc_msat is not None:
        value = max(desired.min_htlc_msat, min_htlc_floor_msat or 0)
        if value != current.min_htlc_msat:
            changes["min_htlc_msat"] = value
    if desired.max_htlc_msat is not None:
        value = desired.max_htlc_msat if max_htlc_cap_msat is None else min(desired.max_htlc_msat, max_htlc_cap_msat)
        if value != current.max_htlc_msat:
            changes["max_htlc_msat"] = value
    if desired.cltv_delta is not None and desired.cltv_delta != current.cltv_delta:
        changes["cltv_delta"] = desired.cltv_delta


def diff_policy(
    current: ChannelPolicy,
    desired: DesiredPolicy,
    capabilities: frozenset[Capability],
    *,
    channel_active: bool = True,
    min_htlc_floor_msat: int | None = None,
    max_htlc_cap_msat: int | None = None,
) -> tuple[FeeUpdate | None, list[str]]:
    """The update to send, following charge-lnd's apply step (D.7) with its quirks fixed.

    - ``fee_ppm`` changes iff defined, different and ``|new − current| ≥ min_fee_ppm_delta``;
      ``base_fee_msat`` iff defined and different.
    - Inbound fees only with ``Capability.INBOUND_FEES``: ``inbound_level_ppm`` sets
      ``inbound_fee_ppm = min(0, level − outbound ppm after this update)``; an inbound
      ppm move below ``min_inbound_fee_ppm_delta`` is kept unless the inbound base
      changes too or the new value is 0.
    - ``min_htlc_msat`` is raised to ``min_htlc_floor_msat``; ``max_htlc_msat`` is
      lowered to ``max_htlc_cap_msat``.
    - ``disabled`` changes only on an active channel.
    - Only changed fields are set; fields the backend cannot set are dropped.

    :returns: the update (None when nothing changes) and notes explaining every
        value that was kept or dropped.
    """
    changes: dict[str, Any] = {}
    notes: list[str] = []
    new_ppm = _outbound(current, desired, changes, notes)
    inbound = (desired.inbound_base_fee_msat, desired.inbound_fee_ppm, desired.inbound_level_ppm)
    if Capability.INBOUND_FEES in capabilities:
        _inbound(current, desired, new_ppm, changes, notes)
    elif any(v is not None for v in inbound):
        notes.append("inbound fees not applied: this backend cannot set them")
    _limits(current, desired, min_htlc_floor_msat, max_htlc_cap_msat, changes)
    if desired.disabled is not None and desired.disabled != current.disabled:
        if channel_active:
            changes["disabled"] = desired.disabled
        else:
            notes.append("status kept: the channel is not active")
    _drop_unsupported(changes, capabilities, notes)
    # charge-lnd sends the status apart (UpdateChanStatus): only a policy field carries the sub-delta ppm along
    if desired.sub_delta_ppm_with_other_changes and changes.keys() - {"disabled"} and new_ppm is None:
        if desired.fee_ppm is not None and desired.fee_ppm != current.fee_ppm:
            changes["fee_ppm"] = desired.fee_ppm
            notes.append(f"fee_ppm {desired.fee_ppm} sent below the delta along with other changes (compat=strict)")
    return (FeeUpdate(**changes) if changes else None), notes
