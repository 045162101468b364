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

__all__ = ["Check", "ChannelFacts", "InputsMissing", "match_policy", "BLOCK_INTERVAL_S"]

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
    op: str = "vs"
    """How value and threshold compare: ``>=``, ``<=``, ``in`` or ``==``."""

    def __str__(self) -> str:
        value = "unknown" if self.value is None else _fmt(self.value)
        threshold = self.threshold if isinstance(self.threshold, str) else _fmt(self.threshold)
        outcome = "pass" if self.passed else "FAIL"
        text = f"[{self.policy}] {self.key}: {value} {self.op} {threshold} {self.unit}: {outcome}"
        return f"{text} ({self.note})" if self.note else text


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.6g}"
    if isinstance(value, frozenset):
        return "{" + ", ".join(sorted(value)) + "}"
    return str(value)


def _ratio(part: int, total: int) -> float | None:
    return part / total if total else None


class ChannelFacts:
    """The quantities criteria compare, computed at most once per channel and run."""

    __slots__ = ("inputs", "env", "_memo")

    def __init__(self, inputs: PolicyInputs, env: PolicyEnvironment) -> None:
        self.inputs = inputs
        self.env = env
        self._memo: dict[Any, Any] = {}

    def balances(self) -> tuple[int, int]:
        if "balances" not in self._memo:
            self._memo["balances"] = chargelnd_balances_msat(self.inputs.channel)
        return self._memo["balances"]

    def shared(self, active: bool | None) -> tuple[int, int, int]:
        """``(count, Σlocal, Σlocal+remote)`` over shared channels (all, active or inactive)."""
        key = ("shared", active)
        if key not in self._memo:
            chans = [c for c in self.inputs.shared_channels() if active is None or c.active is active]
            balances = [chargelnd_balances_msat(c) for c in chans]
            self._memo[key] = (len(chans), sum(b[0] for b in balances), sum(b[0] + b[1] for b in balances))
        return self._memo[key]

    def activity(self, policy: Policy) -> ActivityStats:
        window = policy.setting("chan.activity_period")
        try:
            return self.inputs.activity[window]
        except KeyError:
            cid = self.inputs.channel.channel_id
            raise InputsMissing(f"activity over {window} s for {cid} was not provided") from None

    def peer(self, name: str) -> Any:
        policy = self.inputs.peer_policy
        return None if policy is None else getattr(policy, name)

    def ratio(self) -> float | None:
        if "ratio" not in self._memo:
            local, remote = self.balances()
            self._memo["ratio"] = _ratio(local, local + remote)
        return self._memo["ratio"]

    def next_expiry(self) -> int | None:
        pending = self.inputs.channel.pending_htlcs
        return min(h.expiry_height for h in pending) - self.env.block_height if pending else None


def _sat(msat: int | None) -> float | None:
    return None if msat is None else msat / 1000


def _activity_ratio(stats: ActivityStats, by_count: bool) -> float | None:
    if by_count:
        return _ratio(stats.htlcs_in, stats.htlcs_in + stats.htlcs_out)
    return _ratio(stats.in_msat, stats.in_msat + stats.out_msat)


Quantity = Callable[[Policy, ChannelFacts], Any]

_CHAN: dict[str, Quantity] = {
    "capacity": lambda p, f: f.inputs.channel.capacity_msat / 1000,
    "ratio": lambda p, f: f.ratio(),
    "local_balance": lambda p, f: f.balances()[0] / 1000,
    "remote_balance": lambda p, f: f.balances()[1] / 1000,
    "base_fee_msat": lambda p, f: f.peer("base_fee_msat"),
    "fee_ppm": lambda p, f: f.peer("fee_ppm"),
    "age": lambda p, f: f.env.block_height - f.inputs.channel.channel_id.block,
    "htlcs_in": lambda p, f: f.activity(p).htlcs_in,
    "htlcs_out": lambda p, f: f.activity(p).htlcs_out,
    "sats_in": lambda p, f: f.activity(p).in_msat / 1000,
    "sats_out": lambda p, f: f.activity(p).out_msat / 1000,
    "htlcs_ratio": lambda p, f: _activity_ratio(f.activity(p), True),
    "sats_ratio": lambda p, f: _activity_ratio(f.activity(p), False),
    "count_pending_htlcs": lambda p, f: len(f.inputs.channel.pending_htlcs),
    "next_pending_htlc_expiry": lambda p, f: f.next_expiry(),
    "initiator": lambda p, f: f.inputs.channel.initiator,
    "private": lambda p, f: f.inputs.channel.private,
    "disabled": lambda p, f: f.peer("disabled"),
    "id": lambda p, f: str(f.inputs.channel.channel_id),
}

_NODE: dict[str, Quantity] = {
    "id": lambda p, f: f.inputs.channel.peer_id,
    "channels": lambda p, f: f.inputs.peer_node_channels,
    "capacity": lambda p, f: _sat(f.inputs.peer_node_capacity_msat),
    "shared_channels_active": lambda p, f: f.shared(True)[0],
    "shared_channels_inactive": lambda p, f: f.shared(False)[0],
    "shared_capacity_active": lambda p, f: f.shared(True)[2] / 1000,
    "shared_capacity_inactive": lambda p, f: f.shared(False)[2] / 1000,
    "shared_ratio": lambda p, f: _ratio(*f.shared(None)[1:]),
    "shared_ratio_active": lambda p, f: _ratio(*f.shared(True)[1:]),
    "shared_ratio_inactive": lambda p, f: _ratio(*f.shared(False)[1:]),
}


def _fee_rate(p: Policy, f: ChannelFacts) -> float:
    target = max(2, p.setting("onchain.conf_target") or 6)
    try:
        return f.env.onchain_fee_rates[target]
    except KeyError:
        raise InputsMissing(f"no on-chain fee estimate for a {target}-block target was provided") from None


_ONCHAIN: dict[str, Quantity] = {
    "fee_rate": _fee_rate,
    "synced_to_chain": lambda p, f: f.env.synced_to_chain,
}

_QUANTITIES = {"chan": _CHAN, "node": _NODE, "onchain": _ONCHAIN}


_OPS = {"min": ">=", "max": "<=", "list": "in", "bool": "=="}

Measure = tuple[bool, Any, str, str]
"""``(passed, value, unit, note)`` of one test."""


def _measure(policy: Policy, spec: CriterionSpec, facts: ChannelFacts) -> Measure | None:
    criterion = spec.criterion
    if criterion.kind == "param":
        if spec.key == "chan.activity_period":
            return _young_channel(policy, spec, facts)
        return None
    value = _QUANTITIES[spec.namespace][criterion.quantity](policy, facts)
    if value is None:
        return False, None, criterion.unit, "undefined for this channel"
    if criterion.kind == "min":
        passed = value >= spec.value
    elif criterion.kind == "max":
        passed = value <= spec.value
    elif criterion.kind == "list":
        passed = value in spec.value
    else:
        passed = value == spec.value
    return passed, value, criterion.unit, ""


def _young_channel(policy: Policy, spec: CriterionSpec, facts: ChannelFacts) -> Measure:
    # Fixed quirk 4: only an explicit `true` ignores the channel's age; absent or `false`
    # keeps channels younger than the window out (charge-lnd 0.3.1, replicated under
    # compat=strict, admits them only on an explicit `false`).
    age_s = (facts.env.block_height - facts.inputs.channel.channel_id.block) * BLOCK_INTERVAL_S
    if policy.setting("chan.activity_period_ignore_channel_age") is (not policy.strict):
        return True, age_s, "s of age", "channel age ignored"
    passed = age_s >= spec.value
    return passed, age_s, "s of age (blocks x 600)", "" if passed else "channel younger than the activity window"


def match_policy(policy: Policy, facts: ChannelFacts, *, explain: bool = False) -> tuple[bool, list[Check]]:
    """Whether ``policy``'s criteria all hold for the channel, and (with ``explain``) the tests made.

    A section without criteria matches every channel. Without ``explain`` the first
    failing test stops the evaluation (charge-lnd's short-circuit) and no test is
    recorded; with it every test is made and reported, and the outcome is the same:
    an input missing for a test after a failed one is reported as that test failing.

    :param facts: ``ChannelFacts(inputs, env)``, shared by every section tried on the channel.
    :raises InputsMissing: the inputs lack an activity window or a fee estimate the
        section needs (before any of its tests failed).
    """
    checks: list[Check] = []
    matched = True
    for spec in policy.criteria:  # already in evaluation order (see Policy.criteria)
        try:
            measure = _measure(policy, spec, facts)
        except InputsMissing as exc:
            if matched or not explain:
                raise
            measure = (False, None, spec.criterion.unit, str(exc))
        if measure is None:
            continue
        passed, value, unit, note = measure
        if explain:
            op = _OPS.get(spec.criterion.kind, ">=")  # a `param` test is the young-channel age >= window
            checks.append(Check(policy.name, spec.key, value, spec.value, unit, passed, note, op))
        if not passed:
            matched = False
            if not explain:
                return False, checks
    return matched, checks
