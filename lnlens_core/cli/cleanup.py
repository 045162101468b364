"""``lnlens cleanup``: prune old data, optionally exporting it first.

The fee journal is the audit trail of every change lnlens made to a node, so it is
pruned only when named (``--type journal``), and never its unfinished entries.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

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
    add_json_flag(p)
    p.set_defaults(handler=cmd_cleanup)


def _registry(ctx: CliContext):
    from ..model_registry import ModelRegistry

    config = ctx.config()
    return ModelRegistry(ctx.store(), config.data_dir / "models", configured=config.model_path)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def cmd_cleanup(args: argparse.Namespace, ctx: CliContext) -> int:
    store = ctx.store()
    kinds = tuple(dict.fromkeys(args.type or DEFAULT_TYPES))
    cutoff = ctx.clock.now() - args.keep_days * DAY_S
    export_dir = Path(args.export_dir) if args.export_dir else None
    results = []
    for kind in kinds:
        count = store.count_prunable(kind, cutoff)
        exported = None
        if export_dir is not None and count:
            export_dir.mkdir(parents=True, exist_ok=True)
            exported = str(export_dir / f"{kind}.csv")
            write_rows(store.prunable_rows(kind, cutoff), Path(exported), "csv")
        files = 0
        if args.dry_run:
            deleted = 0
        elif kind == "model_runs":  # the registry also removes the model files it wrote
            deleted, files = _registry(ctx).prune(cutoff)
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
