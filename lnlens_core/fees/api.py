"""The fee engine's small public API for adapters: the CLN plugin, the LND sidecar, the CLI.

Each function returns plain JSON-able data (the shapes ``lnlens policy ... --json`` prints):

- :func:`plan_or_apply` — ``lens-policy`` / ``lnlens policy plan|apply``;
- :func:`history` — ``lens-history`` / ``lnlens policy history``;
- :func:`rollback_change` — ``lens-rollback`` / ``lnlens policy rollback``;
- :class:`PolicyRunner` — a daemon's tick every ``lens-interval``: reconcile once at
  start, judge finished changes for automatic rollback, plan, apply unless dry-run;
  a tick that would overlap a running one is skipped.

Applying and rolling back hold the database's one writer lock (:mod:`lnlens_core.storage.lock`), so
two processes on one database (CLI, CLN plugin, LND sidecar) never plan from the same journal: a busy
lock is :class:`~lnlens_core.storage.WriterBusy`, naming the holder (a daemon skips that interval).

Errors are :class:`~lnlens_core.errors.ConfigError` (bad policy file or ``[policy]``
table) and :class:`~lnlens_core.errors.LnlensError` (nothing to roll back, ...).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from ..backend import NodeBackend
from ..domain import ChannelId
from ..lens import Lens
from ..storage import WriterBusy
from .engine import FeeEngine
from .journal import apply_plan, auto_rollback, reconcile, rollback
from .outcomes import journal_outcomes, policy_aggregates
from .rails import rails_from_table
from .signals import ModelPrediction

__all__ = ["plan_or_apply", "history", "rollback_change", "PolicyRunner"]

log = logging.getLogger(__name__)


def plan_or_apply(
    lens: Lens,
    backend: NodeBackend,
    *,
    apply: bool,
    policy_path: Path | None = None,
    predictions: Mapping[ChannelId, ModelPrediction] | None = None,
    engine: FeeEngine | None = None,
) -> dict[str, Any]:
    """Plan (``apply=False``: nothing is written anywhere) or reconcile, auto-roll back, plan and apply.

    :param engine: one already built by :meth:`FeeEngine.from_config` for this lens and backend, for
        callers that run many times on one configuration (``policy experiment``); else built here.
    """
    if engine is None:
        engine = FeeEngine.from_config(lens, backend, policy_path=policy_path, predictions=predictions)
    # Applying plans from the journal and writes it: one writer per database (storage.lock), across processes.
    with lens.store.writer_lock() if apply else nullcontext():
        reconciled = reconcile(lens, backend) if apply else []
        reverted = auto_rollback(lens, backend, engine.rails) if apply else []
        plan = engine.plan(applying=apply)
        done = apply_plan(lens, backend, plan) if apply else []
    return {"applied": apply, "plan": plan.to_json(), "results": [d.to_json() for d in done],
            "reconciled": [d.to_json() for d in reconciled],
            "auto_rollbacks": [d.to_json() for d in reverted]}  # fmt: skip


def history(lens: Lens, *, channel: ChannelId | None = None, window_s: int | None = None) -> dict[str, Any]:
    """The journal with each change's measured outcome, and per-policy aggregates (95 % bands)."""
    rails = rails_from_table(lens.config.backends.get("policy"))
    window = window_s or rails.rollback_window_s
    rows = lens.store.journal(channel_id=channel)
    applied = [r["applied_time"] for r in rows if r["applied_time"]]
    since, until = (min(applied) - window, max(applied) + window) if applied else (0.0, 0.0)
    events = list(lens.store.iter_forwards(since=since, until=until)) if applied else []
    outcomes = journal_outcomes(rows, events, window_s=window, now=lens.clock.now())
    by_id = {o.journal_id: o for o in outcomes}
    changes = [{**r, "outcome": by_id[r["id"]].to_json() if r["id"] in by_id else None} for r in rows]
    return {"window_s": window, "changes": changes, "policies": policy_aggregates(outcomes)}


def rollback_change(
    lens: Lens, backend: NodeBackend, *, change_id: int | None = None, channel: ChannelId | None = None
) -> dict[str, Any]:
    """Restore the exact policy from before a change (by journal id, or a channel's last change)."""
    rails = rails_from_table(lens.config.backends.get("policy"))
    with lens.store.writer_lock():
        reconcile(lens, backend)
        return rollback(lens, backend, change_id=change_id, channel=channel, rails=rails).to_json()


class PolicyRunner:
    """Runs the policy on a daemon's schedule. Thread-safe; overlapping ticks are skipped.

    :param dry_run: plan only (the default everywhere: ``lens-dry-run``/``dry_run``).
    """

    def __init__(self, lens: Lens, backend: NodeBackend, *, dry_run: bool = True, **engine_args: Any) -> None:
        self.lens, self.backend, self.dry_run = lens, backend, dry_run
        self.engine_args = engine_args
        self._lock = threading.Lock()
        self._reconciled = False

    def tick(self) -> dict[str, Any] | None:
        """One run; None when the previous one is still going, or when another writer (a ``policy apply``,
        another daemon on this database) holds the database's writer lock: that is logged, naming it."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            with nullcontext() if self.dry_run else self.lens.store.writer_lock():
                if not self.dry_run and not self._reconciled:
                    reconcile(self.lens, self.backend)
                    self._reconciled = True
                return plan_or_apply(self.lens, self.backend, apply=not self.dry_run, **self.engine_args)
        except WriterBusy as exc:
            log.warning("fee policy skipped this interval: %s", exc)
            return None
        finally:
            self._lock.release()
