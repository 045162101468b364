"""``lnlens recommend``: rule-based recommendations and the liquidity model's rebalances, together.

The rules (``lnlens opportunities``) speak about channels that failed forwards; the
model speaks about every channel whose balance is far from its predicted optimum,
failures or not. Both lists are shown; the model's carry ``origin: liquidity-model``.
If the model cannot be used (no onnxruntime, schema mismatch) the rules still run and
the reason is printed.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from ..errors import ModelError
from ..liquidity import liquidity_view
from ..opportunities import run_analysis
from ..report import recommendation_json
from .context import CliContext, add_json_flag
from .model_cmd import registry
from .opportunities_cmd import _duration


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recommend", help="what to do now: rule-based actions and the model's rebalances")
    p.add_argument("--since", default="24h", type=_duration, help="window for the rules (24h, 7d, ...)")
    p.add_argument("--min-gap", type=float, default=0.1, help="suggest a rebalance from this ratio gap (0-1)")
    p.add_argument("--limit", type=int, default=10, help="at most N model suggestions")
    add_json_flag(p)
    p.set_defaults(handler=cmd_recommend)


def model_part(ctx: CliContext, *, min_gap: float, limit: int) -> tuple[Any, str | None]:
    """(LiquidityView or None, why the model is not used)."""
    lens = ctx.lens()
    try:
        model = registry(ctx).load_active()
    except ModelError as exc:
        return None, str(exc)
    return liquidity_view(lens.store, model, now=lens.clock.now(), min_gap=min_gap, limit=limit), None


def cmd_recommend(args: argparse.Namespace, ctx: CliContext) -> int:
    lens = ctx.lens()
    analysis = run_analysis(lens, since_s=args.since, save=False)
    rules = [rec for opp in analysis.opportunities for rec in opp.recommendations]
    view, why = model_part(ctx, min_gap=args.min_gap, limit=args.limit)
    model_recs = view.suggestions if view is not None else []
    data = {
        "rules": [recommendation_json(r) for r in rules],
        "model": [recommendation_json(r) for r in model_recs],
        "model_unavailable": why,
    }

    def render(console: Console) -> None:
        table = Table("origin", "action", "channel", "amount sat", "reason", title="Recommendations")
        for rec in [*rules, *model_recs]:
            amount = f"{rec.amount_msat // 1000:,}" if rec.amount_msat is not None else "-"
            table.add_row(rec.origin, rec.kind.value, str(rec.channel_id), amount, rec.reason)
        console.print(table if rules or model_recs else "No recommendations.")
        if why:
            console.print(f"liquidity model not used: {why} (rule-based only)")

    ctx.emit(data, render)
    return 0
