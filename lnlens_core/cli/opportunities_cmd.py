"""``lnlens opportunities``: where the node loses routing revenue, and what to do about it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..domain import ChannelId
from ..errors import LnlensError
from ..opportunities.report import SCHEMA_VERSION
from ..opportunities.run import filter_opportunities, run_analysis
from ..untrusted import markdown as md
from ..untrusted import styled
from .context import CliContext, add_json_flag, duration_arg, int_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("opportunities", help="missed routing revenue per channel, with recommendations")
    p.add_argument("--since", default="24h", type=duration_arg, help="analysis window back from now (24h, 7d, ...)")
    p.add_argument("--min-urgency", type=int_arg(0, 100), default=0, metavar="N", help="only urgency >= N (0-100)")
    p.add_argument("--channel", type=_channel, help="only this channel (BLOCKxTXxOUT)")
    p.add_argument("--limit", type=int_arg(1), default=None, metavar="N", help="at most N rows")
    p.add_argument("--pairs", action="store_true", help="show channel pairs instead of channels")
    p.add_argument("--out", metavar="FILE", help="also write the whole analysis as JSON to FILE")
    p.add_argument("--from", dest="source", metavar="FILE", help="render a saved analysis (--out or --json output)")
    p.add_argument("--markdown", action="store_true", help="print a markdown report instead of a table")
    add_json_flag(p)
    p.set_defaults(handler=cmd_opportunities)


def _channel(text: str) -> ChannelId:
    try:
        return ChannelId.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _saved(path: str) -> dict:
    """A saved analysis, checked to be one this version can read."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LnlensError(f"{path}: not a readable analysis ({exc})") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION or "opportunities" not in data:
        raise LnlensError(f"{path}: not an lnlens analysis of schema 1..{SCHEMA_VERSION} (schema_version={version!r})")
    return data


def cmd_opportunities(args: argparse.Namespace, ctx: CliContext) -> int:
    result = _saved(args.source) if args.source else run_analysis(ctx.lens(), since_s=args.since).to_json()
    key = "pairs" if args.pairs else "opportunities"
    rows = filter_opportunities(result[key], min_urgency=args.min_urgency, channel=args.channel, limit=args.limit)
    data = {**result, "opportunities": rows if not args.pairs else result["opportunities"]}
    if args.pairs:
        data["pairs"] = rows

    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    def render(console: Console) -> None:
        if args.markdown:
            console.file.write(markdown(rows, pairs=args.pairs, window_s=result["window_s"]))
            return
        render_table(console, rows, pairs=args.pairs, window_s=result["window_s"], channels=result["channels"])
        render_alerts(console, result.get("alerts", []))
        if args.out:
            console.print(f"analysis written to {args.out}")

    ctx.emit(data, render)
    return 0


def _action(rec: dict) -> str:
    kind = rec["type"].replace("_", " ")
    if rec["type"].startswith("rebalance"):
        source = rec["source_channel"] or "new liquidity"
        return f"{kind}: {rec['amount_msat'] // 1000:,} sat from {source} to {rec['target_channel']}"
    if rec["proposed_fee_ppm"] is not None:
        return f"{kind} to {rec['proposed_fee_ppm']} ppm"
    return kind


def render_table(console: Console, rows: list[dict], *, pairs: bool, window_s: int, channels: int) -> None:
    """A table that fits 80 columns, then each row's actions with the reason in full."""
    title = f"Missed routing opportunities, last {window_s / 3600:.0f} h ({channels} channels)"
    if not rows:
        console.print(f"{title}: none above the thresholds.")
        return
    table = Table("#", "in → out" if pairs else "channel", "peer", "cause", "failed", "missed sat", "urg.",
                  title=title)  # fmt: skip
    for n, o in enumerate(rows, 1):
        chan = f"{o['in_channel']} → {o['short_channel_id']}" if pairs else o["short_channel_id"]
        failed = o["failed_liquidity"] + o["failed_fee"] + o["failed_other"]
        peer = (o["peer_alias"] or o["peer_id"][:16])[:18]
        table.add_row(str(n), chan, peer, o["cause"] or "-", f"{failed:,}", f"{o['missed_revenue_msat'] // 1000:,}",
                      str(o["urgency"]))  # fmt: skip
    console.print(table)
    for n, o in enumerate(rows, 1):
        for rec in o["recommendations"]:
            console.print(styled((f"{n}.", "bold"), " ", _action(rec)))
            console.print(f"   {rec['reason']}")


def markdown(rows: list[dict], *, pairs: bool, window_s: int) -> str:
    """The analysis as a markdown report: a table, then each action with its reason."""
    lines = [f"# Missed routing opportunities, last {window_s / 3600:.0f} h", ""]
    if not rows:
        return "\n".join([*lines, "None above the thresholds.", ""])
    lines += ["| # | channel | peer | cause | failed here | missed sat | sat/month (90 % range) | urgency |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for n, o in enumerate(rows, 1):
        chan = f"{o['in_channel']} → {o['short_channel_id']}" if pairs else o["short_channel_id"]
        failed = o["failed_liquidity"] + o["failed_fee"] + o["failed_other"]
        month = (
            f"{o['projected_monthly_missed_low_msat'] // 1000:,}–{o['projected_monthly_missed_high_msat'] // 1000:,}"
        )
        peer = md(o["peer_alias"] or o["peer_id"][:16])
        lines.append(f"| {n} | {md(chan)} | {peer} | {md(o['cause'] or '-')} | {failed:,} | "
                     f"{o['missed_revenue_msat'] // 1000:,} | {month} | {o['urgency']} |")  # fmt: skip
    lines.append("")
    for n, o in enumerate(rows, 1):
        for rec in o["recommendations"]:
            lines.append(f"{n}. **{md(_action(rec))}** — {md(rec['reason'])}")
    return "\n".join([*lines, ""])


def render_alerts(console: Console, alerts: list[dict]) -> None:
    for alert in alerts:
        text = f" {alert['type']} {alert['short_channel_id']}: {alert['message']}"
        console.print(styled(("alert", "bold yellow"), text))
