"""A charge-lnd config as operators write them, over a small node, with every decision worked out by hand.

Node at height 800,000. Unless a row says otherwise a channel is 2,000,000 sat, our policy is 1000 msat +
100 ppm, inbound 0/0, min HTLC 0, max HTLC = capacity (2,000,000,000 msat), CLTV 80, active, enabled; the
peer charges 1000 msat + 100 ppm; the on-chain estimate is 10 sat/vB at 6 blocks; no forwards in 7 days.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from lnlens_core.domain import ChannelPolicy, FeeUpdate
from lnlens_core.fees.chargelnd import ActivityStats, PolicyEvaluator
from lnlens_core.testing import make_channel

CONFIG = """\
# fee policy for a small routing node
[default]
strategy = static
base_fee_msat = 1000
fee_ppm = 10
min_htlc_msat = 1000
time_lock_delta = 40

[mydefaults]
# no strategy: every channel picks these up first
base_fee_msat = 0
max_htlc_msat_ratio = 0.9

[ignored-channels]
chan.id = 700000x9x0
strategy = ignore

[private]
chan.private = true
strategy = static
fee_ppm = 0

[disable-idle]
chan.activity_period = 7d
chan.max_htlcs_in = 0
chan.max_htlcs_out = 0
chan.min_age = 2016
chan.max_ratio = 0.1
strategy = disable

[expensive-peers]
chan.min_fee_ppm = 1000
strategy = match_peer

[drained]
chan.max_ratio = 0.2
strategy = proportional
min_fee_ppm = 500
max_fee_ppm = 1500

[balanced]
chan.min_ratio = 0.2
chan.max_ratio = 0.8
strategy = proportional
min_fee_ppm = 100
max_fee_ppm = 500
inbound_level_ppm = 200

[onchain-when-fees-high]
onchain.min_fee_rate = 50
strategy = onchain_fee
"""

WEEK = 7 * 86_400
MAX_HTLC = 1_800_000_000  # 0.9 x (2,000,000 sat - 0 reserve)


PEER_POLICY = ChannelPolicy(base_fee_msat=1000, fee_ppm=100)
IDLE = ActivityStats()


def row(ref, cid, ratio, *, peer=PEER_POLICY, activity=IDLE, **kw):
    channel = make_channel(cid, local_ratio=ratio, peer_id=ref.PEER, **kw)
    return ref.inputs(channel, peer_policy=peer, peer_channels=(channel,), activity={WEEK: activity})


CASES = {
    # id: (channel builder args, on-chain sat/vB at 6 blocks, policy, strategy, update)
    "listed channel is ignored": (("700000x9x0", 0.05), 10.0, "ignored-channels", "ignore", None),
    "private channel is free": (
        ("790000x2x0", 0.5, {"private": True}), 10.0, "private", "static",
        FeeUpdate(base_fee_msat=0, fee_ppm=0, max_htlc_msat=MAX_HTLC),
    ),
    "old idle drained channel is disabled, nothing else touched": (
        ("790000x1x0", 0.05), 10.0, "disable-idle", "disable", FeeUpdate(disabled=True),
    ),
    # 500 blocks = 300,000 s < 7 days: too young for the activity rule, so `drained`: 500 + 0.95 x 1000 = 1450
    "young drained channel is priced, not disabled": (
        ("799500x1x0", 0.05), 10.0, "drained", "proportional",
        FeeUpdate(base_fee_msat=0, fee_ppm=1450, max_htlc_msat=MAX_HTLC),
    ),
    "busy drained channel is priced": (
        ("790000x3x0", 0.05, {"activity": ActivityStats(htlcs_in=1)}), 10.0, "drained", "proportional",
        FeeUpdate(base_fee_msat=0, fee_ppm=1450, max_htlc_msat=MAX_HTLC),
    ),
    # match_peer takes the peer's ppm but the base_fee_msat = 0 picked up from [mydefaults] overrides the peer's
    "expensive peer is matched": (
        ("790000x4x0", 0.5, {"peer": ChannelPolicy(base_fee_msat=2000, fee_ppm=1200)}), 10.0,
        "expensive-peers", "match_peer", FeeUpdate(base_fee_msat=0, fee_ppm=1200, max_htlc_msat=MAX_HTLC),
    ),
    # 100 + 0.5 x 400 = 300; inbound = min(0, 200 - 300) = -100
    "balanced channel": (
        ("790000x5x0", 0.5), 10.0, "balanced", "proportional",
        FeeUpdate(base_fee_msat=0, fee_ppm=300, inbound_fee_ppm=-100, max_htlc_msat=MAX_HTLC),
    ),
    # nothing final matches: [default] overlays [mydefaults] (base back to 1000 = current, so unchanged)
    "full channel falls back to default": (
        ("790000x6x0", 0.9), 10.0, "default", "static",
        FeeUpdate(fee_ppm=10, min_htlc_msat=1000, max_htlc_msat=MAX_HTLC, cltv_delta=40),
    ),
    # trunc((0.01 / 0.1) x (223 x 60)) = 1338
    "full channel when on-chain fees are high": (
        ("790000x6x0", 0.9), 60.0, "onchain-when-fees-high", "onchain_fee",
        FeeUpdate(base_fee_msat=0, fee_ppm=1338, max_htlc_msat=MAX_HTLC),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_corpus(harness, ref, case):
    (cid, ratio, *extra), rate, policy, strategy, update = CASES[case]
    kwargs = dict(extra[0]) if extra else {}
    inputs = row(ref, cid, ratio, **kwargs)
    decision = harness.decide(CONFIG, inputs, env=ref.env(onchain_fee_rates={6: rate}))
    assert (decision.policy, decision.strategy, decision.error) == (policy, strategy, None)
    assert decision.chain == ("mydefaults",)
    assert decision.update == update


def test_corpus_explain_lists_every_matcher_of_every_section_tried(harness, ref):
    env = ref.env(onchain_fee_rates={6: 10.0})
    decision = harness.decide(CONFIG, row(ref, "790000x6x0", 0.9), env=env, explain=True)
    tried = [c.key for c in decision.checks]
    assert tried == [
        "chan.id",
        "chan.private",
        "chan.activity_period", "chan.max_htlcs_in", "chan.max_htlcs_out", "chan.min_age", "chan.max_ratio",
        "chan.min_fee_ppm",
        "chan.max_ratio",
        "chan.min_ratio", "chan.max_ratio",
        "onchain.min_fee_rate",
    ]  # fmt: skip
    text = "\n".join(decision.explain())
    assert "[onchain-when-fees-high] onchain.min_fee_rate: 10 >= 50 sat/vB: FAIL" in text
    assert "policy: default after mydefaults" in text
    assert "strategy: static(base_fee_msat=1000, fee_ppm=10)" in text


def test_corpus_evaluator_is_reusable_across_channels(harness, ref):
    evaluator = PolicyEvaluator(harness.load(CONFIG), harness.strategies)
    rows = [row(ref, f"790000x{i}x0", i / 10) for i in range(1, 10)]
    decisions = evaluator.evaluate_all(rows, ref.env())
    # 0.1 is idle, old and at most 0.1: disabled; 0.2 is still `drained` (bounds are inclusive, file order)
    assert [d.policy for d in decisions] == ["disable-idle", "drained", "balanced", "balanced", "balanced", "balanced",
                                             "balanced", "balanced", "default"]  # fmt: skip
    assert decisions[0].update == FeeUpdate(disabled=True)
    assert decisions[1].update.fee_ppm == 1300  # 500 + 0.8 x 1000
    # 100 + (1 - r) x 400 for r = 0.3 .. 0.8
    assert [d.update.fee_ppm for d in decisions[2:8]] == [380, 340, 300, 260, 220, 180]
    assert replace(decisions[0], checks=()).channel_id == rows[0].channel.channel_id


def test_explain_renders_every_part_of_a_decision(harness, ref):
    text = "[limits]\ntime_lock_delta = 144\n\n[t]\nchan.private = false\nnode.id = " + ref.PEER
    text += "\nstrategy = proportional\nmin_fee_ppm = 100\nmax_fee_ppm = 500\ncb_mode = 1\n"
    lines = harness.decide(text, explain=True).explain()
    assert lines == [
        "[t] chan.private: False == False bool: pass",
        f"[t] node.id: {ref.PEER} in {{{ref.PEER}}} node id: pass",
        "policy: t after limits",
        "values: time_lock_delta from [limits], strategy from [t], min_fee_ppm from [t], max_fee_ppm from [t], "
        "cb_mode from [t]",
        "strategy: proportional(min_fee_ppm=100, max_fee_ppm=500): local ratio 0.4051 of the channel -> 337 ppm",
        "desired: fee_ppm=337, cltv_delta=144, disabled=False, min_fee_ppm_delta=10",
        "note: cb_mode not applied: lnlens does not drive circuitbreaker",
        "update: {'fee_ppm': 337, 'cltv_delta': 144}",
    ]
