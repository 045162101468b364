"""planned → applied → verified around the backend call; crash reconciliation; exact rollbacks."""

from __future__ import annotations

import pytest

from lnlens_core.domain import ChannelId, ChannelPolicy, FeeUpdate
from lnlens_core.errors import BackendRejected, LnlensError
from lnlens_core.events import FeeUpdateApplied, FeeUpdateRolledBack, FeeUpdateVetoed
from lnlens_core.fees.journal import apply_plan, reconcile, rollback
from lnlens_core.hookspecs import hookimpl

STATIC = "[default]\nstrategy = static\nfee_ppm = 120\nbase_fee_msat = 0\n"
A = ChannelId.parse("800000x1x0")


class Crash(BaseException):
    """The process dying: not an Exception, so nothing on the way catches it."""


def states(lens):
    return {r["channel_id"]: r["state"] for r in lens.store.journal()}


def test_apply_journals_and_verifies(make_engine, node, lens, register_plugin):
    got = []

    class Observer:
        @hookimpl
        def track_event(self, events):
            got.extend(e for e in events if isinstance(e, FeeUpdateApplied))

    register_plugin(Observer(), name="observer")
    results = apply_plan(lens, node, make_engine(STATIC).plan(applying=True))
    assert {r.state for r in results} == {"verified"}
    assert node.channels[A].local_policy.fee_ppm == 120 and node.channels[A].local_policy.base_fee_msat == 0
    row = lens.store.journal(channel_id=A)[0]
    assert row["policy"] == "default" and row["strategy"] == "static" and row["applied_time"] is not None
    assert len(got) == 3 and all(e.verified for e in got)


def test_backend_rejection_is_recorded_and_other_channels_go_on(make_engine, node, lens):
    plan = make_engine(STATIC).plan()
    node.fail_next(BackendRejected("policy refused"))
    results = apply_plan(lens, node, plan)
    assert [r.state for r in results] == ["failed", "verified", "verified"]
    assert "policy refused" in lens.store.journal(channel_id=A)[0]["detail"]


def test_vetoed_changes_are_journalled_with_every_reason(make_engine, node, lens, register_plugin):
    class Veto:
        @hookimpl
        def check_fee_update(self, channel):
            return "frozen" if channel.channel_id == A else None

    got = []

    class Observer:
        @hookimpl
        def track_event(self, events):
            got.extend(e for e in events if isinstance(e, FeeUpdateVetoed))

    register_plugin(Veto(), name="freezer")
    register_plugin(Observer(), name="observer")
    apply_plan(lens, node, make_engine(STATIC).plan(applying=True))
    assert len(got) == 1 and got[0].vetoes == (("freezer", "frozen"),), "one event per veto, from the apply"
    row = lens.store.journal(channel_id=A)[0]
    assert row["state"] == "vetoed" and row["detail"] == "freezer: frozen"
    assert node.channels[A].local_policy.fee_ppm == 100


@pytest.mark.parametrize("reached", [False, True])
def test_crash_between_intent_and_apply_is_reconciled(make_engine, node, lens, monkeypatch, reached):
    real = node.set_channel_policy

    def crashing(channel_id, update):
        if reached:
            real(channel_id, update)
        raise Crash

    monkeypatch.setattr(node, "set_channel_policy", crashing)
    with pytest.raises(Crash):
        apply_plan(lens, node, make_engine(STATIC).plan())
    assert states(lens) == {"800000x1x0": "planned"}
    monkeypatch.setattr(node, "set_channel_policy", real)
    (fixed,) = reconcile(lens, node)
    if reached:
        assert fixed.state == "verified" and "has the new policy" in fixed.detail
    else:
        assert fixed.state == "failed" and "never reached" in fixed.detail
    assert reconcile(lens, node) == []
    assert node.channels[A].local_policy.fee_ppm == (120 if reached else 100)


def test_reconcile_an_applied_row_and_a_policy_changed_by_someone_else(make_engine, node, lens):
    old = node.channels[A].local_policy
    entry = lens.store.journal_plan(channel_id=A, old_policy=old, new_policy=FeeUpdate(fee_ppm=300).apply_to(old),
                                    reason="r", now=1.0)  # fmt: skip
    lens.store.journal_mark(entry, "applied", now=2.0)
    node.set_channel_policy(A, FeeUpdate(fee_ppm=777))
    (fixed,) = reconcile(lens, node)
    assert fixed.state == "failed" and "neither policy" in fixed.detail and "777" in fixed.detail


def test_rollback_restores_the_exact_previous_policy(make_engine, node, lens, register_plugin):
    got = []

    class Observer:
        @hookimpl
        def track_event(self, events):
            got.extend(e for e in events if isinstance(e, FeeUpdateRolledBack))

    register_plugin(Observer(), name="observer")
    before = ChannelPolicy(base_fee_msat=7, fee_ppm=321, inbound_base_fee_msat=-3, inbound_fee_ppm=-20,
                           min_htlc_msat=1000, max_htlc_msat=5_000_000, cltv_delta=40)  # fmt: skip
    node.set_channel_policy(A, FeeUpdate.between(node.channels[A].local_policy, before))
    text = "[default]\nstrategy = static\nfee_ppm = 330\nbase_fee_msat = 0\ntime_lock_delta = 80\nmin_htlc_msat = 1\n"
    apply_plan(lens, node, make_engine(text).plan())
    assert node.channels[A].local_policy != before
    change_id = lens.store.journal(channel_id=A)[0]["id"]
    done = rollback(lens, node, change_id=change_id)
    assert done.state == "verified" and node.channels[A].local_policy == before
    rows = lens.store.journal(channel_id=A)
    assert rows[0]["state"] == "rolled_back" and rows[1]["rollback_of"] == change_id
    assert got and got[0].rollback_of == change_id and not got[0].automatic
    with pytest.raises(LnlensError, match="only applied changes"):
        rollback(lens, node, change_id=change_id)
    other = ChannelId.parse("800001x2x1")
    rollback(lens, node, channel=other)
    assert node.channels[other].local_policy.fee_ppm == 500
    # A second rollback of the channel's last change is refused: it would re-apply what the first undid.
    with pytest.raises(LnlensError, match="already rolled back by change"):
        rollback(lens, node, channel=other)
    assert node.channels[other].local_policy.fee_ppm == 500
    with pytest.raises(LnlensError, match="exactly one"):
        rollback(lens, node)
    with pytest.raises(LnlensError, match="no fee change 999"):
        rollback(lens, node, change_id=999)
