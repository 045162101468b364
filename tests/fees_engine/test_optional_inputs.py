"""The backend's optional inputs (assemble.py): absent, failing, or answering. A failure is a note and an error on
the channels that needed it, never a crash, and a failing method is not called again in the same run."""

from __future__ import annotations

from lnlens_core.errors import BackendRejected

COST = "[default]\nstrategy = cost\n"


def by_id(plan):
    return {str(c.channel_id): c for c in plan.changes}


def test_without_the_method_cost_uses_charge_lnds_one_ppm_and_says_so(make_engine):
    plan = make_engine(COST).plan()
    assert any("does not report funding fees" in n for n in plan.notes), plan.notes
    assert all(c.proposed.fee_ppm == 1 and c.error is None for c in plan.changes)


def test_a_funding_fee_is_charged_and_a_peer_paid_channel_costs_one_ppm(make_engine, node):
    node.funding_fee_msat = lambda ch: 2_000_000 if str(ch.channel_id) == "800000x1x0" else None
    rows = by_id(make_engine(COST).plan())
    assert rows["800000x1x0"].proposed.fee_ppm == 1_000  # 2,000 sat over a 2,000,000 sat channel
    assert rows["800001x2x1"].proposed.fee_ppm == 1 and "not paid by our wallet" in rows["800001x2x1"].reason


def test_a_failing_method_is_a_note_and_cost_keeps_its_channels(make_engine, node):
    asked = []

    def refuse(channel):
        asked.append(channel.channel_id)
        raise BackendRejected("the macaroon does not allow GetTransactions: add uri:/lnrpc.Lightning/GetTransactions")

    node.funding_fee_msat = refuse
    plan = make_engine(COST).plan()
    assert len(asked) == 1, "a method that failed is not asked again for every channel"
    assert any("uri:/lnrpc.Lightning/GetTransactions" in n for n in plan.notes), plan.notes
    for c in plan.changes:  # unknown is not "the peer paid": no 1 ppm guess
        assert c.status == "error" and "uri:/lnrpc.Lightning/GetTransactions" in c.error and not c.changes


def test_failing_estimates_peer_sizes_and_sync_are_notes(make_engine, node):
    def refuse(*args):
        raise BackendRejected("not allowed")

    node.onchain_fee_rates = node.peer_node_stats = node.synced_to_chain = refuse
    text = ("[a]\nnode.min_channels = 1\nstrategy = static\nfee_ppm = 1\n\n"
            "[b]\nonchain.synced_to_chain = true\nstrategy = static\nfee_ppm = 2\n\n"
            "[c]\nonchain.max_fee_rate = 50\nstrategy = static\nfee_ppm = 3\n\n"
            "[default]\nstrategy = static\nfee_ppm = 4\n")  # fmt: skip
    plan = make_engine(text).plan()
    notes = " | ".join(plan.notes)
    for what in ("no on-chain fee estimates (not allowed)", "chain sync unknown (not allowed)",
                 "peers' public channels unknown (not allowed)"):  # fmt: skip
        assert what in notes, notes
    assert all(c.status == "error" and "no on-chain fee estimate" in c.error for c in plan.changes)
