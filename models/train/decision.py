"""Decision quality: follow each policy on held-out simulator seeds over the mainnet graph and count the money.

Policies, each run on the same network, seed and traffic stream (the simulator draws
traffic from its own seeded stream, so only the policy differs):

- ``none``: no action.
- ``chargelnd-proportional``: charge-lnd's ``proportional`` strategy
  (lnlens_core.fees.chargelnd.strategies.Proportional, min 1 ppm, max 2000 ppm) applied
  to every channel every ``every_h`` hours; no rebalancing.
- ``balance-rule``: LightningLens's auto-recovery rebalancer as a baseline (seed row 49):
  a channel outside 35-65 % local (``rule`` threshold 0.15) gets a circular rebalance of 20 % of its capacity
  toward 50 %, from (or into) the channel furthest the other way, with a fee ceiling of
  what forwarding that amount once at the receiving channel's fee earns.
- ``balance-based``: [F]'s ``balance_based`` fee strategy (lnlens_core.fees.lnlens_strategies,
  ``fee_ppm`` = the node's median fee at the start, its other defaults); no rebalancing.
- ``model``: what lnlens's models suggest (the shipped defaults through onnxruntime): the
  liquidity model's rebalances (lnlens_core.suggestions), executed as circular rebalances
  with their own fee ceiling (the backtest gain), and fee opinions through the
  ``model_driven`` strategy with its defaults: the fee-response model's
  (lnlens_core.fee_model) when it is installed, as lnlens serves them, else the liquidity
  model's balance opinions (:func:`lnlens_core.suggestions.fee_suggestions`, ``--balance-opinions``).
- ``model-cap``: the same rebalances under the balance rule's fee ceiling and no fee changes,
  which separates what the model chooses from how much it is allowed to pay.

Measured over the evaluation window after a warm-up: routing revenue, rebalancing
fees paid, net = revenue - rebalancing fees, forwards decided at our node that
settled (success rate), rebalances tried and done.

Run: ``.venv/bin/python models/train/decision.py`` (docs/MODEL.md quotes its output).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from lnlens_sim.scenario import SimSettings, build, load_graph  # noqa: E402
from simdata import mainnet_centres  # noqa: E402

from lnlens_core.backend import Capability  # noqa: E402
from lnlens_core.domain import FeeUpdate, ForwardStatus  # noqa: E402
from lnlens_core.errors import BackendRejected  # noqa: E402
from lnlens_core.features import LONG_WINDOW_S, compute_features, windows_from_events  # noqa: E402
from lnlens_core.fee_model import FeeResponseModel, default_fee_model_path  # noqa: E402
from lnlens_core.fees.chargelnd.strategies import Proportional  # noqa: E402
from lnlens_core.fees.lnlens_strategies import BalanceBased, ModelDriven  # noqa: E402
from lnlens_core.fees.signals import ChannelSignals  # noqa: E402
from lnlens_core.fees.strategy import FeeContext  # noqa: E402
from lnlens_core.flows import PolicyBook  # noqa: E402
from lnlens_core.inference import OnnxModel  # noqa: E402
from lnlens_core.suggestions import fee_suggestions, rebalance_suggestions  # noqa: E402

POLICIES = ("none", "chargelnd-proportional", "balance-based", "balance-rule", "model", "model-cap")


@dataclass(slots=True)
class Outcome:
    revenue_msat: int = 0
    rebalance_fee_msat: int = 0
    settled: int = 0
    decided: int = 0
    rebalances: int = 0
    rebalances_ok: int = 0

    @property
    def net_msat(self) -> int:
        return self.revenue_msat - self.rebalance_fee_msat


def _set_fees(node, strategy, now: float, signals=None) -> None:
    """Apply ``strategy``'s fee rate to every channel (``signals``: per channel, for those that read them)."""
    info = node.get_info()
    for ch in node.list_channels():
        sig = signals.get(ch.channel_id) if signals is not None else None
        ctx = FeeContext(now=now, node=info, capabilities=frozenset(Capability), signals=sig)
        proposal = strategy.propose(ch, ctx)
        if proposal is not None and proposal.update.fee_ppm not in (None, ch.local_policy.fee_ppm):
            # Only the fee rate. The simulator refuses any change on a channel whose snapshot policy it
            # considers invalid (e.g. a CLTV delta outside 1..2016): that channel keeps its fee.
            try:
                node.set_channel_policy(ch.channel_id, FeeUpdate(fee_ppm=proposal.update.fee_ppm))
            except BackendRejected:
                continue


def _proportional(node, now: float) -> None:
    _set_fees(node, Proportional(min_fee_ppm=1, max_fee_ppm=2000), now)


def _median_fee_ppm(node) -> int:
    return int(np.median([c.local_policy.fee_ppm for c in node.list_channels()]))


def _balance_rule(node, threshold: float = 0.15, share: float = 0.2) -> None:
    """Channels more than ``threshold`` from 50 % local are rebalanced by ``share`` of capacity toward it."""
    channels = [c for c in node.list_channels() if c.balance_ratio is not None]
    low = sorted((c for c in channels if c.balance_ratio < 0.5 - threshold), key=lambda c: c.balance_ratio)
    high = sorted((c for c in channels if c.balance_ratio > 0.5 + threshold), key=lambda c: -c.balance_ratio)
    for target, source in zip(low, high, strict=False):
        amount = min(int(target.capacity_msat * share), source.local_balance_msat - source.capacity_msat // 2)
        if amount > 0:
            node.rebalance(
                source.channel_id, target.channel_id, amount, max_fee_msat=target.local_policy.fee_msat(amount)
            )


def _model(node, model: OnnxModel, book: PolicyBook, peers, now: float, *, cap: bool, fee_model=None) -> None:
    channels = list(node.list_channels())
    book.observe_channels(channels, now)
    recent = [e for e in node.events if now - LONG_WINDOW_S <= e.received_time < now]
    x = compute_features(channels, windows_from_events(recent, book, now), peer_policies=peers, book=book)
    predicted = model.predict(x)
    table = model.json_meta("confidence") or ()
    recs = rebalance_suggestions(channels, predicted, recent, now=now, confidence_table=table)
    by_id = {c.channel_id: c for c in channels}
    for rec in recs:
        budget = (
            by_id[rec.target_channel].local_policy.fee_msat(rec.amount_msat) if cap else rec.evidence["max_fee_msat"]
        )
        node.rebalance(rec.source_channel, rec.target_channel, rec.amount_msat, max_fee_msat=int(budget))
    if not cap:
        # Fee opinions from the balances as they were predicted on (before the rebalances moved any).
        if fee_model is not None:
            opinions = fee_model.opinions(channels, x)
        else:
            opinions = fee_suggestions(channels, predicted, confidence_table=table)
        signals = {cid: ChannelSignals(LONG_WINDOW_S, model=p) for cid, p in opinions.items()}
        _set_fees(node, ModelDriven(), now, signals)


def run(
    policy: str,
    centre: str,
    seed: int,
    model: OnnxModel,
    *,
    graph,
    nodes: int,
    warmup_h: float,
    eval_h: float,
    every_h: float,
    rule: tuple[float, float] = (0.15, 0.2),
    fee_model=None,
) -> Outcome:
    """One policy on one network and seed; ``rule``: the balance rule's (threshold, share)."""
    node = build(SimSettings(network="mainnet", node=centre, nodes=nodes, seed=seed), graph=graph)
    start = node.clock.now()
    book = PolicyBook()
    peers = {ch.channel_id: node.get_peer_policy(ch.channel_id) for ch in node.list_channels()}
    book.observe_channels(node.list_channels(), start)
    step = every_h * 3_600
    balance_based = BalanceBased(fee_ppm=max(_median_fee_ppm(node), 1))
    node.run(warmup_h * 3_600)
    t0 = node.clock.now()
    revenue0, fees0 = node.stats.revenue_msat, node.stats.rebalance_fee_msat
    reb0, ok0 = node.stats.rebalances, node.stats.rebalances_ok
    n_events0 = len(node.events)
    while node.clock.now() < t0 + eval_h * 3_600 - 1e-6:
        now = node.clock.now()
        if policy == "chargelnd-proportional":
            _proportional(node, now)
        elif policy == "balance-based":
            _set_fees(node, balance_based, now)
        elif policy == "balance-rule":
            _balance_rule(node, *rule)
        elif policy in ("model", "model-cap"):
            _model(node, model, book, peers, now, cap=policy == "model-cap", fee_model=fee_model)
        book.observe_channels(node.list_channels(), now)
        node.run(min(step, t0 + eval_h * 3_600 - now))
    st = node.stats
    ours = node.events[n_events0:]
    decided = [e for e in ours if e.status is ForwardStatus.SETTLED or e.status is ForwardStatus.LOCAL_FAILED]
    return Outcome(
        revenue_msat=st.revenue_msat - revenue0,
        rebalance_fee_msat=st.rebalance_fee_msat - fees0,
        settled=sum(e.status is ForwardStatus.SETTLED for e in decided),
        decided=len(decided),
        rebalances=st.rebalances - reb0,
        rebalances_ok=st.rebalances_ok - ok0,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="201,202,203")
    p.add_argument("--centres", type=int, default=3, help="mainnet neighbourhoods (the default node first)")
    p.add_argument("--nodes", type=int, default=200)
    p.add_argument("--warmup-hours", type=float, default=24.0)
    p.add_argument("--eval-hours", type=float, default=48.0)
    p.add_argument("--every-hours", type=float, default=6.0)
    p.add_argument("--model", default=None, help="ONNX file (default: the shipped default model)")
    p.add_argument("--policies", default=",".join(POLICIES), help="a comma-separated subset of the policies")
    p.add_argument("--balance-opinions", action="store_true",
                   help="fee opinions from the liquidity model even when a fee-response model is installed")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    policies = [q for q in args.policies.split(",") if q]
    if unknown := [q for q in policies if q not in POLICIES]:
        p.error(f"--policies: unknown {', '.join(unknown)} (choose from {', '.join(POLICIES)})")
    fee_path = None if args.balance_opinions else default_fee_model_path()
    fee_model = FeeResponseModel.load(fee_path) if fee_path is not None else None
    if args.model:
        model = OnnxModel.load(args.model)
    else:
        import lnlens_models

        model = OnnxModel.load(lnlens_models.model_bytes())
    graph = load_graph(SimSettings(network="mainnet"))
    centres = mainnet_centres(graph, args.centres)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for centre in centres:
        for seed in seeds:
            for policy in policies:
                o = run(
                    policy,
                    centre,
                    seed,
                    model,
                    graph=graph,
                    nodes=args.nodes,
                    warmup_h=args.warmup_hours,
                    eval_h=args.eval_hours,
                    every_h=args.every_hours,
                    fee_model=fee_model,
                )
                rows.append(
                    {
                        "centre": centre[:12],
                        "seed": seed,
                        "policy": policy,
                        "revenue_msat": o.revenue_msat,
                        "rebalance_fee_msat": o.rebalance_fee_msat,
                        "net_msat": o.net_msat,
                        "settled": o.settled,
                        "decided": o.decided,
                        "rebalances": o.rebalances,
                        "rebalances_ok": o.rebalances_ok,
                    }
                )
                print(json.dumps(rows[-1]), file=sys.stderr)
    totals = {}
    for policy in policies:
        mine = [r for r in rows if r["policy"] == policy]
        nets = np.array([r["net_msat"] for r in mine])
        totals[policy] = {
            "runs": len(mine),
            "revenue_msat": sum(r["revenue_msat"] for r in mine),
            "rebalance_fee_msat": sum(r["rebalance_fee_msat"] for r in mine),
            "net_msat": int(nets.sum()),
            "success_rate": (sum(r["settled"] for r in mine) / max(sum(r["decided"] for r in mine), 1)),
            "rebalances": sum(r["rebalances"] for r in mine),
            "rebalances_ok": sum(r["rebalances_ok"] for r in mine),
            "best_net_runs": sum(
                1
                for r in mine
                if r["net_msat"]
                == max(x["net_msat"] for x in rows if (x["centre"], x["seed"]) == (r["centre"], r["seed"]))
            ),
        }
    fee_name = f"{fee_model.name}-{fee_model.version}" if fee_model is not None else "liquidity model (balance)"
    result = {"model": f"{model.name}-{model.version}", "fee_opinions": fee_name, "settings": vars(args),
              "totals": totals, "runs": rows}  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"model {result['model']}, fee opinions {fee_name}; {len(centres)} networks x {len(seeds)} seeds; "
            f"{args.warmup_hours:g} h warm-up, {args.eval_hours:g} h evaluated, actions every {args.every_hours:g} h"
        )
        print("| policy | revenue sat | rebalance fees sat | net sat | success rate | rebalances ok/tried | best net |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for policy, t in totals.items():
            print(
                f"| {policy} | {t['revenue_msat'] / 1000:,.0f} | {t['rebalance_fee_msat'] / 1000:,.0f} | "
                f"{t['net_msat'] / 1000:,.0f} | {t['success_rate']:.3f} | {t['rebalances_ok']}/{t['rebalances']} | "
                f"{t['best_net_runs']}/{t['runs']} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
