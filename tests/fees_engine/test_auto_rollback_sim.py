"""Automatic rollback in the simulator: a bad change is reverted, a harmless one is not."""

from __future__ import annotations

import collections
from typing import ClassVar

import pytest

pytest.importorskip("lnlens_sim")

from lnlens_sim.scenario import SimSettings, build  # noqa: E402

from lnlens_core.config import LensConfig  # noqa: E402
from lnlens_core.domain import FeeUpdate, ForwardStatus  # noqa: E402
from lnlens_core.fees.chargelnd import load_policy_file  # noqa: E402
from lnlens_core.fees.engine import FeeEngine  # noqa: E402
from lnlens_core.fees.journal import apply_plan, auto_rollback  # noqa: E402
from lnlens_core.fees.outcomes import journal_outcomes  # noqa: E402
from lnlens_core.fees.rails import rails_from_table  # noqa: E402
from lnlens_core.fees.strategy import FeeProposal  # noqa: E402
from lnlens_core.hookspecs import hookimpl  # noqa: E402
from lnlens_core.lens import Lens  # noqa: E402
from lnlens_core.plugins import get_plugin_manager  # noqa: E402
from lnlens_core.storage import Store  # noqa: E402

WINDOW = 12 * 3600
HISTORY = 4 * 86_400  # three previous days on the same hours: the placebo pairs that measure drift
RAILS = {"auto_rollback": True, "rollback_window": WINDOW, "max_step_share": 1.0, "max_step_ppm": 100_000,
         "max_fee_ppm": 100_000, "cooldown": 0, "min_change_ppm": 0}  # fmt: skip


class Nudge:
    """A harmless change: one ppm cheaper."""

    name: ClassVar[str] = "nudge"

    def propose(self, channel, ctx):
        return FeeProposal(FeeUpdate(fee_ppm=max(0, channel.local_policy.fee_ppm - 1)), "one ppm cheaper")


class NudgePlugin:
    @hookimpl
    def register_fee_strategies(self):
        return [Nudge]


def simulate(tmp_path, *, plugin=None):
    node = build(SimSettings(seed=5, nodes=300))
    pm = get_plugin_manager(load_entrypoints=False)
    if plugin is not None:
        pm.register(plugin, name="nudge")
    lens = Lens(LensConfig(data_dir=tmp_path, db_path=tmp_path / "x.sqlite3"), store=Store(None), clock=node.clock,
                pm=pm, backend=node)  # fmt: skip
    node.attach(lens.monitor)
    node.run(HISTORY)
    lens.store.add_snapshots(node.list_channels(), time=node.clock.now())
    return node, lens


def best_earner(lens):
    """The channel that earned the most, and how many forwards it settled."""
    revenue, counts = collections.Counter(), collections.Counter()
    for e in lens.store.iter_forwards():
        if e.status is ForwardStatus.SETTLED:
            revenue[e.out_channel] += e.fee_msat or 0
            counts[e.out_channel] += 1
    cid = revenue.most_common(1)[0][0]
    return cid, counts[cid]


def test_a_bad_change_is_rolled_back(tmp_path):
    node, lens = simulate(tmp_path)
    cid, settled = best_earner(lens)
    assert settled >= 30, "the scenario needs a busy, earning channel"
    before = {c.channel_id: c for c in node.list_channels()}[cid].local_policy
    policy = tmp_path / "bad.ini"
    # a 1-sat max_htlc: almost nothing fits (a 20-fold or even a 100,000 ppm fee still earned on a few large
    # payments here, within the rule's noise: the simulated senders hardly compare fees)
    policy.write_text(f"[bad]\nchan.id = {cid}\nstrategy = static\nmax_htlc_msat = 1000\n"
                      "[default]\nstrategy = ignore\n")  # fmt: skip
    rails = rails_from_table(RAILS)
    engine = FeeEngine(lens, node, policies=load_policy_file(policy, lens.strategies), rails=rails)
    (applied,) = apply_plan(lens, node, engine.plan())
    assert applied.state == "verified"
    node.run(WINDOW / 2)
    assert auto_rollback(lens, node, rails) == [], "not before the after-window is complete"
    node.run(WINDOW / 2)
    (reverted,) = auto_rollback(lens, node, rails)
    assert reverted.state == "verified"
    assert {c.channel_id: c for c in node.list_channels()}[cid].local_policy == before, "the exact previous policy"
    rows = lens.store.journal(channel_id=cid)
    assert rows[0]["state"] == "rolled_back" and "revenue fell" in rows[0]["detail"]
    assert rows[1]["rollback_of"] == rows[0]["id"] and rows[1]["detail"].startswith("auto: ")
    assert auto_rollback(lens, node, rails) == [], "each change is judged once"
    again = engine.plan()
    blocked = {c.channel_id: c for c in again.changes}[cid]
    assert blocked.update is None and "automatic rollback" in blocked.blocked, "cool-down after a rollback"


def test_a_harmless_change_is_not_rolled_back(tmp_path):
    node, lens = simulate(tmp_path, plugin=NudgePlugin())
    rails = rails_from_table(RAILS)
    policy = tmp_path / "nudge.ini"
    policy.write_text("[default]\nstrategy = nudge\n")
    engine = FeeEngine(lens, node, policies=load_policy_file(policy, lens.strategies), rails=rails)
    applied = apply_plan(lens, node, engine.plan())
    # the simulator refuses any update on the few snapshot channels whose CLTV delta is out of range
    assert sum(a.state == "verified" for a in applied) >= 20
    node.run(WINDOW)
    assert auto_rollback(lens, node, rails) == []
    rows = lens.store.journal()
    outcomes = journal_outcomes(rows, list(lens.store.iter_forwards()), window_s=WINDOW, now=node.clock.now())
    judged = [o for o in outcomes if o.complete and o.before.forwards >= rails.rollback_min_forwards]
    assert judged, "at least one channel had enough forwards to be judged"
    assert not [r for r in rows if r["state"] == "rolled_back" or r["rollback_of"] is not None]
