"""Evaluating a policy file on one channel: select the policy (D.2), run its strategy, diff (D.7).

Per-channel problems never raise out of :meth:`PolicyEvaluator.evaluate`: a strategy
that fails, a parameter chain that misses a required value or inputs that lack a
window leave the channel unchanged and the decision carries the reason (charge-lnd
quirk 3 — disabling the channel — is never reproduced).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ...domain import ChannelId, FeeUpdate
from ...errors import ConfigError, StrategyError
from ..strategy import FeeProposal, FeeStrategy, build_strategy, strategy_parameters
from .apply import DesiredPolicy, common_properties, desired_policy, diff_policy
from .inputs import PolicyEnvironment, PolicyInputs, fee_context
from .keys import CIRCUITBREAKER_PROPERTIES
from .matchers import ChannelFacts, Check, InputsMissing, match_policy
from .policyset import Policy, PolicySet
from .strategies import UseConfig

__all__ = ["PolicyDecision", "PolicyEvaluator"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """The outcome for one channel.

    :ivar policy: the final policy's name (``default`` for the fallback,
        ``X (from FILE)`` through ``use_config``); None when nothing final matched.
    :ivar chain: the matched non-final sections before it, in file order.
    :ivar strategy: the strategy that decided (None when nothing final matched).
    :ivar update: the fields to change; None keeps the channel as it is.
    :ivar desired: the values the policy wants before diffing against the channel.
    :ivar reason: the strategy's explanation.
    :ivar checks: every matcher evaluated (all of them with ``explain=True``).
    :ivar notes: values kept or dropped and why.
    :ivar error: why the channel was kept after a failure, else None.
    :ivar params: the parameters the strategy was built with (its inputs from the file).
    :ivar sources: with ``explain``, the section each collected key came from (the last
        matched section that set it; keys of the policy file, not of a ``use_config`` file).
    """

    channel_id: ChannelId
    policy: str | None
    chain: tuple[str, ...] = ()
    strategy: str | None = None
    update: FeeUpdate | None = None
    desired: DesiredPolicy | None = None
    reason: str = ""
    checks: tuple[Check, ...] = ()
    notes: tuple[str, ...] = ()
    error: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return self.update is not None

    def explain(self) -> list[str]:
        """Human-readable lines: every matcher, the choice, the strategy's answer, the diff."""
        lines = [str(check) for check in self.checks]
        chain = f" after {', '.join(self.chain)}" if self.chain else ""
        lines.append(f"policy: {self.policy or '(none final: channel untouched)'}{chain}")
        taken = [f"{key} from [{section}]" for key, section in self.sources.items() if "." not in key]
        if taken:
            lines.append("values: " + ", ".join(taken))
        if self.strategy:
            inputs = ", ".join(f"{k}={v}" for k, v in self.params.items())
            lines.append(f"strategy: {self.strategy}({inputs}): {self.reason}")
        if self.desired is not None:
            wanted = {k: v for k, v in _fields(self.desired).items() if v is not None}
            if not self.desired.sub_delta_ppm_with_other_changes:
                del wanted["sub_delta_ppm_with_other_changes"]
            lines.append("desired: " + ", ".join(f"{k}={v}" for k, v in wanted.items()))
        lines.extend(f"note: {note}" for note in self.notes)
        if self.error:
            lines.append(f"error: {self.error} (channel kept unchanged)")
        lines.append(f"update: {self.update.fields_set() if self.update else 'none (keep)'}")
        return lines


def _fields(desired: DesiredPolicy) -> dict[str, Any]:
    return {name: getattr(desired, name) for name in DesiredPolicy.__slots__}  # type: ignore[attr-defined]


@dataclass(slots=True)
class _Selection:
    final: Policy | None
    chain: list[Policy]
    props: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)


def _select(policy_set: PolicySet, facts: ChannelFacts, explain: bool, checks: list[Check]) -> _Selection:
    """D.2: non-final matches accumulate, the first final match wins, then ``[default]``."""
    selection = _Selection(None, [])
    for policy in policy_set.policies:
        matched, made = match_policy(policy, facts, explain=explain)
        checks.extend(made)
        if not matched:
            continue
        _take(selection, policy, explain)
        if policy.strategy is not None:
            selection.final = policy
            return selection
        selection.chain.append(policy)
    default = policy_set.default
    if default is None:
        return selection
    _take(selection, default, explain)
    if default.strategy is None:
        selection.chain.append(default)
    else:
        selection.final = default
    return selection


def _take(selection: _Selection, policy: Policy, explain: bool) -> None:
    """Copy a matched section's keys over the collected ones (remembering where each came from when explaining)."""
    selection.props.update(policy.properties)
    if explain:
        selection.sources.update(dict.fromkeys(policy.properties, policy.name))


def _through_use_config(
    outer: Mapping[str, Any], inner: Mapping[str, Any], default_delta: int | None
) -> dict[str, Any]:
    """The properties that apply when another file decided (charge-lnd 0.3.1's ``use_config``).

    The other file's policy supplies the common properties (its strategy runs there);
    its delta, or its strategy's default delta, propagates, else the outer one stays;
    the inbound delta is the outer policy's.
    """
    props = dict(inner)
    delta = inner.get("min_fee_ppm_delta", default_delta)
    props["min_fee_ppm_delta"] = outer.get("min_fee_ppm_delta") if delta is None else delta
    props["min_inbound_fee_ppm_delta"] = outer.get("min_inbound_fee_ppm_delta")
    return {k: v for k, v in props.items() if v is not None}


class PolicyEvaluator:
    """Decides, channel by channel, what a validated policy file wants.

    :param policies: from :func:`~lnlens_core.fees.chargelnd.load_policy_file`.
    :param strategies: the registered strategies by name (``lens.strategies``), the
        same mapping the file was checked against.
    """

    def __init__(self, policies: PolicySet, strategies: Mapping[str, type[FeeStrategy]]) -> None:
        self.policies = policies
        self.strategies = strategies
        self._built: dict[tuple[int, tuple[str, ...]], tuple[FeeStrategy | str, dict[str, Any]]] = {}

    def evaluate_all(
        self, channels: Iterable[PolicyInputs], env: PolicyEnvironment, *, explain: bool = False
    ) -> list[PolicyDecision]:
        """:meth:`evaluate` for each channel, in order."""
        return [self.evaluate(inputs, env, explain=explain) for inputs in channels]

    def evaluate(self, inputs: PolicyInputs, env: PolicyEnvironment, *, explain: bool = False) -> PolicyDecision:
        """The decision for one channel.

        :param explain: evaluate and report every matcher, not only up to the first
            failing one (the decision is the same).
        :returns: a decision; never raises for a per-channel problem.
        """
        checks: list[Check] = []
        cid = inputs.channel.channel_id
        try:
            facts = ChannelFacts(inputs, env)
            selection = _select(self.policies, facts, explain, checks)
        except InputsMissing as exc:
            return PolicyDecision(cid, None, checks=tuple(checks), error=str(exc))
        chain = tuple(p.name for p in selection.chain)
        if selection.final is None:
            return PolicyDecision(cid, None, chain, checks=tuple(checks), notes=("no final policy matched",))
        try:
            decision = self._decide(facts, selection, chain, checks, explain)
        except InputsMissing as exc:
            decision = PolicyDecision(cid, selection.final.name, chain, checks=tuple(checks), error=str(exc))
        return replace(decision, sources=selection.sources) if explain else decision

    def _follow_use_config(
        self, facts: ChannelFacts, outer: _Selection, chain: tuple[str, ...], checks: list[Check], explain: bool
    ) -> tuple[_Selection, PolicySet, str, tuple[str, ...], str | None]:
        """Follow ``use_config`` into the other files (loaded and checked with this one).

        :returns: the deciding selection, its file's policies, the reported policy name,
            the chain, and the file in which nothing final matched (else None).
        """
        assert outer.final is not None
        name, inner, policy_set = outer.final.name, outer, self.policies
        while inner.final is not None and inner.final.strategy == "use_config":
            file = str(inner.props["config_file"]).removeprefix("file://").strip()
            policy_set = policy_set.nested[file]
            inner = _select(policy_set, facts, explain, checks)
            chain += tuple(f"{p.name} (from {file})" for p in inner.chain)
            if inner.final is None:
                return inner, policy_set, name, chain, file
            name = f"{inner.final.name} (from {file})"
        return inner, policy_set, name, chain, None

    def _decide(
        self,
        facts: ChannelFacts,
        outer: _Selection,
        chain: tuple[str, ...],
        checks: list[Check],
        explain: bool,
    ) -> PolicyDecision:
        inputs, env = facts.inputs, facts.env
        cid = inputs.channel.channel_id
        cb_keys = [k for k in CIRCUITBREAKER_PROPERTIES if k in outer.props]
        notes = [f"{k} not applied: lnlens does not drive circuitbreaker" for k in cb_keys]
        inner, policy_set, name, chain, unmatched = self._follow_use_config(facts, outer, chain, checks, explain)
        if unmatched is not None:
            why = f"nothing final matched in {unmatched}: only HTLC/CLTV/status applied"
            fallback = (FeeProposal(FeeUpdate(), why), outer.props, 0, UseConfig)
            return self._finish(inputs, env, name, chain, "use_config", *fallback, checks, notes)
        assert inner.final is not None and inner.final.strategy is not None
        strategy_name = inner.final.strategy
        strategy, params = self._strategy(policy_set, inner)

        def kept(**why: Any) -> PolicyDecision:
            return PolicyDecision(
                cid, name, chain, strategy_name, checks=tuple(checks), notes=tuple(notes), params=params, **why
            )

        if isinstance(strategy, str):
            return kept(error=strategy)
        try:
            proposal = strategy.propose(inputs.channel, fee_context(inputs, env))
        except Exception as exc:  # noqa: BLE001 - any strategy failure (third-party ones too) keeps the channel
            error = str(exc) if isinstance(exc, StrategyError) else f"strategy {strategy_name} failed: {exc!r}"
            return kept(error=error)
        if proposal is None:
            return kept(reason="nothing changes")
        if not isinstance(proposal, FeeProposal) or not isinstance(proposal.update, FeeUpdate):
            return kept(error=f"strategy {strategy_name} returned {proposal!r}, not a FeeProposal")
        cls = type(strategy)
        default_delta = getattr(cls, "default_min_fee_ppm_delta", None)
        props = inner.props if inner is outer else _through_use_config(outer.props, inner.props, default_delta)
        args = (proposal, props, default_delta or 0, cls)
        decision = self._finish(inputs, env, name, chain, strategy_name, *args, checks, notes)
        return replace(decision, params=params)

    def _strategy(self, policy_set: PolicySet, selection: _Selection) -> tuple[FeeStrategy | str, dict[str, Any]]:
        """The strategy built from the merged properties and its parameters, cached per chain.

        An error text replaces the strategy when it cannot be built (a required
        parameter missing on this chain).
        """
        assert selection.final is not None and selection.final.strategy is not None
        key = (id(policy_set), (*(p.name for p in selection.chain), selection.final.name))
        if key not in self._built:
            cls = self.strategies.get(selection.final.strategy)
            if cls is None:  # the file was checked against other strategies than this evaluator has
                self._built[key] = (f"{selection.final.where('strategy')}: strategy is not registered", {})
                return self._built[key]
            accepted = strategy_parameters(cls)
            params = {k: v for k, v in selection.props.items() if k in accepted}
            built: FeeStrategy | str
            try:
                built = build_strategy(cls, params, where=selection.final.where("strategy"))
            except ConfigError as exc:
                built = str(exc)
            self._built[key] = (built, params)
        return self._built[key]

    def _finish(
        self,
        inputs: PolicyInputs,
        env: PolicyEnvironment,
        name: str,
        chain: tuple[str, ...],
        strategy_name: str,
        proposal: FeeProposal,
        props: Mapping[str, Any],
        default_delta: int,
        cls: type[FeeStrategy],
        checks: list[Check],
        notes: list[str],
    ) -> PolicyDecision:
        channel = inputs.channel
        common, more = common_properties(props, channel, default_min_fee_ppm_delta=default_delta)
        notes.extend(more)
        if common["inbound_level_ppm"] is not None and not getattr(cls, "uses_inbound_level_ppm", False):
            notes.append(f"inbound_level_ppm ignored: strategy {strategy_name} does not use it")
            common["inbound_level_ppm"] = None
        if not getattr(cls, "applies_common_properties", True):
            common.update(min_htlc_msat=None, max_htlc_msat=None, cltv_delta=None)
        desired = desired_policy(proposal.update, common, strict=self.policies.strict)
        result, diff_notes = diff_policy(
            channel.local_policy,
            desired,
            env.capabilities,
            channel_active=channel.active,
            min_htlc_floor_msat=channel.min_htlc_floor_msat,
            max_htlc_cap_msat=channel.capacity_msat if channel.max_htlc_cap_msat is None else channel.max_htlc_cap_msat,
        )
        notes.extend(diff_notes)
        return PolicyDecision(
            channel.channel_id,
            name,
            chain,
            strategy_name,
            result,
            desired,
            proposal.reason,
            tuple(checks),
            tuple(notes),
        )
