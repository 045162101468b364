"""``lnlens cleanup``: prune old data, optionally exporting it first.

The fee journal is the audit trail of every change lnlens made to a node, so it is
pruned only when named (``--type journal``), and never its unfinished entries. "Now" is the
data's time, as for every other command (a simulator's database: its newest data). Deleting
asks first on a terminal; without one (a script, CI) it needs ``--yes``.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..errors import LnlensError
from ..storage import PRUNABLE
from .context import CliContext, add_json_flag
from .db import write_rows

DEFAULT_TYPES = ("forwards", "snapshots", "opportunities", "alerts", "model_runs")
DAY_S = 86_400


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cleanup", help="delete data older than N days (the fee journal only when named)")
    p.add_argument("--keep-days", type=_positive_int, default=90, metavar="N", help="keep the last N days (default 90)")
    p.add_argument(
        "--type", action="append", choices=sorted(PRUNABLE), metavar="TYPE",
        help=f"what to prune, repeatable: {', '.join(sorted(PRUNABLE))} (default: {', '.join(DEFAULT_TYPES)})",
    )  # fmt: skip
    p.add_argument("--dry-run", action="store_true", help="report what would be deleted, delete nothing")
    p.add_argument("--export-dir", metavar="DIR", help="write the rows to DIR/<type>.csv before deleting them")
    p.add_argument("--yes", action="store_true", help="delete without asking (needed when there is no terminal)")
    add_json_flag(p)
    p.set_defaults(handler=cmd_cleanup)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _confirm(counts: dict[str, int], cutoff: float) -> None:
    """Ask on the terminal before deleting; refuse when there is none to ask on.

    :raises LnlensError: not confirmed (nothing is deleted).
    """
    what = ", ".join(f"{n:,} {kind}" for kind, n in counts.items() if n)
    before = datetime.fromtimestamp(cutoff, UTC).strftime("%Y-%m-%d %H:%M UTC")
    question = f"cleanup deletes {what} dated before {before}"
    if os.environ.get("CI") or not sys.stdin or not sys.stdin.isatty():
        raise LnlensError(f"{question}: pass --yes to delete them (no terminal to ask on; --dry-run lists them)")
    print(f"{question}. Delete? [y/N] ", end="", file=sys.stderr, flush=True)
    try:
        answer = sys.stdin.readline().strip().lower()
    except (OSError, ValueError):
        answer = ""
    if answer not in ("y", "yes"):
        raise LnlensError("cleanup: nothing deleted")


def cmd_cleanup(args: argparse.Namespace, ctx: CliContext) -> int:
    store = ctx.store()
    kinds = tuple(dict.fromkeys(args.type or DEFAULT_TYPES))
    cutoff = ctx.now() - args.keep_days * DAY_S
    export_dir = Path(args.export_dir) if args.export_dir else None
    counts = {kind: store.count_prunable(kind, cutoff) for kind in kinds}
    if not args.dry_run and any(counts.values()) and not args.yes:
        _confirm(counts, cutoff)
    results = []
    for kind in kinds:
        count = counts[kind]
        exported = None
        if export_dir is not None and count:
            export_dir.mkdir(parents=True, exist_ok=True)
            exported = str(export_dir / f"{kind}.csv")
            write_rows(store.prunable_rows(kind, cutoff), Path(exported), "csv")
        files = 0
        if args.dry_run:
            deleted = 0
        elif kind == "model_runs":  # the registry also removes the model files it wrote
            deleted, files = ctx.model_registry().prune(cutoff)
        else:
            deleted = store.prune(kind, cutoff)
        result = {"type": kind, "matching": count, "deleted": deleted, "exported_to": exported}
        if kind == "model_runs":
            result["files_deleted"] = files
        results.append(result)
    data = {"dry_run": args.dry_run, "keep_days": args.keep_days, "cutoff_time": cutoff, "results": results}

    def render(console: Console) -> None:
        verb = "would delete" if args.dry_run else "deleted"
        table = Table("type", verb, "exported to", title=f"cleanup: keeping the last {args.keep_days} days")
        for r in results:
            table.add_row(r["type"], f"{r['matching'] if args.dry_run else r['deleted']:,}", r["exported_to"] or "")
        console.print(table)

    ctx.emit(data, render)
    return 0
