"""The fee engine: choose a strategy per channel, decide, apply the rails and vetoes, plan.

Selection per channel: ``lens.select_strategy(channel, node)`` first — a plugin's
``select_fee_strategy`` answering non-None overrides everything — and, when no plugin
answers, the policy file through :class:`~lnlens_core.fees.chargelnd.PolicyEvaluator`.
That is the ``trylast`` default of DESIGN 5.3 in effect: the policy file cannot be a
hookimpl because matching needs more than the hook's arguments (peer policy, activity,
fee estimates), so the engine calls it directly after the hook defers.

Then the rails (:mod:`.rails`) clamp what any strategy proposed, and
``check_fee_update`` may veto. :meth:`FeeEngine.plan` is pure (no writes to the node or
the store); :mod:`.journal` applies a plan, reconciles and rolls back.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from ..backend import NodeBackend, unsupported_fields
from ..domain import Channel, ChannelId, FeeUpdate, ForwardStatus
from ..errors import ConfigError, StrategyError
from ..events import FeeUpdatePlanned, FeeUpdateVetoed, StrategyFailed
from ..lens import Lens
from .assemble import Assembled, assemble, reads_model
from .builtin import CHARGE_LND_STRATEGY_NAMES
from .chargelnd import PolicyEvaluator, PolicyInputs, PolicySet, fee_context, load_policy_file
from .plan import Plan, PlannedChange
from .rails import Bounds, ChannelHistory, Rails, apply_rails, guarded_bounds, history_from_journal, rails_from_table
from .signals import ModelPrediction
from .strategy import FeeProposal, StrategyChoice, build_strategy

__all__ = ["FeeEngine", "POLICY_FILE", "UNKNOWN_POLICY"]

log = logging.getLogger(__name__)

POLICY_FILE = "policy-file"
_NO_HISTORY = ChannelHistory()


UNKNOWN_POLICY = "not in the node's graph: its current policy is unknown, so lnlens does not change it"
"""The plan's reason for a channel whose own policy the node cannot tell (``Channel.local_policy`` None)."""


class FeeEngine:
    """Plans (and, through :mod:`.journal`, applies) fee changes on one backend.

    :param policies: the loaded policy file; None: only plugins' ``select_fee_strategy`` decides.
    :param rails: from the ``[policy]`` table (:func:`rails_from_table`).
    :param predictions: a model's predictions per channel for ``model_driven`` (see :mod:`.signals`).
    """

    def __init__(
        self,
        lens: Lens,
        backend: NodeBackend,
        *,
        policies: PolicySet | None,
        rails: Rails | None = None,
        predictions: Mapping[ChannelId, ModelPrediction] | None = None,
        policy_file: str | None = None,
    ) -> None:
        self.lens = lens
        self.backend = backend
        self.policies = policies
        self.rails = rails or Rails()
        self.predictions = predictions
        self.policy_file = policy_file
        # Without given predictions, a file that uses model_driven (and only such a file: the model costs
        # time) gets the serving model's, fresh for every plan, so a long-lived engine never acts on stale ones.
        self.runs_model = predictions is None and policies is not None and reads_model(policies, lens.strategies)
        self.evaluator = PolicyEvaluator(policies, lens.strategies) if policies is not None else None

    @classmethod
    def from_config(
        cls, lens: Lens, backend: NodeBackend, *, policy_path: Path | None = None, **kwargs: object
    ) -> FeeEngine:
        """An engine from the settings: ``policy`` (the INI file) and the ``[policy]`` rails table.

        :raises ConfigError: the file or the rails have problems (all listed).
        """
        path = policy_path or lens.config.policy_path
        policies = load_policy_file(path, lens.strategies) if path is not None else None
        rails = rails_from_table(lens.config.backends.get("policy"))
        return cls(lens, backend, policies=policies, rails=rails, policy_file=str(path) if path else None, **kwargs)  # type: ignore[arg-type]

    # -- planning -------------------------------------------------------------------------

    def plan(
        self,
        *,
        channels: Sequence[Channel] | None = None,
        only: ChannelId | None = None,
        explain: bool = False,
        emit: bool = True,
        applying: bool = False,
    ) -> Plan:
        """What the engine would change now. Reads the node and the store; writes nothing.

        :param only: plan one channel (``explain CHANNEL``).
        :param emit: tell ``track_event`` (FeeUpdatePlanned, FeeUpdateVetoed, StrategyFailed).
        """
        now = self.lens.clock.now()
        node = self.backend.get_info()
        channels = list(channels if channels is not None else self.backend.list_channels())
        if only is not None:
            if not any(c.channel_id == only for c in channels):
                raise ConfigError(f"channel {only} is not one of this node's channels")
        chosen = [c for c in channels if only is None or c.channel_id == only]
        if self.policies is None and not self.lens.pm.hook.select_fee_strategy.get_hookimpls():
            raise ConfigError(
                "no policy file is configured (policy = FILE, or --policy) and no plugin selects strategies"
            )
        predictions, notes = self.predictions, []
        if self.runs_model:
            from ..model.liquidity import fee_predictions

            predictions, why = fee_predictions(self.lens, self.backend)
            notes = [why] if why else []
        assembled = assemble(self.backend, self.lens.store, chosen, self.policies, node=node, now=now,
                             want_signals=True, strategies=self.lens.strategies,
                             predictions=predictions, clock=self.lens.clock)  # fmt: skip
        active = [c.local_policy.fee_ppm for c in channels
                  if c.active and c.local_policy is not None and not c.local_policy.disabled]
        min_outbound = min(active) if active else None
        journal = self.lens.store.journal(states=("applied", "verified", "rolled_back"))
        by_channel: dict[str, list] = {}
        for row in journal:
            by_channel.setdefault(row["channel_id"], []).append(row)
        default_bounds = guarded_bounds(self.rails, ChannelId(0, 0, 0), min_outbound)
        out = []
        for ch in chosen:
            change = self._plan_one(ch, node, assembled, now, explain)
            bounds = (guarded_bounds(self.rails, ch.channel_id, min_outbound)
                      if ch.channel_id in self.rails.channel_bounds else default_bounds)  # fmt: skip
            out.append(self._rail(change, ch, by_channel.get(str(ch.channel_id), []), now, bounds))
        free = sum(1 for c in out if c.update is not None and self._without_rails(c))
        if free:
            notes.append(f"{free} channel(s) decided by charge-lnd strategies as charge-lnd would: lnlens's rails "
                         "(steps, floors and ceilings, cooldown, changes per day, hysteresis) apply to them only with "
                         "charge_lnd_rails = true in [policy]")  # fmt: skip
        out = self._note_unjudged(out, now)
        plan = Plan(now, self.backend.name, tuple(out), (*notes, *assembled.notes), self.policy_file)
        if emit:
            self._emit(plan, applying)
        return plan

    def _note_unjudged(self, changes: list[PlannedChange], now: float) -> list[PlannedChange]:
        """With automatic rollback on, say on each change of a quiet channel that it will not be judged."""
        rails = self.rails
        if not rails.auto_rollback or not any(c.will_apply for c in changes):
            return changes
        settled: dict[ChannelId, int] = {}
        for e in self.lens.store.iter_forwards(since=now - rails.rollback_window_s, until=now):
            if e.out_channel is not None and e.status is ForwardStatus.SETTLED:
                settled[e.out_channel] = settled.get(e.out_channel, 0) + 1
        out = []
        for c in changes:
            n = settled.get(c.channel_id, 0)
            if c.will_apply and n < rails.rollback_min_forwards:
                note = (f"automatic rollback will not judge this change: {n} settled forward(s) in the last "
                        f"{rails.rollback_window_s / 3600:g} h, fewer than rollback_min_forwards "
                        f"({rails.rollback_min_forwards}), too few to tell a drop in revenue from chance")  # fmt: skip
                c = replace(c, notes=(*c.notes, note))
            out.append(c)
        return out

    def _plan_one(self, ch: Channel, node, assembled: Assembled, now: float, explain: bool) -> PlannedChange:
        base = {"channel_id": ch.channel_id, "alias": ch.peer_alias, "old": ch.local_policy}
        if self.rails.unmanaged_channel(ch):
            return PlannedChange(**base, policy=None, strategy=None, chosen_by="rails",
                                 blocked="unmanaged channel: never touched")  # fmt: skip
        if ch.local_policy is None:
            return PlannedChange(**base, policy=None, strategy=None, chosen_by="none", reason=UNKNOWN_POLICY)
        choice = self.lens.select_strategy(ch, node)
        inputs = assembled.inputs[ch.channel_id]
        if choice is not None:
            return self._plugin_choice(choice, inputs, assembled, base)
        if self.evaluator is None:  # no policy file, and no plugin chose for this channel: keep it
            why = "no plugin chose a strategy for this channel and no policy file is set"
            return PlannedChange(**base, policy=None, strategy=None, chosen_by="none", reason=why)
        decision = self.evaluator.evaluate(inputs, assembled.env, explain=explain)
        return PlannedChange(
            **base, policy=decision.policy, strategy=decision.strategy, chosen_by=POLICY_FILE,
            reason=decision.reason, proposed=decision.update, update=decision.update, error=decision.error,
            notes=decision.notes, explain=tuple(decision.explain()) if explain else (),
        )  # fmt: skip

    def _plugin_choice(
        self, choice: StrategyChoice, inputs: PolicyInputs, assembled: Assembled, base: dict
    ) -> PlannedChange:
        """Run a strategy a plugin chose; failures keep the channel, as in the evaluator."""
        plugin = "select_fee_strategy"
        common = {"policy": choice.policy, "strategy": choice.strategy, "chosen_by": plugin}
        cls = self.lens.strategies.get(choice.strategy)
        if cls is None:
            return PlannedChange(**base, **common, error=f"strategy {choice.strategy!r} is not registered")
        try:
            strategy = build_strategy(cls, dict(choice.params), where=f"plugin {plugin} ({choice.policy})")
            proposal = strategy.propose(inputs.channel, fee_context(inputs, assembled.env))
        except ConfigError as exc:
            return PlannedChange(**base, **common, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - a third-party strategy's failure keeps the channel
            error = str(exc) if isinstance(exc, StrategyError) else f"strategy {choice.strategy} failed: {exc!r}"
            return PlannedChange(**base, **common, error=error)
        if proposal is None:
            return PlannedChange(**base, **common, reason="nothing changes")
        if not isinstance(proposal, FeeProposal):
            return PlannedChange(**base, **common, error=f"strategy returned {proposal!r}, not a FeeProposal")
        update = FeeUpdate(**{k: v for k, (_, v) in proposal.update.changes(inputs.channel.local_policy).items()})
        dropped = unsupported_fields(update, assembled.env.capabilities)
        notes = ()
        if dropped:
            notes = (f"not settable on {self.backend.name}: {', '.join(dropped)} (dropped)",)
            keep = {k: v for k, v in update.fields_set().items() if k not in dropped}
            if "positive inbound fee" in dropped:
                keep = {k: v for k, v in keep.items() if not k.startswith("inbound_")}
            update = FeeUpdate(**keep)
        update_or_none = None if update.is_empty() else update
        return PlannedChange(**base, **common, reason=proposal.reason, proposed=update_or_none,
                             update=update_or_none, notes=notes)  # fmt: skip

    def _rail(self, change: PlannedChange, ch: Channel, rows: list, now: float, bounds: Bounds) -> PlannedChange:
        if change.error or change.blocked or change.update is None:
            return change
        history = history_from_journal(rows, now=now) if rows else _NO_HISTORY
        railed = apply_rails(ch, change.update, self.rails, history, now=now, bounds=bounds,
                             guards_only=self._without_rails(change))  # fmt: skip
        vetoes = tuple(self.lens.vetoes(railed.update, ch)) if railed.update is not None else ()
        return replace(change, update=railed.update, rails=railed.applied, blocked=railed.blocked, vetoes=vetoes)

    def _without_rails(self, change: PlannedChange) -> bool:
        """A charge-lnd strategy chosen by the file, and the operator did not opt into rails for those."""
        return (
            not self.rails.charge_lnd_rails
            and change.chosen_by == POLICY_FILE
            and change.strategy in CHARGE_LND_STRATEGY_NAMES
        )

    def _emit(self, plan: Plan, applying: bool) -> None:
        events: list = []
        for c in plan.changes:
            if c.error:
                events.append(StrategyFailed(plan.time, c.channel_id, c.strategy, c.error))
            elif c.vetoes and c.update is not None:
                if applying:
                    continue  # apply_plan journals the veto and tells observers then
                events.append(FeeUpdateVetoed(plan.time, c.channel_id, c.update, c.vetoes))
            elif c.will_apply and c.update is not None:
                events.append(FeeUpdatePlanned(plan.time, c.channel_id, c.policy, c.strategy, c.update, c.reason,
                                               applying))  # fmt: skip
        self.lens.emit(events)
