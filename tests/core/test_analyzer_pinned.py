"""The analyzer's whole output pinned on recorded inputs, before and after it was vectorised (issue [M]).

``data/analyzer_pinned.json.gz`` holds inputs (channels, flow counters, parameters) and the output
the object-by-object analyzer gave for them: every field of every opportunity and recommendation,
in order, ties included, and :func:`recommend`'s per-channel lists. The inputs come from a simulated
node (payments retried and recovered: ``payment_corrections``), from forwards counted by
:class:`FlowCounter`, and from seeded random counters chosen for the edges: no traffic, ranking
ties (ids whose text order is not their numeric order), channels with only failures, HTLCs larger
than a channel can carry (``increase_capacity``) beside refills (``rebalance_outbound``), channels
without a known policy, inactive ones, counters for channels no longer listed, empty windows.

Recording ran the analyzer as it was before it held its figures in arrays (the inputs are stored, so
later changes to the simulator or the counters do not move them):
``.venv/bin/python tests/core/test_analyzer_pinned.py --record``.
"""

from __future__ import annotations

import dataclasses
import enum
import gzip
import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from lnlens_core.domain import (
    Channel,
    ChannelId,
    ChannelPolicy,
    FailureReason,
    ForwardStatus,
    HtlcEvent,
    Opportunity,
    Recommendation,
)
from lnlens_core.opportunities.analyzer import Analysis, analyze
from lnlens_core.opportunities.flows import METRICS, Flow, FlowCounter, FlowStats, PolicyBook
from lnlens_core.opportunities.params import AnalyzerParams
from lnlens_core.opportunities.recommendations import recommend
from lnlens_core.opportunities.report import opportunity_json
from lnlens_core.opportunities.run import filter_opportunities
from lnlens_core.testing import make_channel

DATA = Path(__file__).parent / "data" / "analyzer_pinned.json.gz"
_LEAVES = (int, float, str, bool, type(None))


# -- the output, every field, with exact types -------------------------------------------------------------------


def canon(value: Any) -> Any:
    """A JSON-able form of an analyzer output; plain Python leaves only (a numpy scalar is an error)."""
    if isinstance(value, ChannelId):
        return str(value)
    if isinstance(value, (Opportunity, Recommendation)):
        return {f.name: canon(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [canon(v) for v in value]
    if isinstance(value, dict):
        return {str(k): [type(v).__name__, canon(v)] for k, v in value.items()}
    assert type(value) in _LEAVES, f"{value!r} is a {type(value)}, not a plain Python value"
    return [type(value).__name__, value]


def output(stats: FlowStats, channels: list[Channel], params: AnalyzerParams) -> dict[str, Any]:
    opportunities, pairs = analyze(stats, channels, params)
    recs = recommend(stats, {c.channel_id: c for c in channels}, params)
    return {
        "opportunities": canon(list(opportunities)),
        "pairs": canon(list(pairs)),
        "recommend": [[str(cid), canon(list(found))] for cid, found in recs.items()],
    }


# -- inputs, stored as recorded ----------------------------------------------------------------------------------


def _cid(text: str) -> ChannelId:
    return ChannelId.parse(text)


def dump_inputs(stats: FlowStats, channels: list[Channel], params: AnalyzerParams) -> dict[str, Any]:
    def flows(mapping):
        return [[str(k), [getattr(f, m) for m in METRICS]] for k, f in mapping.items()]

    def channel(c: Channel):
        row = {f.name: getattr(c, f.name) for f in dataclasses.fields(c) if f.name != "pending_htlcs"}
        row["channel_id"] = str(c.channel_id)
        row["local_policy"] = dataclasses.asdict(c.local_policy) if c.local_policy else None
        assert not c.pending_htlcs
        return row

    return {
        "params": dataclasses.asdict(params),
        "since": stats.since, "until": stats.until, "observed_s": stats.observed_s,
        "metrics": list(METRICS),
        "out": flows(stats.out), "inbound": flows(stats.inbound),
        "pairs": [[str(a), str(b), [getattr(f, m) for m in METRICS]] for (a, b), f in stats.pairs.items()],
        "channels": [channel(c) for c in channels],
    }  # fmt: skip


def load_inputs(case: dict[str, Any]) -> tuple[FlowStats, list[Channel], AnalyzerParams]:
    names = case["metrics"]

    def flow(row):
        f = Flow(**dict(zip(names, row, strict=True)))
        if "missed_payments" not in names:
            # recorded before Flow.missed_payments ([L]): the monthly range then counted the failures here,
            # so that count stands in for it and the recorded output still holds
            f = dataclasses.replace(f, missed_payments=f.failed_here)
        return f

    stats = FlowStats(case["since"], case["until"], case["observed_s"],
                      {_cid(k): flow(v) for k, v in case["out"]}, {_cid(k): flow(v) for k, v in case["inbound"]},
                      {(_cid(a), _cid(b)): flow(v) for a, b, v in case["pairs"]})  # fmt: skip
    channels = []
    for row in case["channels"]:
        row = dict(row, channel_id=_cid(row["channel_id"]))
        row["local_policy"] = ChannelPolicy(**row["local_policy"]) if row["local_policy"] else None
        channels.append(Channel(**row))
    return stats, channels, AnalyzerParams(**case["params"])


def _cases() -> list[dict[str, Any]]:
    with gzip.open(DATA, "rt") as f:
        return json.load(f)


CASES = _cases() if DATA.exists() else []


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_analyzer_gives_the_recorded_output(case):
    stats, channels, params = load_inputs(case["inputs"])
    got = output(stats, channels, params)
    for part in ("opportunities", "pairs", "recommend"):
        assert len(got[part]) == len(case["expected"][part]), part
        for i, (mine, recorded) in enumerate(zip(got[part], case["expected"][part], strict=True)):
            assert mine == recorded, f"{part}[{i}]"


@pytest.mark.parametrize("case", CASES[:20], ids=[c["name"] for c in CASES[:20]])
def test_a_selection_builds_what_filtering_everything_keeps(case):
    """Analysis selects on its arrays what filter_opportunities keeps of the whole JSON output."""
    stats, channels, params = load_inputs(case["inputs"])
    found = Analysis(stats, channels, params)
    everything = {"opportunities": [opportunity_json(o) for o in found.opportunities()],
                  "pairs": [opportunity_json(o) for o in found.pairs()]}  # fmt: skip
    named = [None, *{o["short_channel_id"] for o in everything["pairs"] + everything["opportunities"]}]
    for min_urgency, channel, limit in [(0, None, None), (0, None, 3), (20, None, None), (101, None, 1),
                                        *((0, ChannelId.parse(c), 2) for c in sorted(named[1:])[:4])]:  # fmt: skip
        pick = {"min_urgency": min_urgency, "channel": channel, "limit": limit}
        assert [opportunity_json(o) for o in found.opportunities(**pick)] == filter_opportunities(
            everything["opportunities"], **pick)
        assert [opportunity_json(o) for o in found.pairs(**pick)] == filter_opportunities(everything["pairs"], **pick)


def test_the_recorded_cases_cover_the_edges():
    assert len(CASES) >= 40
    kinds = {r["kind"][1] if isinstance(r["kind"], list) else r["kind"]
             for c in CASES for o in c["expected"]["opportunities"] for r in o["recommendations"]}  # fmt: skip
    assert kinds == {"rebalance_outbound", "rebalance_inbound", "increase_capacity", "raise_fees", "lower_fees",
                     "investigate"}  # fmt: skip
    assert any(not c["expected"]["opportunities"] and not c["inputs"]["out"] for c in CASES), "an empty window"
    assert sum(len(c["expected"]["pairs"]) for c in CASES) > 50
    recovered = [o for c in CASES for o in c["expected"]["opportunities"] if o["missed_recovered_msat"][1] > 0]
    assert recovered, "payments refused and then carried (payment_corrections)"


# -- how the inputs were made (run with --record, against the analyzer being pinned) -----------------------------

_IDS = [(9, 1, 0), (10, 1, 0), (99, 0, 1), (100, 2, 0), (100, 10, 0), (100, 9, 3), (800_000, 1, 0), (800_000, 1, 1),
        (1_000, 5, 0), (999, 5, 0), (700_001, 3, 2), (70_000, 3, 2)]  # fmt: skip


def random_case(seed: int) -> tuple[FlowStats, list[Channel], AnalyzerParams]:
    """Counters drawn for the edges: small counts and a few amounts, so ranks tie often."""
    rng = random.Random(seed)
    ids = [ChannelId(*t) for t in _IDS] + [ChannelId(800_100 + i, i % 7, 0) for i in range(rng.choice([0, 5, 40]))]
    rng.shuffle(ids)
    listed = ids[: rng.randint(0, len(ids))]
    channels = []
    for cid in listed:
        capacity = rng.choice([0, 1_000_000, 5_000_000, 2_000_000_000, 16_000_000_000])
        ratio = rng.choice([0.0, 0.05, 0.1, 0.2, 0.5, 0.8, 0.85, 0.95, 1.0, rng.random()])
        policy = None if rng.random() < 0.1 else ChannelPolicy(rng.choice([0, 1000]),
                                                                rng.choice([0, 1, 10, 50, 99, 100, 500, 5000]))
        local = int(capacity * ratio)
        channels.append(Channel(
            cid, f"03{cid.block:064x}"[:66], capacity, local, capacity - local, policy, active=rng.random() > 0.1,
            peer_alias=f"p{cid.block}", local_reserve_msat=rng.choice([0, capacity // 100]),
            commit_fee_msat=rng.choice([0, 3_000_000]), spendable_msat=rng.choice([None, None, int(local * 0.9)]),
        ))  # fmt: skip

    def flow(*, only_failures: bool = False) -> Flow:
        liq, fee, other = (rng.choice([0, 0, 1, 2, 3, 5, 10, 30]) for _ in range(3))
        down = rng.choice([0, 0, 1, 4])
        settled = 0 if only_failures else rng.choice([0, 1, 5, 20, 100])
        stale = rng.randint(0, fee)
        missed_liq = liq * rng.choice([0, 1_000, 50_000, 400_000])
        missed = missed_liq + (fee + other) * rng.choice([0, 1_000, 50_000])
        offered = rng.randint(0, fee)
        return Flow(
            attempts=liq + fee + other + down + settled, settled=settled, failed_liquidity=liq, failed_fee=fee,
            failed_fee_stale=stale, failed_other=other, failed_downstream=down,
            revenue_msat=settled * rng.choice([0, 1_000, 7_777]),
            volume_msat=settled * rng.choice([0, 1_000_000, 300_000_000, 3_000_000_000]),
            missed_revenue_msat=missed, missed_volume_msat=(liq + fee + other) * rng.choice([1_000_000, 90_000_000]),
            missed_liquidity_msat=missed_liq, missed_revenue_htlc_msat=missed + rng.choice([0, 1_000]),
            missed_recovered_msat=rng.choice([0, 0, 2_000]),
            offered_fee_ppm_sum=offered * rng.choice([0, 1, 40, 200]), offered_fee_count=offered,
            max_failed_liquidity_msat=rng.choice([0, 500_000, 1_000_000_000, 20_000_000_000]) if liq else 0,
        )  # fmt: skip

    shared = flow()  # the same counters on several channels: ties broken by the id's text
    out = {cid: (shared if rng.random() < 0.2 else flow(only_failures=rng.random() < 0.2))
           for cid in ids if rng.random() < 0.7}  # fmt: skip
    inbound = {cid: flow() for cid in ids if rng.random() < 0.5}
    pairs = {}
    for _ in range(rng.choice([0, 5, 60])):
        a, b = rng.sample(ids, 2)
        pairs[(a, b)] = shared if rng.random() < 0.2 else flow()
    until = 1_000_000.0
    window = rng.choice([0.0, 3_600.0, 86_400.0, 604_800.5])
    observed = rng.choice([0.0, window, window / 3])
    params = AnalyzerParams(
        min_failures=rng.choice([0, 1, 3]), min_missed_msat=rng.choice([0, 100_000]),
        target_ratio=rng.choice([0.5, 0.3, 0.9]), min_refill_fee_ppm=rng.choice([0, 100]),
        full_ratio=rng.choice([0.8, 0.4]), drain_share=rng.choice([0.5, 0.05]),
        lower_step=rng.choice([0.3, 0.0]), raise_step=rng.choice([0.25, 0.0]),
        demand_horizon_s=rng.choice([7 * 86_400, 3_600]), revenue_weight=rng.choice([40.0, 100]),
        revenue_saturation_msat=rng.choice([10_000_000, 7]), frequency_saturation=rng.choice([10, 3]),
    )  # fmt: skip
    return FlowStats(until - window, until, observed, out, inbound, pairs), channels, params


def counted_case(seed: int) -> tuple[FlowStats, list[Channel], AnalyzerParams]:
    """Forwards counted by FlowCounter, some retried and some of those then carried (payment corrections)."""
    rng = random.Random(seed)
    channels = [make_channel(ChannelId(700_000 + i, i % 30, i % 4), local_ratio=(i % 10) / 10,
                             capacity_msat=rng.choice([5_000_000, 2_000_000_000]), fee_ppm=rng.choice([0, 50, 200]))
                for i in range(120)]  # fmt: skip
    book = PolicyBook()
    book.observe_channels(channels, 0.0)
    ids = [c.channel_id for c in channels]
    routes = [tuple(rng.sample(ids, 2)) for _ in range(300)]
    reasons = [FailureReason.INSUFFICIENT_BALANCE, FailureReason.FEE_INSUFFICIENT, FailureReason.HTLC_LIMIT]
    events, t = [], 0.0
    for i in range(6_000):
        a, b = rng.choice(routes)
        t += rng.choice([0.5, 3.0, 30.0])
        amount = rng.choice([1_000_000, 40_000_000, 3_000_000_000])
        if rng.random() < 0.6:
            events.append(HtlcEvent(a, amount + 1000, ForwardStatus.SETTLED, t, in_htlc_id=i, out_channel=b,
                                    out_msat=amount, fee_msat=1000, resolved_time=t + 1))  # fmt: skip
        else:
            events.append(HtlcEvent(a, amount + 1000, ForwardStatus.LOCAL_FAILED, t, in_htlc_id=i, out_channel=b,
                                    out_msat=rng.choice([amount, None]), failure_reason=rng.choice(reasons),
                                    resolved_time=t))  # fmt: skip
    counter = FlowCounter(book, since=0.0, until=t + 1)
    counter.add(events)
    return counter.stats(), channels, AnalyzerParams(min_failures=rng.choice([1, 3]), min_missed_msat=0)


def simulated_case(seed: int) -> tuple[FlowStats, list[Channel], AnalyzerParams]:
    from lnlens_sim.scenario import SimSettings, build

    node = build(SimSettings(network="synthetic", nodes=80, seed=seed, payments_per_hour=6_000))
    book = PolicyBook()
    book.observe_channels(node.list_channels(), node.clock.now())
    node.run(3 * 3_600)
    counter = FlowCounter(book, since=0.0, until=node.clock.now() + 1)
    counter.add(node.events)
    return counter.stats(), node.list_channels(), AnalyzerParams(min_failures=1, min_missed_msat=0)


def edge_case() -> tuple[FlowStats, list[Channel], AnalyzerParams]:
    """A starved channel that is also full enough to give (it is not its own target), an inactive full channel that
    then gives to it, and a channel whose own traffic in and back out failed (not its own source)."""
    a, b, x, s = (ChannelId.parse(t) for t in ("100x1x0", "200x1x0", "300x1x0", "400x1x0"))
    starved = Flow(attempts=6, failed_liquidity=6, missed_revenue_msat=600_000, missed_volume_msat=6_000_000_000,
                   missed_liquidity_msat=600_000, missed_revenue_htlc_msat=600_000)  # fmt: skip
    too_big = Flow(attempts=6, failed_liquidity=6, missed_revenue_msat=900_000, missed_volume_msat=6_000_000_000,
                   missed_liquidity_msat=900_000, missed_revenue_htlc_msat=900_000,
                   max_failed_liquidity_msat=1_050_000_000)  # fmt: skip
    brought = Flow(attempts=3, settled=3, volume_msat=3_000_000)
    channels = [make_channel(a, local_ratio=0.5), make_channel(b, local_ratio=0.95, active=False),
                make_channel(x, local_ratio=0.95, spendable_msat=1_000_000_000), make_channel(s, local_ratio=0.93)]
    stats = FlowStats(0.0, 86_400.0, 86_400.0, {a: starved, x: too_big}, {a: brought, b: brought},
                      {(x, x): too_big, (s, x): Flow(attempts=1, failed_liquidity=1, missed_liquidity_msat=5)})
    return stats, channels, AnalyzerParams(target_ratio=0.9, full_ratio=0.4)  # fmt: skip


def record() -> None:
    cases = [("empty", FlowStats(0.0, 3_600.0, 0.0, {}, {}, {}), [make_channel()], AnalyzerParams())]
    cases += [("edges", *edge_case())]
    cases += [(f"random-{seed}", *random_case(seed)) for seed in range(60)]
    cases += [(f"counted-{seed}", *counted_case(seed)) for seed in range(3)]
    cases += [(f"simulated-{seed}", *simulated_case(seed)) for seed in (5, 6)]
    recorded = []
    for name, stats, channels, params in cases:
        inputs = dump_inputs(stats, channels, params)
        # what is pinned is what the stored inputs give (floats and ids survive the round trip)
        recorded.append({"name": name, "inputs": inputs, "expected": output(*load_inputs(inputs))})
    DATA.parent.mkdir(exist_ok=True)
    with gzip.open(DATA, "wt", compresslevel=9) as f:
        json.dump(recorded, f, separators=(",", ":"))
    print(f"recorded {len(recorded)} cases in {DATA} ({DATA.stat().st_size:,} bytes)")


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    record()
