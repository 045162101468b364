"""``lnlens report --out DIR``: the liquidity report — four PNG plots and a markdown file tying them together."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from ..errors import ModelError
from ..model import plots
from ..model.features import FEATURE_NAMES, windows_from_events
from ..model.liquidity import LiquidityView, liquidity_view
from ..opportunities.flows import PolicyBook
from ..opportunities.report import recommendation_json
from ..opportunities.run import run_analysis
from ..untrusted import markdown as md
from .context import CliContext, add_json_flag, float_arg, int_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="liquidity report: plots and markdown in a folder")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for report.md and the PNG plots")
    p.add_argument("--min-gap", type=float_arg(0, 1), default=0.1, help="suggest a rebalance from this ratio gap (0-1)")
    p.add_argument("--top", type=int_arg(1), default=10, help="top N suggestions")
    add_json_flag(p)
    p.set_defaults(handler=cmd_report)


def _pct(v: float | None) -> str:
    return "–" if v is None or v != v else f"{v:.0%}"


def _num(v: Any, digits: int = 4) -> str:
    return f"{v:.{digits}f}" if isinstance(v, float) and v == v else "–"


def write_report(
    out: Path,
    view: LiquidityView,
    model,
    rules: list,
    *,
    top: int,
    history: list | None = None,
    health: dict[str, Any] | None = None,
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    ratios = [ch.balance_ratio if ch.balance_ratio is not None else float("nan") for ch in view.channels]
    order = sorted(range(len(view.channels)), key=lambda i: str(view.channels[i].channel_id))
    labels = [f"{view.channels[i].channel_id} {view.channels[i].peer_alias[:14]}" for i in order]
    importance = model.json_meta("importance") or []
    files = {
        "balance_distribution": plots.balance_distribution(ratios, out / "balance_distribution.png"),
        "optimal_vs_current": plots.optimal_vs_current(
            labels,
            [ratios[i] for i in order],
            [float(view.predicted[i]) for i in order],
            out / "optimal_vs_current.png",
        ),
        "rebalance_recommendations": plots.top_rebalances(
            view.suggestions[:top], out / "rebalance_recommendations.png"
        ),
        "feature_importance": plots.feature_importance(importance, out / "feature_importance.png"),
    }
    if history and len({r["time"] for r in history}) >= 2:
        files["prediction_history"] = plots.prediction_history(history, out / "prediction_history.png")
    metrics = model.json_meta("metrics") or {}
    lines = [
        "# lnlens liquidity report",
        "",
        f"Model **{md(model.name)}-{md(model.version)}** ({md(model.metadata.get('model_kind', '?'))}, feature "
        f"version {md(model.metadata.get('feature_version'))}, {len(FEATURE_NAMES)} features), "
        f"from {md(model.source)}.",
        f"Data: {len(view.channels)} channels; {len(view.recent)} forwards in the last 24 h before the newest data.",
        "",
        "Target: " + md(model.metadata.get("target", "?")) + ".",
        "",
        "## Model quality on held-out data (from training)",
        "",
        "| predictor | samples | MAE | R² | gain over staying msat | captured share |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    names = {"model": "model", "half": "50/50", "current": "current ratio", "linear": "linear (ridge)"}
    for key, m in {"model": metrics.get("model", {}), **metrics.get("baselines", {})}.items():
        lines.append(
            f"| {names.get(key, key)} | {m.get('n', '–')} | {_num(m.get('mae'))} | {_num(m.get('r2'))} "
            f"| {_num(m.get('gain_msat'), 1)} | {_num(m.get('captured_share'), 3)} |"
        )
    lines += [
        "",
        "*gain over staying*: mean fees the ratios would have earned, net of the route cost of reaching them, "
        "minus staying's; *captured share*: that gain over the best possible (docs/MODEL.md).",
        "",
        "## Channels",
        "",
        "| channel | peer | capacity sat | local | predicted | move | out/in sat 24 h | liquidity failures 24 h |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    out_flow: dict = {}
    in_flow: dict = {}
    for e in view.recent:
        if e.status.value == "settled":
            if e.out_channel is not None:
                out_flow[e.out_channel] = out_flow.get(e.out_channel, 0) + (e.out_msat or 0)
            in_flow[e.in_channel] = in_flow.get(e.in_channel, 0) + e.in_msat
    fails: dict = {}
    for e in view.recent:
        if e.failure_reason is not None and e.failure_reason.value == "insufficient_balance" and e.out_channel:
            fails[e.out_channel] = fails.get(e.out_channel, 0) + 1
    for i in order:
        ch, p = view.channels[i], float(view.predicted[i])
        move = "–" if p != p or ch.balance_ratio is None else f"{p - ch.balance_ratio:+.0%}"
        cid = ch.channel_id
        lines.append(
            f"| {cid} | {md(ch.peer_alias or ch.peer_id[:16])} | {ch.capacity_msat // 1000:,} "
            f"| {_pct(ch.balance_ratio)} | {_pct(p)} | {move} "
            f"| {out_flow.get(cid, 0) // 1000:,} / {in_flow.get(cid, 0) // 1000:,} "
            f"| {fails.get(cid, 0)} |"
        )
    lines += ["", "## Node health (last 24 h)", ""]
    lines += _health_lines(health or {})
    lines += ["", f"## Top {top} rebalance suggestions (model)", ""]
    if not view.suggestions:
        lines.append("None: no channel is far enough from its predicted ratio with a move that would have earned more "
                     "than its route costs, or none has balance to spare.")
    for n, rec in enumerate(view.suggestions[:top], 1):
        lines.append(
            f"{n}. **{rec.source_channel} → {rec.target_channel}**, {(rec.amount_msat or 0) // 1000:,} sats. "
            f"{md(rec.reason)}"
        )
    lines += ["", "## Rule-based recommendations (last 24 h)", ""]
    if not rules:
        lines.append("None above the thresholds.")
    for rec in rules[:top]:
        lines.append(f"- `{rec.kind.value}` on {rec.channel_id}: {md(rec.reason)}")
    lines += ["", "## Plots", ""]
    for title, path in files.items():
        lines.append(f"![{title.replace('_', ' ')}]({path.name})")
    if importance and max(r["mae_increase"] for r in importance) <= 0:
        lines += ["", "Note: no feature's shuffling raises the held-out error: the model is close to trivial."]
    elif importance and importance[0]["feature"] == "balance_ratio":
        top_gain = importance[0]["mae_increase"]
        rest = sum(max(r["mae_increase"], 0) for r in importance[1:])
        lines += [
            "",
            f"Note: the current ratio dominates the importance ({top_gain:.4f} vs {rest:.4f} for all other "
            "features together): on this data the model mostly decides how far to move from it.",
        ]
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {
        "report": str(out / "report.md"),
        "plots": {k: str(v) for k, v in files.items()},
        "suggestions": [recommendation_json(r) for r in view.suggestions[:top]],
    }


def node_health(view: LiquidityView, book, *, min_gap: float) -> dict[str, Any]:
    """Measured quantities only: success rate of forwards decided here, share of channels within ``min_gap``
    of their predicted ratio, and the share of fees missed here; the score is
    ``40 × success + 30 × balanced + 30 × (1 − missed share)``, None when a component has no data."""
    stats = windows_from_events(view.recent, book, view.now).long
    settled = sum(f.settled for f in stats.out.values())
    decided = sum(f.attempts - f.failed_downstream for f in stats.out.values())
    revenue = sum(f.revenue_msat for f in stats.out.values())
    missed = sum(f.missed_revenue_msat for f in stats.out.values())
    gaps = [
        abs(float(p) - ch.balance_ratio)
        for ch, p in zip(view.channels, view.predicted, strict=True)
        if ch.balance_ratio is not None and p == p
    ]
    success = settled / decided if decided else None
    balanced = sum(g < min_gap for g in gaps) / len(gaps) if gaps else None
    missed_share = missed / (missed + revenue) if missed + revenue else None
    parts = (success, balanced, missed_share)
    score = None if None in parts else round(40 * success + 30 * balanced + 30 * (1 - missed_share), 1)  # type: ignore[operator]
    return {
        "success_rate": success,
        "balanced_share": balanced,
        "missed_fee_share": missed_share,
        "decided": decided,
        "revenue_msat": revenue,
        "missed_revenue_msat": missed,
        "score": score,
    }


def _health_lines(h: dict[str, Any]) -> list[str]:
    if not h:
        return ["Not computed."]
    score = "not computed (a component has no data)" if h["score"] is None else f"**{h['score']}** / 100"
    return [
        f"Score {score} = 40 × success rate ({_pct(h['success_rate'])} of {h['decided']} forwards decided here) "
        f"+ 30 × balanced share ({_pct(h['balanced_share'])} of channels within the suggestion gap of their "
        f"predicted ratio) + 30 × (1 − missed fee share) ({_pct(h['missed_fee_share'])}: "
        f"{h['missed_revenue_msat'] // 1000:,} sats missed here against {h['revenue_msat'] // 1000:,} earned)."
    ]


def cmd_report(args: argparse.Namespace, ctx: CliContext) -> int:
    lens = ctx.lens()
    try:
        model = ctx.model_registry().load_active()
    except ModelError as exc:
        raise ModelError(f"the report needs the liquidity model: {exc}") from None
    view = liquidity_view(lens.store, model, now=lens.clock.now(), min_gap=args.min_gap, limit=args.top, save=True)
    analysis = run_analysis(lens, since_s=86_400, save=False)
    rules = [rec for opp in analysis.opportunities for rec in opp.recommendations]
    book = PolicyBook()
    for time, cid, policy in lens.store.policy_history():
        book.observe(cid, policy, time)
    health = node_health(view, book, min_gap=args.min_gap)
    result = write_report(
        Path(args.out), view, model, rules, top=args.top, history=lens.store.predictions(), health=health
    )
    result["health"] = health
    ctx.emit(result, lambda c: _render(c, result))
    return 0


def _render(console: Console, result: dict[str, Any]) -> None:
    console.print(f"wrote {result['report']} and {len(result['plots'])} plots")
