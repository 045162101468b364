"""``lnlens recommend``: rule-based recommendations and the liquidity model's rebalances, together.

The rules (``lnlens opportunities``) speak about channels that failed forwards; the
model speaks about every channel whose balance is far from its predicted optimum,
failures or not. Both lists are shown; the model's carry ``origin: liquidity-model``.
If the model cannot be used (no onnxruntime, schema mismatch) the rules still run and
the reason is printed. Works on any lnlens database: the simulator's or the LND sidecar's.
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from ..model.liquidity import recommend
from .context import CliContext, add_json_flag, duration_arg, float_arg, int_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recommend", help="what to do now: rule-based actions and the model's rebalances")
    p.add_argument("--since", default="24h", type=duration_arg, help="window for the rules (24h, 7d, ...)")
    p.add_argument("--min-gap", type=float_arg(0, 1), default=0.1, help="suggest a rebalance from this ratio gap (0-1)")
    p.add_argument("--limit", type=int_arg(1), default=10, help="at most N model suggestions")
    add_json_flag(p)
    p.set_defaults(handler=cmd_recommend)


def cmd_recommend(args: argparse.Namespace, ctx: CliContext) -> int:
    data = recommend(ctx.lens(), ctx.model_registry(), since_s=args.since, min_gap=args.min_gap, limit=args.limit)

    def render(console: Console) -> None:
        rows = [*data["rules"], *data["model"]]
        table = Table("origin", "action", "channel", "amount sat", "reason", title="Recommendations")
        for rec in rows:
            amount = f"{rec['amount_msat'] // 1000:,}" if rec["amount_msat"] is not None else "-"
            table.add_row(rec["origin"], rec["type"], rec["short_channel_id"], amount, rec["reason"])
        console.print(table if rows else "No recommendations.")
        if data["model_unavailable"]:
            console.print(f"liquidity model not used: {data['model_unavailable']} (rule-based only)")

    ctx.emit(data, render)
    return 0
