"""Can the liquidity model's advice move money in the simulator? The measurements behind docs/MODEL.md's
"Longer horizons, a gated model and the true counterfactual" (issue 15, item 4).

1. **Horizons**: how often the target (the ratio that earns most net of the quoted route cost) moves away from the
   current ratio when the revenue is counted over 6, 24 or 48 h instead of 6 h, and which channels those moves are on.
2. **A gated (hurdle) model** at ``--horizon`` h: a classifier (gradient boosting on "the target moves") gates a
   regressor on the move; the gate's threshold is chosen on the validation seeds; compared on the sweep's nodes under
   ``--eval-seeds`` with keeping the current ratio, 50/50, the plain regressor and the shipped model.
3. **The true counterfactual** on the sweep's nodes under ``--cf-seeds``: after a warm-up, every move the target
   itself asks for (hindsight: it has seen the next ``--horizon`` h) and every rebalance the shipped model suggests is
   executed in a simulation of its own (rebuilt from the same seed, so the same state and traffic), and its revenue
   over the horizon is compared with the run that did nothing: completed or not, fee paid, revenue gained, and whether
   it earned back its fee.
4. ``--target demand``: the learned quantity is the **demand-optimal** ratio instead (:func:`demand_samples`: the
   ratio that would have carried the most of the realised demand over the horizon, no route cost; the money decision
   stays with :func:`lnlens_core.model.suggestions.rebalance_suggestions`, which prices each move by a quote for its own
   amount). A regressor on it is compared with keeping the current ratio and 50/50 on the sweep's nodes, its
   suggestions (at ``--min-gap``) are executed in the counterfactual, and so is every hindsight demand-optimal move
   whose replayed fee gain beats its quoted route.

Source checkout only (needs ``lnlens[train]``)::

    nice -n 10 .venv/bin/python models/train/liquidity_study.py --json > study.json
    nice -n 10 .venv/bin/python models/train/liquidity_study.py --target demand --horizons 6,24 --hours 54 \
        --eval-seeds 9104-9106 --cf-seeds 9107-9112 --min-gap 0.0025 --json > demand.json
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from lnlens_sim.rebalance import route_costs  # noqa: E402
from lnlens_sim.scenario import SimSettings, build, load_graph  # noqa: E402
from lnlens_sim.sweep import iter_seeds, sized_centres  # noqa: E402
from simdata import Run, Simulated, simulate_raw, training_centres  # noqa: E402

from lnlens_core.model.learning import Dataset, baselines, build_pipeline, evaluate  # noqa: E402
from lnlens_core.model.target import (  # noqa: E402
    MOVES,
    RouteCost,
    best_move,
    candidates,
    carried_volume,
    demand,
    demand_fees,
    revenue_curve,
    targets,
)

H = 3_600


def _moved(d: Dataset) -> np.ndarray:
    return np.abs(d.y - d.current) > 1e-12


def demand_samples(sim: Simulated, horizon_s: float) -> Dataset:
    """``sim.samples(horizon_s)`` (features, net-value curves with the quoted route costs) with the target replaced by
    the **demand-optimal** ratio: the candidate (:func:`lnlens_core.model.target.candidates`) from which the channel
    would have carried the most of its realised demand over the horizon (volume, with no route cost), the current ratio
    when it is among the best, else the smallest best move (:func:`lnlens_core.model.target.best_move`)."""
    d = sim.samples(horizon_s)
    ys: list[float] = []
    end = sim.start + sim.run.hours * H
    for t, channels in sim.snapshots:
        if t - sim.start < sim.run.warmup_hours * H or t + horizon_s > end:
            continue
        chans = [ch for ch in channels if ch.balance_ratio is not None]
        seqs = demand(sim.events, [ch.channel_id for ch in chans], t, t + horizon_s)
        for ch in chans:  # the rows samples_at keeps: channels with a ratio and demand in the window, in order
            signed = seqs[ch.channel_id]
            if len(signed):
                grid = candidates(ch.balance_ratio)
                total = ch.local_balance_msat + ch.remote_balance_msat
                ys.append(float(grid[best_move(carried_volume(signed, total, grid).astype(np.float64))]))
    if len(ys) != len(d):
        raise SystemExit(f"{sim.run.group}: {len(ys)} demand targets for {len(d)} samples")
    d.y = np.array(ys)
    return d


def _samples(sim: Simulated, horizon_s: float, target: str) -> Dataset:
    return demand_samples(sim, horizon_s) if target == "demand" else sim.samples(horizon_s)


def horizon_row(name: str, sims: list[Simulated], horizon_h: float, target: str = "net") -> dict[str, Any]:
    d = Dataset.concat([_samples(s, horizon_h * H, target) for s in sims])
    m = _moved(d)
    stay = d.curves[:, len(MOVES) // 2] if len(d) else np.zeros(0)
    gain = d.curves.max(axis=1) - stay if len(d) else np.zeros(0)
    # A channel is (run, capacity): the moves' channels, to see whether a model could generalise from them.
    channels = sorted({f"{g} cap=10^{c:.3f} sat" for g, c, k in zip(d.groups, d.x[:, 1], m, strict=True) if k})
    return {
        "set": name, "horizon_h": horizon_h, "samples": len(d), "moved": int(m.sum()),
        "moves": sorted({round(float(v), 4) for v in (d.y - d.current)[m]}),
        "from_ratios": sorted({round(float(v), 3) for v in d.current[m]}),
        "channels_moved": channels, "target_gain_sat": round(float(gain.sum()) / 1000, 3),
    }  # fmt: skip


@dataclass(slots=True)
class Gated:
    """A hurdle model: the regressor's move where the classifier's probability of a move is over ``tau``, else 0."""

    gate: Any
    move: Any
    tau: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        x32 = x.astype(np.float32)
        delta = np.where(self.gate.predict(x32) > self.tau, self.move.predict(x32), 0.0)
        return np.clip(x32[:, 0].astype(np.float64) + delta, 0.0, 1.0)


def fit_gated(train: Dataset, val: Dataset, taus=(0.5, 0.7, 0.9, 1.01)) -> tuple[Gated, list[dict]]:
    """Fit both parts on ``train``; ``tau`` is the threshold with the lowest validation MAE (1.01: never move)."""
    gate = build_pipeline("gbr").fit(train.x.astype(np.float32), _moved(train).astype(np.float64))
    move = build_pipeline("gbr").fit(train.x.astype(np.float32), train.y - train.current)
    tried = []
    for tau in taus:
        e = evaluate(Gated(gate, move, tau).predict(val.x), val)
        tried.append({"tau": tau, "val_mae": e["mae"], "val_gain_msat": e["gain_msat"]})
    best = min(tried, key=lambda r: (r["val_mae"], -r["tau"]))["tau"]
    return Gated(gate, move, best), tried


def _mae_row(d: Dataset, preds: dict[str, np.ndarray]) -> dict[str, Any]:
    b = baselines(d)
    out = {"samples": len(d), "moved": int(_moved(d).sum()), "current": b["current"], "half": b["half"]}
    out.update({k: evaluate(p, d) for k, p in preds.items()})
    return out


# --- the true counterfactual ------------------------------------------------------------------------------------------


def _at(centre: str, seed: int, graph, hours: float, rate: float | None = None):
    """The node after ``hours`` of its seeded simulation, with a policy book and its peers' policies (the same state
    and the same traffic to come every time it is rebuilt); ``rate``: payments per hour, None for the default."""
    from lnlens_core.opportunities.flows import PolicyBook

    node = build(SimSettings(network="mainnet", node=centre, nodes=200, seed=seed, payments_per_hour=rate), graph=graph)
    book = PolicyBook()
    book.observe_channels(node.list_channels(), node.clock.now())
    peers = {ch.channel_id: node.get_peer_policy(ch.channel_id) for ch in node.list_channels()}
    node.run(hours * H)
    book.observe_channels(node.list_channels(), node.clock.now())
    return node, book, peers


def _partner(node, cid, amount: int, refill: bool, partners: int = 3):
    """(source, target, quoted fee) for the cheapest of ``partners`` channels (the fullest for a refill, the emptiest
    for a drain), as :func:`lnlens_sim.rebalance.route_costs` prices a channel; None without a route."""
    chans = [c for c in node.list_channels() if c.channel_id != cid and c.capacity_msat > 0]
    pool = sorted(chans, key=lambda c: ((-1 if refill else 1) * c.local_balance_msat, str(c.channel_id)))[:partners]
    best = None
    for other in pool:
        src, tgt = (other.channel_id, cid) if refill else (cid, other.channel_id)
        fee = node.quote_rebalance(src, tgt, amount)
        if fee is not None and (best is None or fee < best[2]):
            best = (src, tgt, fee)
    return best


def _channel_fees(events, cids, since: float, until: float) -> int:
    from lnlens_core.domain import ForwardStatus

    return sum(e.fee_msat or 0 for e in events if since <= e.received_time < until
               and e.status is ForwardStatus.SETTLED and e.out_channel in cids)  # fmt: skip


def _model_moves(node, model, book, peers, now: float, min_gap: float = 0.1) -> list[tuple[Any, Any, int, int, int]]:
    """The serving path's rebalances at ``now`` (``lnlens_sim.sweep``'s model policy) for ``model`` (an
    :class:`~lnlens_core.model.inference.OnnxModel`, or a :class:`Fitted` pipeline): (source, target, amount, budget,
    expected gain) each."""
    from lnlens_core.model.features import LONG_WINDOW_S, compute_features, windows_from_events
    from lnlens_core.model.liquidity import route_cost_ppm
    from lnlens_core.model.suggestions import rebalance_suggestions

    channels = list(node.list_channels())
    recent = [e for e in node.events if now - LONG_WINDOW_S <= e.received_time < now]
    x = compute_features(channels, windows_from_events(recent, book, now), peer_policies=peers, book=book)
    recs = rebalance_suggestions(channels, model.predict(x), recent, now=now,
                                 confidence_table=model.json_meta("confidence") or (), quote=node.quote_rebalance,
                                 cost_ppm=route_cost_ppm(model), min_gap=min_gap)  # fmt: skip
    return [(r.source_channel, r.target_channel, r.amount_msat, int(r.evidence["max_fee_msat"]),
             int(r.evidence["expected_gain_msat"])) for r in recs]  # fmt: skip


@dataclass(slots=True)
class Fitted:
    """A fitted scikit-learn pipeline on the move, served like an :class:`~lnlens_core.model.inference.OnnxModel`."""

    move: Any

    def predict(self, x: np.ndarray) -> np.ndarray:
        x32 = x.astype(np.float32)
        return np.clip(x32[:, 0].astype(np.float64) + self.move.predict(x32), 0.0, 1.0)

    def json_meta(self, key: str) -> None:
        return None


def counterfactual(
    centre: str,
    seed: int,
    graph,
    *,
    warmup_h: float,
    horizon_h: float,
    model=None,
    rate: float | None = None,
    min_gap: float = 0.1,
    demand_hindsight: bool = False,
) -> list[dict]:
    """Every move the hindsight target asks for at ``warmup_h`` (and every rebalance ``model`` suggests there),
    each executed alone in its own rebuilt simulation and compared with doing nothing over ``horizon_h``.

    ``demand_hindsight``: also every move to the hindsight demand-optimal ratio (:func:`demand_samples`' target),
    budgeted at the fees the replay says it adds and priced by a quote for its own amount; those whose replayed fee
    gain is not positive or whose route costs at least that gain are listed, not executed (their budget refuses
    them)."""
    node, book, peers = _at(centre, seed, graph, warmup_h, rate)
    t, end = node.clock.now(), node.clock.now() + horizon_h * H
    costs: dict = route_costs(node)
    channels = list(node.list_channels())
    totals = {c.channel_id: (c.local_balance_msat + c.remote_balance_msat, c.balance_ratio)
              for c in channels if c.balance_ratio is not None}  # fmt: skip
    asked: list[tuple[str, Any, Any, int, int, int, int | None]] = []
    if model is not None:
        asked += [("model", *m, None) for m in _model_moves(node, model, book, peers, t, min_gap)]
    # The hindsight moves are known only after the horizon: it runs in a rebuild, so that ``node`` stays at the
    # decision time, where their partners are chosen and their routes quoted.
    future, _, _ = _at(centre, seed, graph, warmup_h, rate)
    rev0 = future.stats.revenue_msat
    future.run(horizon_h * H)
    base_rev, base_events = future.stats.revenue_msat - rev0, future.events
    for cid, (target, curve) in targets(base_events, totals, t, horizon_h * H, costs).items():
        if target is None or target == totals[cid][1]:
            continue
        total, current = totals[cid]
        k = int(np.abs(np.clip(current + MOVES, 0, 1) - target).argmin())
        cost = costs.get(cid, RouteCost())
        amount = int(abs(target - current) * total)
        refill = target > current
        replay_cost = amount * (cost.into_ppm if refill else cost.out_ppm) / 1e6
        gain = int(curve[k] - curve[len(MOVES) // 2] + replay_cost)  # the replay's extra revenue: the budget
        pick = _partner(node, cid, amount, refill)
        if pick is not None:
            asked.append(("target", pick[0], pick[1], amount, gain, gain, pick[2]))
    rows = []
    if demand_hindsight:
        stay = len(MOVES) // 2
        for cid, (signed, fees) in demand_fees(base_events, totals, t, end).items():
            total, current = totals[cid]
            grid = candidates(current)
            k = best_move(carried_volume(signed, total, grid).astype(np.float64)) if len(signed) else stay
            if k == stay:
                continue
            rev = revenue_curve(signed, fees, total, grid)
            gain, amount = int(rev[k] - rev[stay]), int(abs(grid[k] - current) * total)
            pick = _partner(node, cid, amount, grid[k] > current)
            if pick is not None and 0 < gain and pick[2] < gain:
                asked.append(("demand-hindsight", pick[0], pick[1], amount, gain, gain, pick[2]))
                continue
            why = "no route" if pick is None else "no fee to gain" if gain <= 0 else f"route {pick[2]} msat"
            rows.append({"centre": centre[:12], "seed": seed, "by": "demand-hindsight", "channel": str(cid),
                         "amount_msat": amount, "budget_msat": gain, "expected_gain_msat": gain, "ok": False,
                         "reason": f"not run: {why}", "quote_msat": None if pick is None else pick[2],
                         "fee_msat": 0, "revenue_gain_msat": 0, "pair_revenue_gain_msat": 0,
                         "net_msat": 0})  # fmt: skip
    for who, src, tgt, amount, budget, expected, quote in asked:
        fork, _, _ = _at(centre, seed, graph, warmup_h, rate)
        before = fork.stats.revenue_msat
        result = fork.rebalance(src, tgt, amount, max_fee_msat=budget)
        fork.run(horizon_h * H)
        gained = fork.stats.revenue_msat - before - base_rev
        pair = _channel_fees(fork.events, {src, tgt}, t, end) - _channel_fees(base_events, {src, tgt}, t, end)
        rows.append({
            "centre": centre[:12], "seed": seed, "by": who, "source": str(src), "target": str(tgt),
            "amount_msat": amount, "budget_msat": budget, "expected_gain_msat": expected, "quote_msat": quote,
            "ok": result.ok,
            "reason": result.reason, "fee_msat": result.fee_msat if result.ok else 0,
            "revenue_gain_msat": gained, "pair_revenue_gain_msat": pair,
            "net_msat": gained - (result.fee_msat if result.ok else 0),
        })  # fmt: skip
    return rows


def _check_rebuild(centre: str, seed: int, graph, hours: float, rate: float | None) -> None:
    """The counterfactual rests on a rebuilt simulation being the same simulation: check it once."""
    a, _, _ = _at(centre, seed, graph, hours, rate)
    b, _, _ = _at(centre, seed, graph, hours, rate)
    if (a.stats.revenue_msat, len(a.events)) != (b.stats.revenue_msat, len(b.events)):
        raise SystemExit(f"rebuilding {centre[:12]} seed {seed} gave another simulation: no counterfactual")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train-seeds", default="1-3")
    ap.add_argument("--val-seeds", default="101-102")
    ap.add_argument("--eval-seeds", default="9001-9003")
    ap.add_argument("--cf-seeds", default="9001-9012")
    ap.add_argument("--hours", type=float, default=72.0, help="simulated hours per sampled run")
    ap.add_argument("--horizons", default="6,24,48")
    ap.add_argument("--horizon", type=float, default=24.0, help="the gated model's and the counterfactual's horizon")
    ap.add_argument("--warmup", type=float, default=24.0, help="hours before the counterfactual's decision")
    ap.add_argument(
        "--payments-scale",
        type=float,
        default=1.0,
        help="each neighbourhood's payments per hour times this (1: its share of the network's)",
    )
    ap.add_argument(
        "--target",
        choices=("net", "demand"),
        default="net",
        help="net: the shipped target (revenue net of the quoted route); demand: the demand-optimal ratio "
        "(most volume carried, no route cost), a regressor learns it and its suggestions are judged",
    )
    ap.add_argument("--min-gap", type=float, default=0.1, help="the suggestions' min_gap in the counterfactual")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    import lnlens_models

    from lnlens_core.model.inference import OnnxModel

    graph = load_graph(SimSettings(network="mainnet"))
    centres = training_centres(graph, 4)
    sweep_nodes = sized_centres(graph, 3)

    def rate(c: str) -> float | None:
        if a.payments_scale == 1.0:
            return None
        default = build(SimSettings(network="mainnet", node=c, nodes=200), graph=graph).traffic.config
        return default.payments_per_hour * a.payments_scale

    rates = {c: rate(c) for c in [*centres, *sweep_nodes]}

    def sims(cs, seeds):
        return [simulate_raw(Run(c, s, hours=a.hours, payments_per_hour=rates[c]), graph)
                for c in cs for s in iter_seeds(seeds)]  # fmt: skip

    train, val = sims(centres[:3], a.train_seeds), sims(centres, a.val_seeds)
    held = {c[:12]: sims([c], a.eval_seeds) for c in sweep_nodes}
    out: dict[str, Any] = {"seeds": {k: getattr(a, k) for k in ("train_seeds", "val_seeds", "eval_seeds", "cf_seeds")},
                           "hours": a.hours, "payments_per_hour": {c[:12]: r for c, r in rates.items()},
                           "horizons": []}  # fmt: skip
    sets = {"training": train, "validation": val, **{f"held-out {k}": v for k, v in held.items()}}
    for h in (float(v) for v in a.horizons.split(",")):
        out["horizons"] += [horizon_row(name, s, h, a.target) for name, s in sets.items()]
    hs = a.horizon * H
    tr, va = (Dataset.concat([_samples(s, hs, a.target) for s in part]) for part in (train, val))
    shipped = OnnxModel.load(lnlens_models.model_bytes())
    advisor: Any = shipped
    if a.target == "demand":
        advisor = Fitted(build_pipeline("gbr").fit(tr.x.astype(np.float32), tr.y - tr.current))
        out["demand"] = {
            "validation": _mae_row(va, {"model": advisor.predict(va.x)}),
            "by_node": {
                name: _mae_row(d, {"model": advisor.predict(d.x)})
                for name, d in ((n, Dataset.concat([demand_samples(x, hs) for x in s])) for n, s in held.items())
            },
        }
    else:
        out["gated"] = _gated_rows(a.horizon, tr, va, held, shipped)
    _check_rebuild(sweep_nodes[0], next(iter(iter_seeds(a.cf_seeds))), graph, 2.0, rates[sweep_nodes[0]])
    rows = []
    for c in sweep_nodes:
        for seed in iter_seeds(a.cf_seeds):
            rows += counterfactual(
                c,
                seed,
                graph,
                warmup_h=a.warmup,
                horizon_h=a.horizon,
                model=advisor,
                rate=rates[c],
                min_gap=a.min_gap,
                demand_hindsight=a.target == "demand",
            )
    out["counterfactual"] = rows
    if a.json:
        print(json.dumps(out, indent=1, default=str))
    else:
        for r in out["horizons"]:
            print(f"{r['set']:<28} {r['horizon_h']:>4g} h: {r['moved']:>4} of {r['samples']:>6} samples move, "
                  f"{len(r['channels_moved'])} channel(s), gain {r['target_gain_sat']} sat")  # fmt: skip
        for part in ("gated", "demand"):
            if part in out:
                print(part, {k: v for k, v in out[part].items() if k != "by_node"})
                for name, r in out[part]["by_node"].items():
                    print(name, json.dumps(r, default=str))
        for r in rows:
            print(r)
    return 0


def _gated_rows(horizon_h: float, tr: Dataset, va: Dataset, held: dict, shipped) -> dict[str, Any]:
    """The gated model fitted at ``horizon_h`` against the baselines, and the shipped model at 6 h, per sweep node."""
    hs = horizon_h * H
    gated, tried = fit_gated(tr, va)
    out: dict[str, Any] = {"tau_tried": tried, "tau": gated.tau, "by_node": {}}
    for name, s in held.items():
        d = Dataset.concat([x.samples(hs) for x in s])
        d6 = Dataset.concat([x.samples(6 * H) for x in s])
        out["by_node"][name] = {
            f"{horizon_h:g}h": _mae_row(d, {"gated": gated.predict(d.x), "gbr": np.clip(d.current + gated.move.predict(
                d.x.astype(np.float32)), 0, 1)}),
            "6h": _mae_row(d6, {"shipped": shipped.predict(d6.x)}),
        }  # fmt: skip
    return out


if __name__ == "__main__":
    raise SystemExit(main())
