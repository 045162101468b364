"""Applying plans through the fee journal, reconciling after a crash, rolling back.

Every change goes ``planned`` (written before the backend call) → ``applied`` (the node
answered) → ``verified`` (the node's answer has every field we asked for), or ``failed``
with the backend's error. A crash between the first write and the last leaves a
``planned`` or ``applied`` row; :func:`reconcile` (run at every start) compares it
with the node's real policy and closes it as ``verified`` or ``failed``.

Rollbacks restore the exact previous policy (every field the backend can set), are
journalled like any change with ``rollback_of`` pointing at the change they undo, and
mark that change ``rolled_back``. Rollbacks skip the step limits, cooldown and vetoes
(they restore a policy the node already had) but never touch an unmanaged channel.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ..backend import NodeBackend, unsupported_fields
from ..domain import ChannelId, ChannelPolicy, FeeUpdate
from ..errors import BackendError, LnlensError
from ..events import FeeUpdateApplied, FeeUpdateRolledBack, FeeUpdateVetoed
from ..lens import Lens
from .outcomes import HISTORY_DAYS, RevenueIndex, applied_change_times, judge
from .plan import Plan
from .rails import Rails

__all__ = ["Applied", "apply_plan", "reconcile", "rollback", "auto_rollback", "policy_from_json"]

_OUTCOME_META = "fees.outcome_checked"


@dataclass(frozen=True, slots=True)
class Applied:
    """What happened to one change: its journal id, final state and the node's policy after it."""

    journal_id: int
    channel_id: ChannelId
    state: str
    detail: str | None
    policy: ChannelPolicy | None

    def to_json(self) -> dict[str, Any]:
        return {"journal_id": self.journal_id, "short_channel_id": str(self.channel_id), "state": self.state,
                "detail": self.detail}  # fmt: skip


def policy_from_json(text: str) -> ChannelPolicy:
    data = json.loads(text)
    return ChannelPolicy(**{f.name: data[f.name] for f in fields(ChannelPolicy) if f.name in data})


def _mismatch(asked: FeeUpdate, got: ChannelPolicy) -> list[str]:
    return [
        f"{k}: asked {v}, node has {getattr(got, k)}" for k, v in asked.fields_set().items() if getattr(got, k) != v
    ]


def _send(
    lens: Lens, backend: NodeBackend, cid: ChannelId, old: ChannelPolicy, update: FeeUpdate, **journal: Any
) -> Applied:
    """Journal, call the backend, verify. Never raises for a backend error: the row says ``failed``."""
    store, clock = lens.store, lens.clock
    new = update.apply_to(old)
    entry = store.journal_plan(channel_id=cid, old_policy=old, new_policy=new, now=clock.now(), **journal)
    try:
        got = backend.set_channel_policy(cid, update)
    except BackendError as exc:
        store.journal_mark(entry, "failed", now=clock.now(), detail=f"{type(exc).__name__}: {exc}")
        return Applied(entry, cid, "failed", str(exc), None)
    store.journal_mark(entry, "applied", now=clock.now())
    wrong = _mismatch(update, got)
    state, detail = ("failed", "; ".join(wrong)) if wrong else ("verified", None)
    store.journal_mark(entry, state, now=clock.now(), detail=detail)
    lens.emit([FeeUpdateApplied(clock.now(), entry, cid, old, got, not wrong)])
    return Applied(entry, cid, state, detail, got)


def apply_plan(lens: Lens, backend: NodeBackend, plan: Plan) -> list[Applied]:
    """Apply every change of ``plan`` that the rails let through and nobody vetoed.

    Vetoed changes are journalled as ``vetoed`` with every plugin's reason.
    """
    done = []
    for change in plan.changes:
        if change.update is None or not change.changes:
            continue
        meta = {"reason": change.reason or "(no reason given)", "policy": change.policy, "strategy": change.strategy,
                "plugin": None if change.chosen_by == "policy-file" else change.chosen_by}  # fmt: skip
        if change.vetoes:
            store, now = lens.store, lens.clock.now()
            entry = store.journal_plan(channel_id=change.channel_id, old_policy=change.old, new_policy=change.new,
                                       now=now, **meta)  # fmt: skip
            detail = "; ".join(f"{p}: {r}" for p, r in change.vetoes)
            store.journal_mark(entry, "vetoed", now=now, detail=detail)
            lens.emit([FeeUpdateVetoed(now, change.channel_id, change.update, change.vetoes)])
            done.append(Applied(entry, change.channel_id, "vetoed", detail, None))
            continue
        done.append(_send(lens, backend, change.channel_id, change.old, change.update, **meta))
    return done


def reconcile(lens: Lens, backend: NodeBackend) -> list[Applied]:
    """Close journal rows left ``planned``/``applied`` by a crash, from the node's real policy."""
    open_rows = lens.store.journal(states=("planned", "applied"))
    if not open_rows:
        return []
    real = {c.channel_id: c.local_policy for c in backend.list_channels()}
    out = []
    for row in open_rows:
        cid = ChannelId.parse(row["channel_id"])
        if cid in real and real[cid] is None:
            continue  # the node cannot tell the channel's policy now (missing from its graph): stays open
        old, new = policy_from_json(row["old_policy"]), policy_from_json(row["new_policy"])
        have = real.get(cid)
        asked = FeeUpdate.between(old, new)
        if have is None:
            state, detail = "failed", "reconciled: the channel is gone"
        elif not _mismatch(asked, have):
            state, detail = "verified", "reconciled: the node has the new policy"
        elif not _mismatch(FeeUpdate.between(new, old), have):
            state, detail = "failed", "reconciled: the change never reached the node"
        else:
            state, detail = "failed", "reconciled: the node has neither policy: " + "; ".join(_mismatch(asked, have))
        if state == "verified" and row["rollback_of"] is not None:
            lens.store.journal_mark(row["rollback_of"], "rolled_back", now=lens.clock.now())
        lens.store.journal_mark(row["id"], state, now=lens.clock.now(), detail=detail)
        out.append(Applied(row["id"], cid, state, detail, have))
    return out


def _target(lens: Lens, change_id: int | None, channel: ChannelId | None) -> Mapping[str, Any]:
    rows = lens.store.journal(channel_id=channel, states=("applied", "verified"))
    if change_id is not None:
        found = [r for r in lens.store.journal() if r["id"] == change_id]
        if not found:
            raise LnlensError(f"no fee change {change_id} in the journal")
        if found[0]["state"] not in ("applied", "verified"):
            raise LnlensError(f"change {change_id} is {found[0]['state']}: only applied changes can be rolled back")
        return found[0]
    if not rows:
        raise LnlensError(f"no applied fee change on {channel} to roll back")
    last = rows[-1]
    if last["rollback_of"] is not None:
        # The channel's last change already undid one: rolling "the last change" back again would re-apply it.
        raise LnlensError(f"the last fee change on {channel} (change {last['rollback_of']}) was already rolled back "
                          f"by change {last['id']}; nothing to roll back")  # fmt: skip
    return last


def rollback(
    lens: Lens,
    backend: NodeBackend,
    *,
    change_id: int | None = None,
    channel: ChannelId | None = None,
    reason: str = "operator rollback",
    automatic: bool = False,
    rails: Rails | None = None,
) -> Applied:
    """Restore the exact policy from before change ``change_id`` (or the channel's last applied change).

    :raises LnlensError: nothing to roll back, or the channel is unmanaged.
    """
    if (change_id is None) == (channel is None):
        raise LnlensError("give exactly one of a change id or a channel")
    row = _target(lens, change_id, channel)
    cid = ChannelId.parse(row["channel_id"])
    current = {c.channel_id: c for c in backend.list_channels()}.get(cid)
    if current is None:
        raise LnlensError(f"channel {cid} is no longer open")
    if rails is not None and rails.unmanaged_channel(current):
        raise LnlensError(f"channel {cid} is unmanaged: lnlens never touches it")
    if current.local_policy is None:
        raise LnlensError(f"channel {cid} is not in the node's graph: its current policy is unknown, so lnlens "
                          "cannot tell what a rollback would change")
    previous = policy_from_json(row["old_policy"])
    update = FeeUpdate.between(current.local_policy, previous)
    skipped = unsupported_fields(update, backend.capabilities)
    if skipped:
        keep = {k: v for k, v in update.fields_set().items() if k not in skipped}
        update = FeeUpdate(**keep)
    detail = ("auto: " if automatic else "") + reason
    if update.is_empty():
        lens.store.journal_mark(row["id"], "rolled_back", now=lens.clock.now(), detail=f"{detail} (already restored)")
        return Applied(row["id"], cid, "rolled_back", "the node already has the previous policy", current.local_policy)
    done = _send(lens, backend, cid, current.local_policy, update, reason=detail, policy=row["policy"],
                 strategy="rollback", rollback_of=row["id"])  # fmt: skip
    if done.state == "verified":
        now = lens.clock.now()
        lens.store.journal_mark(done.journal_id, "verified", now=now, detail=detail)
        lens.store.journal_mark(row["id"], "rolled_back", now=now, detail=f"reverted by {done.journal_id}: {detail}")
        lens.emit([FeeUpdateRolledBack(now, done.journal_id, row["id"], cid, detail, automatic)])
    return done


def auto_rollback(lens: Lens, backend: NodeBackend, rails: Rails) -> list[Applied]:
    """Evaluate every change whose after-window has just completed; revert those the rule condemns.

    Each change is judged once (remembered in the store's meta table), over ``L = min(window, time
    since the channel's previous change)`` on either side. A change followed by others within its
    after window is judged with them: the after window is what the channel earned since the change,
    whatever came next, against the policy before it; when condemned, that policy is restored and the
    later changes are marked ``rolled_back`` too (the restore undid them). The rule is in
    :mod:`.outcomes`. Off unless ``auto_rollback = true`` in ``[policy]``.
    """
    if not rails.auto_rollback:
        return []
    now = lens.clock.now()
    checked = set(json.loads(lens.store.get_meta(_OUTCOME_META) or "[]"))
    rows = lens.store.journal(states=("applied", "verified", "rolled_back"))
    times = applied_change_times(rows)
    window = rails.rollback_window_s

    def length_of(row: Mapping[str, Any]) -> float:
        t = row["applied_time"]
        earlier = [x for x in times.get(ChannelId.parse(row["channel_id"]), []) if x < t]
        return min(window, t - earlier[-1]) if earlier else window

    due = [r for r in rows if r["id"] not in checked and r["state"] == "verified" and r["rollback_of"] is None
           and r["applied_time"] is not None and r["applied_time"] + length_of(r) <= now]  # fmt: skip
    if not due:
        return []
    first = min(r["applied_time"] for r in due) - 2 * window - HISTORY_DAYS * 86_400
    index = RevenueIndex(lens.store.iter_forwards(since=first, until=now))
    done, undone = [], set()
    for row in due:
        checked.add(row["id"])
        length = length_of(row)
        if row["id"] in undone or length <= 0:
            continue
        cid, t = ChannelId.parse(row["channel_id"]), row["applied_time"]
        found = judge(index, cid, t, length, change_times=times, drop_share=rails.rollback_drop_share,
                      min_forwards=rails.rollback_min_forwards, alpha=rails.rollback_alpha,
                      old_policy=policy_from_json(row["old_policy"]),
                      new_policy=policy_from_json(row["new_policy"]))  # fmt: skip
        if found.verdict is None:
            continue
        applied = rollback(lens, backend, change_id=row["id"], reason=found.verdict.removeprefix("auto: "),
                           automatic=True, rails=rails)  # fmt: skip
        done.append(applied)
        if applied.state in ("verified", "rolled_back"):
            for later in rows:
                if (later["channel_id"] == row["channel_id"] and later["id"] != applied.journal_id
                        and later["state"] == "verified" and later["applied_time"] > t):  # fmt: skip
                    undone.add(later["id"])
                    why = f"undone by the automatic rollback of change {row['id']}"
                    lens.store.journal_mark(later["id"], "rolled_back", now=lens.clock.now(), detail=why)
    lens.store.set_meta(_OUTCOME_META, json.dumps(sorted(checked)))
    return done
