"""``lnlens channels``: every channel with its balance, fee, and flows in each direction."""

from __future__ import annotations

import argparse

from rich import box
from rich.console import Console
from rich.table import Table

from ..opportunities.flows import WINDOWS
from ..opportunities.report import channel_json
from ..opportunities.run import store_window_stats
from .context import CliContext, add_json_flag

SPANS = {name: length for name, (length, _) in WINDOWS.items()}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("channels", help="channels with balances, fees and forwards per direction (1h/24h/7d/30d)")
    p.add_argument("--window", choices=sorted(SPANS), default="7d", help="window shown in the table (JSON has all)")
    add_json_flag(p)
    p.set_defaults(handler=cmd_channels)


def cmd_channels(args: argparse.Namespace, ctx: CliContext) -> int:
    lens = ctx.lens(readonly=True)
    now = lens.clock.now()
    channels = lens.store.latest_channels()[1]
    stats = store_window_stats(lens, SPANS, now=now, channels=channels)
    rows = [channel_json(c, stats) for c in sorted(channels, key=lambda c: c.channel_id)]
    # Busiest first: what left plus what came in, by volume.
    rows.sort(
        key=lambda r: (
            -(r["windows"][args.window]["out"]["volume_msat"] + r["windows"][args.window]["in"]["volume_msat"])
        )
    )

    def render(console: Console) -> None:
        table = Table(
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            padding=(0, 1),
            collapse_padding=True,
            title=f"Channels, last {args.window} ({len(rows)})",
        )
        table.add_column("channel", no_wrap=True)
        table.add_column("peer", no_wrap=True, max_width=10)
        for name in ("local", "ppm", "out", "out sat", "fees", "in", "in sat"):
            table.add_column(name, justify="right", no_wrap=True)
        for r in rows:
            out, inbound = r["windows"][args.window]["out"], r["windows"][args.window]["in"]
            ratio = f"{r['balance_ratio']:.0%}" if r["balance_ratio"] is not None else "-"
            fee = str(r["fee_ppm"]) if r["fee_ppm"] is not None else "unknown"  # off the node's graph
            table.add_row(r["short_channel_id"], r["peer_alias"] or r["peer_id"][:12], ratio, fee,
                          f"{out['settled']:,}", f"{out['volume_msat'] // 1000:,}", f"{out['revenue_msat'] // 1000:,}",
                          f"{inbound['settled']:,}", f"{inbound['volume_msat'] // 1000:,}")  # fmt: skip
        console.print(table)

    ctx.emit({"time": now, "channels": rows}, render)
    return 0
