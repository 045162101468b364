"""Automatic rollback of a change followed by others within its window (unit level: FakeNode, synthetic forwards)."""

from __future__ import annotations

import numpy as np

from lnlens_core.domain import ChannelId, ForwardStatus, HtlcEvent
from lnlens_core.fees.journal import apply_plan, auto_rollback
from lnlens_core.fees.rails import Rails, rails_from_table

A, B, G = (ChannelId.parse(c) for c in ("800000x1x0", "800001x2x1", "800002x3x0"))
DAY = 86_400.0


def forwards(start: float, t: float, end: float, *, a_after_per_day: float, seed: int = 9) -> list[HtlcEvent]:
    """50 forwards a day on each channel (A: 1,000 msat each; B, G: 500) from ``start`` to ``end``; A
    settles ``a_after_per_day`` a day from ``t`` on."""
    rng, out = np.random.default_rng(seed), []
    for cid, fee in ((A, 1000), (B, 500), (G, 500)):
        day = start
        while day < end:
            rate = a_after_per_day if cid == A and day >= t else 50
            for when in rng.uniform(day, day + DAY, rng.poisson(rate)):
                out.append(HtlcEvent(ChannelId.parse("900000x1x0"), len(out), ForwardStatus.SETTLED, float(when),
                                     out_channel=cid, out_msat=1_000_000, fee_msat=fee))  # fmt: skip
            day += DAY
    return out


def static(fee_ppm: int) -> str:
    return f"[a]\nchan.id = {A}\nstrategy = static\nfee_ppm = {fee_ppm}\n[default]\nstrategy = ignore\n"


def test_a_change_superseded_within_its_window_is_judged_with_what_followed(make_engine, node, lens, manual_clock):
    start = manual_clock.now()
    t = start + 8 * DAY
    manual_clock.set(t)
    (first,) = apply_plan(lens, node, make_engine(static(300), rails=Rails(cooldown_s=0)).plan())
    manual_clock.set(t + 3600)
    (second,) = apply_plan(lens, node, make_engine(static(320), rails=Rails(cooldown_s=0)).plan())
    assert node.channels[A].local_policy.fee_ppm == 320
    lens.store.ingest_forwards(forwards(start, t, t + 2 * DAY, a_after_per_day=2), source="test")
    rails = rails_from_table({"auto_rollback": True, "rollback_window": "2d"})
    manual_clock.set(t + 2 * DAY - 1)
    assert auto_rollback(lens, node, rails) == [], "nothing is judged before the first change's window ends"
    manual_clock.set(t + 2 * DAY)
    (done,) = auto_rollback(lens, node, rails)
    assert done.state == "verified" and node.channels[A].local_policy.fee_ppm == 100, "the policy before both"
    rows = {r["id"]: r for r in lens.store.journal(channel_id=A)}
    assert rows[first.journal_id]["state"] == "rolled_back"
    assert rows[second.journal_id]["state"] == "rolled_back"
    assert rows[second.journal_id]["detail"] == f"undone by the automatic rollback of change {first.journal_id}"
    assert rows[done.journal_id]["rollback_of"] == first.journal_id
    assert "revenue fell" in rows[done.journal_id]["detail"]
    manual_clock.set(t + 3 * DAY)
    assert auto_rollback(lens, node, rails) == [], "each change is judged once; the undone one never"
    assert node.channels[A].local_policy.fee_ppm == 100


def test_a_chain_that_did_no_harm_stays(make_engine, node, lens, manual_clock):
    start = manual_clock.now()
    t = start + 8 * DAY
    manual_clock.set(t)
    apply_plan(lens, node, make_engine(static(300), rails=Rails(cooldown_s=0)).plan())
    manual_clock.set(t + 3600)
    apply_plan(lens, node, make_engine(static(320), rails=Rails(cooldown_s=0)).plan())
    lens.store.ingest_forwards(forwards(start, t, t + 2 * DAY, a_after_per_day=50), source="test")
    manual_clock.set(t + 2 * DAY)
    assert auto_rollback(lens, node, rails_from_table({"auto_rollback": True, "rollback_window": "2d"})) == []
    assert node.channels[A].local_policy.fee_ppm == 320
