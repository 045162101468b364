"""Matching one policy section against one channel, with an explanation of every test.

Namespaces are evaluated in the order they first appear in the section and every
numeric bound is inclusive, as in charge-lnd. A quantity that is undefined for the
channel (a ratio of 0/0, an unknown peer policy, no pending HTLC) fails its test
instead of skipping the channel (charge-lnd quirk 7).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .inputs import ActivityStats, PolicyEnvironment, PolicyInputs, chargelnd_balances_msat
from .policyset import CriterionSpec, Policy

__all__ = ["Check", "InputsMissing", "match_policy", "BLOCK_INTERVAL_S"]

BLOCK_INTERVAL_S = 600
"""charge-lnd's block time when comparing a channel's age with an activity window."""


class InputsMissing(Exception):
    """The inputs lack something the policy file needs (an activity window, a fee estimate)."""


@dataclass(frozen=True, slots=True)
class Check:
    """One matcher evaluated on one channel: value, threshold, unit and outcome."""

    policy: str
    key: str
    value: Any
    threshold: Any
    unit: str
    passed: bool
    note: str = ""

    def __str__(self) -> str:
        op = {"min": ">=", "max": "<="}.get(self.key.split(".", 1)[-1][:3], "vs")
        value = "unknown" if self.value is None else _fmt(self.value)
        threshold = self.threshold if isinstance(self.threshold, str) else _fmt(self.threshold)
        text = f"[{self.policy}] {self.key}: {value} {op} {threshold} {self.unit}: {'pass' if self.passed else 'FAIL'}"
        return f"{text} ({self.note})" if self.note else text


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.6g}"
    if isinstance(value, frozenset):
        return "{" + ", ".join(sorted(value)) + "}"
    return str(value)


def _ratio(part: int, total: int) -> float | None:
    return part / total if total else None


def _balances(inputs: PolicyInputs) -> tuple[int, int]:
    return chargelnd_balances_msat(inputs.channel)


def _shared(inputs: PolicyInputs, active: bool | None) -> tuple[int, int, int]:
    """``(count, Σlocal, Σlocal+remote)`` over shared channels (all, active or inactive)."""
    chans = [c for c in inputs.shared_channels() if active is None or c.active is active]
    balances = [chargelnd_balances_msat(c) for c in chans]
    return len(chans), sum(b[0] for b in balances), sum(b[0] + b[1] for b in balances)


def _activity(policy: Policy, inputs: PolicyInputs) -> ActivityStats:
    window = policy.setting("chan.activity_period")
    try:
        return inputs.activity[window]
    except KeyError:
        raise InputsMissing(f"activity over {window} s for {inputs.channel.channel_id} was not provided") from None


def _peer(inputs: PolicyInputs, name: str) -> Any:
    return None if inputs.peer_policy is None else getattr(inputs.peer_policy, name)


def _sat(msat: int | None) -> float | None:
    return None if msat is None else msat / 1000


Quantity = Callable[[Policy, PolicyInputs, PolicyEnvironment], Any]

_CHAN: dict[str, Quantity] = {
    "capacity": lambda p, i, e: i.channel.capacity_msat / 1000,
    "ratio": lambda p, i, e: _ratio(_balances(i)[0], sum(_balances(i))),
    "local_balance": lambda p, i, e: _balances(i)[0] / 1000,
    "remote_balance": lambda p, i, e: _balances(i)[1] / 1000,
    "base_fee_msat": lambda p, i, e: _peer(i, "base_fee_msat"),
    "fee_ppm": lambda p, i, e: _peer(i, "fee_ppm"),
    "age": lambda p, i, e: e.block_height - i.channel.channel_id.block,
    "htlcs_in": lambda p, i, e: _activity(p, i).htlcs_in,
    "htlcs_out": lambda p, i, e: _activity(p, i).htlcs_out,
    "sats_in": lambda p, i, e: _activity(p, i).in_msat / 1000,
    "sats_out": lambda p, i, e: _activity(p, i).out_msat / 1000,
    "htlcs_ratio": lambda p, i, e: _ratio(
        _activity(p, i).htlcs_in, _activity(p, i).htlcs_in + _activity(p, i).htlcs_out
    ),
    "sats_ratio": lambda p, i, e: _ratio(_activity(p, i).in_msat, _activity(p, i).in_msat + _activity(p, i).out_msat),
    "count_pending_htlcs": lambda p, i, e: len(i.channel.pending_htlcs),
    "next_pending_htlc_expiry": lambda p, i, e: (
        min(h.expiry_height for h in i.channel.pending_htlcs) - e.block_height if i.channel.pending_htlcs else None
    ),
    "initiator": lambda p, i, e: i.channel.initiator,
    "private": lambda p, i, e: i.channel.private,
    "disabled": lambda p, i, e: _peer(i, "disabled"),
    "id": lambda p, i, e: str(i.channel.channel_id),
}

_NODE: dict[str, Quantity] = {
    "id": lambda p, i, e: i.channel.peer_id,
    "channels": lambda p, i, e: i.peer_node_channels,
    "capacity": lambda p, i, e: _sat(i.peer_node_capacity_msat),
    "shared_channels_active": lambda p, i, e: _shared(i, True)[0],
    "shared_channels_inactive": lambda p, i, e: _shared(i, False)[0],
    "shared_capacity_active": lambda p, i, e: _shared(i, True)[2] / 1000,
    "shared_capacity_inactive": lambda p, i, e: _shared(i, False)[2] / 1000,
    "shared_ratio": lambda p, i, e: _ratio(*_shared(i, None)[1:]),
    "shared_ratio_active": lambda p, i, e: _ratio(*_shared(i, True)[1:]),
    "shared_ratio_inactive": lambda p, i, e: _ratio(*_shared(i, False)[1:]),
}


def _fee_rate(p: Policy, i: PolicyInputs, e: PolicyEnvironment) -> float:
    target = max(2, p.setting("onchain.conf_target") or 6)
    try:
        return e.onchain_fee_rates[target]
    except KeyError:
        raise InputsMissing(f"no on-chain fee estimate for a {target}-block target was provided") from None


_ONCHAIN: dict[str, Quantity] = {
    "fee_rate": _fee_rate,
    "synced_to_chain": lambda p, i, e: e.synced_to_chain,
}

_QUANTITIES = {"chan": _CHAN, "node": _NODE, "onchain": _ONCHAIN}


def _check(policy: Policy, spec: CriterionSpec, inputs: PolicyInputs, env: PolicyEnvironment) -> Check | None:
    criterion = spec.criterion
    if criterion.kind == "param":
        if spec.key == "chan.activity_period":
            return _young_channel_check(policy, spec, inputs, env)
        return None
    value = _QUANTITIES[spec.namespace][criterion.quantity](policy, inputs, env)
    if value is None:
        return Check(policy.name, spec.key, None, spec.value, criterion.unit, False, "undefined for this channel")
    if criterion.kind == "min":
        passed = value >= spec.value
    elif criterion.kind == "max":
        passed = value <= spec.value
    elif criterion.kind == "list":
        passed = value in spec.value
    else:
        passed = value == spec.value
    return Check(policy.name, spec.key, value, spec.value, criterion.unit, passed)


def _young_channel_check(policy: Policy, spec: CriterionSpec, inputs: PolicyInputs, env: PolicyEnvironment) -> Check:
    # Fixed quirk 4: only an explicit `true` ignores the channel's age; absent or `false`
    # keeps channels younger than the window out (charge-lnd 0.3.1 admitted them only on `false`).
    age_s = (env.block_height - inputs.channel.channel_id.block) * BLOCK_INTERVAL_S
    if policy.setting("chan.activity_period_ignore_channel_age") is True:
        return Check(policy.name, spec.key, age_s, spec.value, "s of age", True, "channel age ignored")
    passed = age_s >= spec.value
    note = "" if passed else "channel younger than the activity window"
    return Check(policy.name, spec.key, age_s, spec.value, "s of age (blocks x 600)", passed, note)


def match_policy(
    policy: Policy, inputs: PolicyInputs, env: PolicyEnvironment, *, explain: bool = False
) -> tuple[bool, list[Check]]:
    """Whether ``policy``'s criteria all hold for the channel, and the tests made.

    A section without criteria matches every channel. Without ``explain`` the first
    failing test stops the evaluation (charge-lnd's short-circuit); with it every
    test is made and reported, and the outcome is the same.

    :raises InputsMissing: the inputs lack an activity window or a fee estimate the
        section needs.
    """
    checks: list[Check] = []
    matched = True
    for namespace in policy.namespaces:
        for spec in policy.criteria:
            if spec.namespace != namespace:
                continue
            check = _check(policy, spec, inputs, env)
            if check is None:
                continue
            checks.append(check)
            if not check.passed:
                matched = False
                if not explain:
                    return False, checks
    return matched, checks
