"""Experiment: can a learned fee response beat "no action" where the balance model only ties it?

The shipped liquidity model predicts balance ratios; on the simulated mainnet its fee
opinions tie no action (docs/MODEL.md, "Decision quality"), because the money in this
simulator is in fee levels: senders weigh fees strongly and the best direction differs
per node and channel. This script tests the next step before anything ships:

1. Data (training centres and seeds only): after a day of warm-up, every day each
   channel of ours with a non-zero fee gets its starting fee times a random multiplier
   from ``MULTIPLIERS``; the sample is the channel's features at that moment
   (``lnlens_core.model.features``, the serving schema), log2 of the multiplier, and the fee
   revenue the channel earned over the next 24 h (msat).
2. A gradient-boosted regressor learns revenue from features and multiplier.
3. Policy on held-out seeds: every 24 h, each channel gets the multiplier (applied to
   its current fee) with the highest predicted revenue, if that beats keeping the fee by
   ``--min-gain``. Compared with no action on the same network, seed and traffic.

The policy is evaluated through the serving code (:class:`lnlens_core.model.fee_model.FeeResponseModel`
on the exported ONNX bytes), so what is measured is what lnlens serves. ``--out DIR`` writes
the model as ``fee-response-default.onnx`` with its card ``fee-response-default.json``; the
model's ``confidence`` metadata is the share of held-out runs in which the policy earned more
than no action. ``make fee-model`` writes the shipped one. Run:
``.venv/bin/python models/train/fee_response.py [--out models/lnlens_models]`` (docs/MODEL.md quotes its output).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from lnlens_sim.scenario import SimSettings, build, load_graph  # noqa: E402
from simdata import mainnet_centres  # noqa: E402

from lnlens_core.domain import FeeUpdate, ForwardStatus  # noqa: E402
from lnlens_core.errors import BackendRejected  # noqa: E402
from lnlens_core.model.features import LONG_WINDOW_S, compute_features, windows_from_events  # noqa: E402
from lnlens_core.model.fee_model import FEE_INPUTS, FEE_OUTPUT, FeeResponseModel  # noqa: E402
from lnlens_core.model.learning import export_onnx  # noqa: E402
from lnlens_core.opportunities.flows import PolicyBook  # noqa: E402

MULTIPLIERS = (0.5, 0.7, 1.0, 1.4, 2.0)
DAY_S = 86_400


class Sim:
    """One simulated node with what features need: its peers' policies and our policy history."""

    def __init__(self, centre: str, seed: int, graph, nodes: int) -> None:
        self.node = build(SimSettings(network="mainnet", node=centre, nodes=nodes, seed=seed), graph=graph)
        self.peers = {ch.channel_id: self.node.get_peer_policy(ch.channel_id) for ch in self.node.list_channels()}
        self.book = PolicyBook()
        self.book.observe_channels(self.node.list_channels(), self.node.clock.now())

    def features(self):
        now = self.node.clock.now()
        channels = list(self.node.list_channels())
        self.book.observe_channels(channels, now)
        recent = [e for e in self.node.events if now - LONG_WINDOW_S <= e.received_time < now]
        return channels, compute_features(channels, windows_from_events(recent, self.book, now),
                                          peer_policies=self.peers, book=self.book)  # fmt: skip

    def set_fee(self, channel, fee_ppm: int) -> None:
        if fee_ppm != channel.local_policy.fee_ppm:
            try:
                self.node.set_channel_policy(channel.channel_id, FeeUpdate(fee_ppm=fee_ppm))
            except BackendRejected:  # a snapshot policy the simulator considers invalid: kept
                pass

    def revenue_by_channel(self, since: float) -> dict:
        out: dict = {}
        for e in self.node.events:
            if e.received_time >= since and e.status is ForwardStatus.SETTLED:
                out[e.out_channel] = out.get(e.out_channel, 0) + (e.fee_msat or 0)
        return out


def collect(centre: str, seed: int, graph, *, nodes: int, days: int) -> tuple[np.ndarray, np.ndarray]:
    sim = Sim(centre, seed, graph, nodes)
    sim.node.run(DAY_S)
    start_fee = {c.channel_id: c.local_policy.fee_ppm for c in sim.node.list_channels()}
    rng = np.random.default_rng([seed, 7])
    xs, ys = [], []
    for _ in range(days):
        channels, x = sim.features()
        chosen = []
        for ch, row in zip(channels, x, strict=True):
            base = start_fee.get(ch.channel_id, 0)
            if base <= 0 or not ch.active:
                continue
            m = float(rng.choice(MULTIPLIERS))
            sim.set_fee(ch, max(1, round(base * m)))
            chosen.append((ch.channel_id, row, m))
        t0 = sim.node.clock.now()
        sim.node.run(DAY_S)
        revenue = sim.revenue_by_channel(t0)
        for cid, row, m in chosen:
            xs.append(np.append(row, np.log2(m)))
            ys.append(revenue.get(cid, 0))
    return np.array(xs, dtype=np.float32), np.array(ys, dtype=np.float64)


def train(x: np.ndarray, y: np.ndarray):
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline

    model = GradientBoostingRegressor(n_estimators=200, max_depth=3, learning_rate=0.05, subsample=0.8,
                                      min_samples_leaf=20, random_state=0)  # fmt: skip
    return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), model).fit(x, y)


TARGET = (
    "fee revenue (msat) the channel earns over the next 24 h with its fee times the multiplier "
    "(simulated mainnet neighbourhoods, every fee multiplied at once; models/train/fee_response.py)"
)


def export(pipe, *, metrics: dict, confidence: float) -> bytes:
    return export_onnx(pipe, name="fee-response-default", version="1", trained_at=0.0, metrics=metrics,
                       extra={"multipliers": list(MULTIPLIERS), "confidence": round(confidence, 3)},
                       input_names=FEE_INPUTS, output=FEE_OUTPUT, target=TARGET)  # fmt: skip


def evaluate(centre: str, seed: int, graph, model: FeeResponseModel, *, nodes: int, eval_days: int,
             min_gain: float) -> dict:  # fmt: skip
    """No action, then the model's opinions applied in full once a day, on the same network and traffic."""
    out = {}
    for policy in ("none", "fee-response"):
        sim = Sim(centre, seed, graph, nodes)
        sim.node.run(DAY_S)
        r0, n0 = sim.node.stats.revenue_msat, len(sim.node.events)
        changes = 0
        for _ in range(eval_days):
            if policy == "fee-response":
                channels, x = sim.features()
                by_id = {c.channel_id: c for c in channels}
                for cid, opinion in model.opinions(channels, x, min_gain=min_gain).items():
                    sim.set_fee(by_id[cid], opinion.fee_ppm)
                    changes += 1
            sim.node.run(DAY_S)
        ours = sim.node.events[n0:]
        decided = [e for e in ours if e.status in (ForwardStatus.SETTLED, ForwardStatus.LOCAL_FAILED)]
        out[policy] = {"revenue_msat": sim.node.stats.revenue_msat - r0, "changes": changes,
                       "success_rate": sum(e.status is ForwardStatus.SETTLED for e in decided) / max(len(decided), 1)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-seeds", default="1,2,3")
    p.add_argument("--train-centres", type=int, default=3)
    p.add_argument("--days", type=int, default=4, help="randomised days per training run")
    p.add_argument("--eval-seeds", default="201,202,203")
    p.add_argument("--eval-days", type=int, default=2)
    p.add_argument("--nodes", type=int, default=200)
    p.add_argument("--min-gain", type=float, default=0.1)
    p.add_argument("--out", help="write fee-response-default.onnx and its card here")
    args = p.parse_args(argv)
    graph = load_graph(SimSettings(network="mainnet"))
    centres = mainnet_centres(graph, args.train_centres)
    parts = [collect(c, int(s), graph, nodes=args.nodes, days=args.days)
             for c in centres for s in args.train_seeds.split(",")]  # fmt: skip
    x = np.concatenate([a for a, _ in parts])
    y = np.concatenate([b for _, b in parts])
    print(f"training samples: {len(y)}, zero-revenue share {np.mean(y == 0):.2f}", file=sys.stderr)
    pipe = train(x, y)
    # Served as exported (float32 ONNX): evaluate exactly that; confidence is filled in afterwards.
    served = FeeResponseModel.load(export(pipe, metrics={}, confidence=0.0))
    rows = []
    for seed in (int(s) for s in args.eval_seeds.split(",")):
        r = evaluate(centres[0], seed, graph, served, nodes=args.nodes, eval_days=args.eval_days,
                     min_gain=args.min_gain)  # fmt: skip
        rows.append({"seed": seed, **r})
        print(json.dumps(rows[-1]), file=sys.stderr)
    totals = {p: sum(r[p]["revenue_msat"] for r in rows) for p in ("none", "fee-response")}
    won = sum(r["fee-response"]["revenue_msat"] > r["none"]["revenue_msat"] for r in rows) / max(len(rows), 1)
    report = {"settings": vars(args), "samples": len(y), "zero_revenue_share": round(float(np.mean(y == 0)), 3),
              "runs": rows, "totals_msat": totals, "confidence": round(won, 3)}  # fmt: skip
    if args.out:
        out = Path(args.out)
        metrics = {"held_out": rows, "totals_msat": totals, "samples": len(y)}
        (out / "fee-response-default.onnx").write_bytes(export(pipe, metrics=metrics, confidence=won))
        (out / "fee-response-default.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
