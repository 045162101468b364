"""``lnlens sim sweep``: tasks on a real Dask local cluster, results kept as they finish, paired statistics.

The statistics are checked against scipy's own paired t-test and against Holm's
procedure worked by hand; the sweep against a plain loop over the same tasks.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from lnlens_sim.sweep import ResultStore, SweepSpec, iter_seeds, run_local, tasks_of
from lnlens_sim.sweepstats import POOLED, compare, holm, summarise
from scipy import stats

from lnlens_core.cli import main
from lnlens_core.errors import ConfigError

pytest.importorskip("dask.distributed")

# A small neighbourhood of the default node, one simulated hour evaluated: seconds per task.
TINY = ["--nodes", "60", "--warmup", "0h", "--eval", "2h", "--every", "1h", "--centres", "1"]


def test_paired_statistics_agree_with_scipy():
    rng = np.random.default_rng(4)
    d = rng.normal(300, 900, 24)
    got = compare(d)
    ref = stats.ttest_rel(d + 1000.0, np.full(24, 1000.0))
    low, high = ref.confidence_interval(0.95)
    assert got["p"] == pytest.approx(ref.pvalue) and got["n"] == 24
    assert (got["low_msat"], got["high_msat"]) == (round(low), round(high))
    assert got["wins"] + got["losses"] + got["ties"] == 24 and got["wins"] == int((d > 0).sum())
    # 80 % power at 5 %: n = ((1.96 + 0.84) sd / mean)^2
    assert got["seeds_needed"] == int(np.ceil(((1.959964 + 0.841621) * d.std(ddof=1) / abs(d.mean())) ** 2))
    assert compare([5.0])["p"] is None and compare([0.0, 0.0])["p"] == 1.0


def test_holm_by_hand():
    # sorted 0.01, 0.02, 0.04, 0.30 -> x4, x3, x2, x1, then made monotone
    assert holm([0.04, 0.01, 0.30, 0.02]) == pytest.approx([0.08, 0.04, 0.30, 0.06])
    assert holm([0.5, 0.6]) == [1.0, 1.0]


def row(centre, seed, policy, net, channels=10):
    return {"centre": centre, "alias": centre, "channels": channels, "seed": seed, "policy": policy, "net_msat": net,
            "revenue_msat": max(net, 0), "rebalance_fee_msat": max(-net, 0), "settled": 1, "decided": 1,
            "rebalances": 0, "rebalances_ok": 0}  # fmt: skip


def test_summary_pairs_by_seed_and_picks_the_best_rule_per_node():
    rows = []
    for seed in range(6):
        rows += [row("a", seed, "none", 1000 + 100 * seed), row("a", seed, "balance-based", 1100 + 100 * seed),
                 row("a", seed, "balance-rule", 900 + 100 * seed + seed % 2),
                 row("a", seed, "model", 1300 + 100 * seed),
                 row("b", seed, "none", 50, 40), row("b", seed, "balance-rule", 70 + seed, 40),
                 row("b", seed, "model", 40 + seed, 40)]  # fmt: skip
    report = summarise(rows)
    a, b, pooled = report["groups"]
    assert (a["node"], b["node"], pooled["node"]) == ("a", "b", POOLED)  # smaller node first
    assert a["best_rule"] == "balance-based" and b["best_rule"] == "balance-rule"
    model_a = next(p for p in a["policies"] if p["policy"] == "model")
    assert model_a["vs_none"]["mean_msat"] == 300 and model_a["vs_none"]["wins"] == 6
    assert model_a["vs_best_rule"]["mean_msat"] == 200
    model_b = next(p for p in b["policies"] if p["policy"] == "model")
    assert model_b["vs_best_rule"]["mean_msat"] == -30 and model_b["vs_best_rule"]["losses"] == 6
    # every tested comparison is corrected, and never below its raw p
    tested = [v for g in report["groups"] for p in g["policies"] for v in (p["vs_none"], p["vs_best_rule"]) if v]
    assert all(v["p_holm"] is None or v["p_holm"] >= v["p"] for v in tested)
    assert report["comparisons"] == sum(v["p"] is not None for v in tested)


def test_seeds_and_policies_are_checked():
    assert list(iter_seeds("1-3,7")) == [1, 2, 3, 7]
    with pytest.raises(ConfigError, match="--seeds"):
        list(iter_seeds("1-x"))
    with pytest.raises(ConfigError, match="--policies: unknown nothing"):
        tasks_of(SweepSpec(), ["c"], [1], ["none", "nothing"])


def test_a_sweep_on_a_local_cluster_equals_a_plain_loop_and_resumes(tmp_path, capsys):
    out = tmp_path / "sweep.jsonl"
    argv = ["sim", "sweep", "--out", str(out), "--seeds", "1-2", "--policies", "none,balance-based", *TINY]
    assert main([*argv, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["ran"] == 4 and first["tasks"] == 4 and first["failed"] == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 4

    # The same tasks in a plain loop give the same money, task by task.
    spec = SweepSpec(nodes=60, warmup_h=0.0, eval_h=2.0, every_h=1.0)
    looped: list[dict] = []
    run_local(tasks_of(spec, first["nodes"], [1, 2], ["none", "balance-based"]), looped.append)
    dask_rows = {r["key"]: r for r in map(json.loads, lines)}
    for r in looped:
        assert {k: v for k, v in r.items() if k != "wall_s"} == {
            k: v for k, v in dask_rows[r["key"]].items() if k != "wall_s"
        }

    # Interrupted mid-write: the last result lost, half a line left. The rerun runs that task only.
    out.write_text("\n".join(lines[:3]) + '\n{"key": "trunc')
    assert main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    again = json.loads(captured.out)
    assert "sweep.jsonl:4: not a sweep result" in captured.err
    assert again["ran"] == 1 and again["groups"] == first["groups"]
    assert len(ResultStore(out).rows) == 4

    # Nothing left to run: the table (and a plot) come from the stored results alone.
    plot = tmp_path / "sweep.png"
    assert main([*argv, "--plot", str(plot)]) == 0
    text = capsys.readouterr().out
    assert "balance-based" in text and "Holm" in text and plot.stat().st_size > 0
    # the heading is styled text: the safe console reads no markup
    assert text.startswith("lnlens sim sweep 1 node(s) x 2 seed(s)") and "[bold]" not in text


def _warmed_up(hours: float):
    """The default node's 60-node neighbourhood after ``hours``, with the run's policy book and start: (node, state)."""
    from lnlens_sim.scenario import MAINNET_DEFAULT_NODE, SimSettings, build
    from lnlens_sim.sweep import _graph

    from lnlens_core.opportunities.flows import PolicyBook

    node = build(SimSettings(node=MAINNET_DEFAULT_NODE, nodes=60, seed=5), graph=_graph("mainnet"))
    start = node.clock.now()
    book = PolicyBook()
    book.observe_channels(node.list_channels(), start)
    node.run(hours * 3_600)
    return node, {"book": book, "start": start}


def test_idle_discount_cuts_only_idle_channels_holding_liquidity_within_the_rails():
    from lnlens_sim.sweep import apply_policy

    from lnlens_core.domain import ForwardStatus

    node, state = _warmed_up(13)
    book = state["book"]
    before = {c.channel_id: c for c in node.list_channels()}
    earned = {e.out_channel for e in node.events if e.status is ForwardStatus.SETTLED}
    apply_policy("idle-discount", node, state, node.clock.now())
    after = {c.channel_id: c.local_policy.fee_ppm for c in node.list_channels()}
    cut = {cid for cid, fee in after.items() if fee != before[cid].local_policy.fee_ppm}
    assert cut and set(state["journal"]) == set(after)
    for cid in cut:
        old = before[cid].local_policy.fee_ppm
        assert cid not in earned and before[cid].balance_ratio >= 0.3
        assert old - max(50, old // 4) - 1 <= after[cid] < old  # the default rails' step
    idle = [cid for cid, c in before.items()
            if cid not in earned and c.balance_ratio >= 0.3 and c.local_policy.fee_ppm > 1]  # fmt: skip
    assert len(cut) >= len(idle) - 2  # (a snapshot policy the simulator refuses to change keeps its fee)
    book.observe_channels(node.list_channels(), node.clock.now())
    apply_policy("idle-discount", node, state, node.clock.now() + 3_600)
    assert {c.channel_id: c.local_policy.fee_ppm for c in node.list_channels()} == after, "not judged again yet"


def test_zero_revenue_changes_only_channels_that_earned_nothing_within_the_rails():
    from lnlens_sim.sweep import apply_policy

    from lnlens_core.domain import ForwardStatus

    node, state = _warmed_up(7)
    before = {c.channel_id: c for c in node.list_channels()}
    settled = [e for e in node.events if e.status is ForwardStatus.SETTLED]
    earned = {e.out_channel for e in settled if e.fee_msat}
    free = {cid for cid in before if cid not in earned and sum(e.out_channel == cid for e in settled) >= 3}
    apply_policy("zero-revenue", node, state, node.clock.now())
    after = {c.channel_id: c.local_policy.fee_ppm for c in node.list_channels()}
    changed = {cid for cid, fee in after.items() if fee != before[cid].local_policy.fee_ppm}
    assert changed and not changed & earned, "a channel that earned anything keeps its fee"
    for cid in changed:
        old, ch = before[cid].local_policy.fee_ppm, before[cid]
        assert abs(after[cid] - old) <= max(50, old // 4), "the default rails' step"
        if after[cid] > old:  # free forwards, or a drained channel cheaper than a sibling to the same peer
            dearer = any(c.peer_id == ch.peer_id and c.local_policy.fee_ppm > old for c in before.values())
            assert cid in free or (ch.balance_ratio < 0.3 and dearer)
        else:
            assert ch.balance_ratio >= 0.3 and not any(e.out_channel == cid for e in settled)


def test_a_demand_response_arm_scales_every_fee_once():
    from lnlens_sim.scenario import MAINNET_DEFAULT_NODE, SimSettings, build
    from lnlens_sim.sweep import _graph, apply_policy

    node = build(SimSettings(node=MAINNET_DEFAULT_NODE, nodes=60, seed=5), graph=_graph("mainnet"))
    before = {c.channel_id: c.local_policy.fee_ppm for c in node.list_channels()}
    state: dict = {}
    for _ in range(2):
        apply_policy("fees-x2", node, state, node.clock.now())
    after = {c.channel_id: c.local_policy.fee_ppm for c in node.list_channels()}
    doubled = [cid for cid in before if after[cid] == 2 * before[cid]]
    assert len(doubled) >= len(before) - 2 and all(after[c] in (before[c], 2 * before[c]) for c in before)
