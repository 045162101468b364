"""A fee plan: what the engine would change, channel by channel, and how to show it.

A plan is pure data. :meth:`Plan.to_json` is the ``--json`` form, :func:`render_plan`
the table, and :func:`emit_commands` turns it into ``lncli`` or ``lightning-cli`` lines
for operators who prefer to apply by hand (SEEDS 45).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from ..domain import ChannelId, ChannelPolicy, FeeUpdate
from ..untrusted import one_line

__all__ = ["PlannedChange", "Plan", "emit_commands", "EMIT_FORMATS", "describe_changes"]


@dataclass(frozen=True, slots=True)
class PlannedChange:
    """One channel's line in a plan.

    :ivar proposed: the strategy's update after the apply-step diff, before the rails.
    :ivar update: what would be sent (after rails; None: nothing). Vetoed changes keep
        their update here and list the vetoes.
    :ivar chosen_by: ``policy-file``, ``select_fee_strategy`` (a plugin answered; ``policy``
        is the name it gave), ``rails`` (unmanaged) or ``none`` (no plugin answered and no
        policy file is set: the channel is kept).
    :ivar rails: what the rails changed; ``blocked`` why they stopped the change entirely.
    :ivar explain: with ``explain``, the evaluator's lines (matchers, values, strategy).
    """

    channel_id: ChannelId
    alias: str
    old: ChannelPolicy | None
    """None: the node cannot tell the channel's current policy; nothing is planned then."""
    policy: str | None
    strategy: str | None
    chosen_by: str
    reason: str = ""
    proposed: FeeUpdate | None = None
    update: FeeUpdate | None = None
    rails: tuple[str, ...] = ()
    blocked: str | None = None
    vetoes: tuple[tuple[str, str], ...] = ()
    error: str | None = None
    notes: tuple[str, ...] = ()
    explain: tuple[str, ...] = ()

    @property
    def changes(self) -> dict[str, tuple[Any, Any]]:
        return self.update.changes(self.old) if self.update is not None else {}

    @property
    def will_apply(self) -> bool:
        return bool(self.changes) and not self.vetoes

    @property
    def new(self) -> ChannelPolicy:
        return self.update.apply_to(self.old) if self.update is not None else self.old

    @property
    def status(self) -> str:
        if self.error:
            return "error"
        if self.vetoes:
            return "vetoed"
        if self.blocked:
            return "blocked"
        return "change" if self.changes else "keep"

    def to_json(self) -> dict[str, Any]:
        return {
            "short_channel_id": str(self.channel_id),
            "alias": self.alias,
            "policy": self.policy,
            "strategy": self.strategy,
            "chosen_by": self.chosen_by,
            "status": self.status,
            "reason": self.reason,
            "changes": {k: {"old": o, "new": n} for k, (o, n) in self.changes.items()},
            "proposed": self.proposed.fields_set() if self.proposed else None,
            "rails": list(self.rails),
            "blocked": self.blocked,
            "vetoes": [{"plugin": p, "reason": r} for p, r in self.vetoes],
            "error": self.error,
            "notes": list(self.notes),
            **({"explain": list(self.explain)} if self.explain else {}),
        }


@dataclass(frozen=True, slots=True)
class Plan:
    time: float
    backend: str
    changes: tuple[PlannedChange, ...]
    notes: tuple[str, ...] = ()
    policy_file: str | None = None

    def to_apply(self) -> list[PlannedChange]:
        return [c for c in self.changes if c.will_apply]

    def to_json(self) -> dict[str, Any]:
        by_status: dict[str, int] = {}
        for c in self.changes:
            by_status[c.status] = by_status.get(c.status, 0) + 1
        return {
            "time": self.time,
            "backend": self.backend,
            "policy_file": self.policy_file,
            "summary": by_status,
            "notes": list(self.notes),
            "channels": [c.to_json() for c in self.changes],
        }


def describe_changes(change: PlannedChange) -> str:
    """``fee_ppm 100 → 120, base_fee_msat 1000 → 0`` (or ``-``)."""
    return ", ".join(f"{k} {o} → {n}" for k, (o, n) in change.changes.items()) or "-"


EMIT_FORMATS = ("lncli", "lightning-cli")
LND_MIN_CLTV_DELTA = 18  # the lowest time_lock_delta any lnd accepts (24 from v0.21)


def _lncli_cltv(new: ChannelPolicy, chan_id: int, *, changed: bool) -> str:
    """``updatechanpolicy`` always writes a CLTV delta: the plan's when it changes it or lnd could have it, else
    (a channel the data shows with 0: never announced, or not from lnd) the one lnd has now, read at run time,
    so that the command leaves it as it is."""
    if changed or new.cltv_delta >= LND_MIN_CLTV_DELTA:
        return str(new.cltv_delta)
    ours = "if .node1_pub == $me then .node1_policy else .node2_policy end | .time_lock_delta"
    return (f'"$(lncli getchaninfo --chan_id {chan_id} | jq -r --arg me "$(lncli getinfo | jq -r .identity_pubkey)" '
            f"'{ours}')\"")  # fmt: skip


def emit_commands(plan: Plan, fmt: str) -> list[str]:
    """Shell lines applying the plan's changes by hand (vetoed, blocked and failed channels excluded).

    ``lncli updatechanpolicy`` wants the channel point and the full base/rate/CLTV triple,
    so each line looks the channel point up from the short channel id and passes the new
    policy's values; ``lightning-cli setchannel`` takes the short channel id directly.
    """
    if fmt not in EMIT_FORMATS:
        raise ValueError(f"unknown format {fmt!r} (use {' or '.join(EMIT_FORMATS)})")
    lines = [f"# lnlens plan of {plan.time:.0f} for backend {plan.backend}: {len(plan.to_apply())} change(s)"]
    for c in plan.to_apply():
        new, changed = c.new, c.changes
        lines.append(one_line(f"# {c.channel_id} {c.alias}: {describe_changes(c)} ({c.policy}/{c.strategy})"))
        if fmt == "lncli":
            chan_id = c.channel_id.to_int()
            point = f'"$(lncli getchaninfo --chan_id {chan_id} | jq -r .chan_point)"'
            args = ["--base_fee_msat", str(new.base_fee_msat), "--fee_rate_ppm", str(new.fee_ppm)]
            if "inbound_fee_ppm" in changed or "inbound_base_fee_msat" in changed:
                args += ["--inbound_base_fee_msat", str(new.inbound_base_fee_msat),
                         "--inbound_fee_rate_ppm", str(new.inbound_fee_ppm)]  # fmt: skip
            if "min_htlc_msat" in changed:
                args += ["--min_htlc_msat", str(new.min_htlc_msat)]
            if "max_htlc_msat" in changed and new.max_htlc_msat is not None:
                args += ["--max_htlc_msat", str(new.max_htlc_msat)]
            cltv = _lncli_cltv(new, chan_id, changed="cltv_delta" in changed)
            lines.append(f"lncli updatechanpolicy {shlex.join(args)} --time_lock_delta {cltv} --chan_point {point}")
            if "disabled" in changed:
                action = "disable" if new.disabled else "enable"
                lines.append(f"lncli updatechanstatus --chan_point {point} --action {action}")
        else:
            args = [f"id={c.channel_id}"]
            if "base_fee_msat" in changed or "fee_ppm" in changed:
                args += [f"feebase={new.base_fee_msat}", f"feeppm={new.fee_ppm}"]
            if "min_htlc_msat" in changed:
                args.append(f"htlcmin={new.min_htlc_msat}msat")
            if "max_htlc_msat" in changed and new.max_htlc_msat is not None:
                args.append(f"htlcmax={new.max_htlc_msat}msat")
            other = sorted(set(changed) - {"base_fee_msat", "fee_ppm", "min_htlc_msat", "max_htlc_msat"})
            if other:
                lines.append(f"# lightning-cli setchannel cannot set {', '.join(other)}")
            if len(args) > 1:
                lines.append(f"lightning-cli setchannel {shlex.join(args)}")
    return lines
