"""``lnlens db info|export``: what is in the database, and getting it out."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..storage import PRUNABLE
from ..untrusted import styled
from .context import CliContext, add_json_flag


def register(sub: argparse._SubParsersAction) -> None:
    db = sub.add_parser("db", help="inspect and export the database")
    dbsub = db.add_subparsers(dest="db_command", metavar="SUBCOMMAND", required=True)
    info = dbsub.add_parser("info", help="path, schema version and row counts")
    add_json_flag(info)
    info.set_defaults(handler=cmd_info)
    export = dbsub.add_parser("export", help="write a table as CSV or JSON lines")
    export.add_argument("--type", required=True, choices=sorted(PRUNABLE), help="which data")
    export.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    export.add_argument("--out", default="-", help="file to write (default: standard output)")
    export.set_defaults(handler=cmd_export)


def cmd_info(args: argparse.Namespace, ctx: CliContext) -> int:
    store = ctx.store(readonly=True)
    path = store.path
    data = {
        "path": str(path),
        "size_bytes": path.stat().st_size if path and path.exists() else 0,
        "migrations": store.schema_version(),
        "pending_migrations": store.pending_migrations(),
        "rows": store.row_counts(),
    }

    def render(console: Console) -> None:
        console.print(styled((data["path"], "bold"), f" ({data['size_bytes']:,} bytes)"))
        console.print(f"schema: {len(data['migrations'])} migrations applied, latest {data['migrations'][-1]}")
        table = Table("table", "rows")
        for name, count in data["rows"].items():
            table.add_row(name, f"{count:,}")
        console.print(table)

    ctx.emit(data, render)
    return 0


def write_rows(rows: Any, out: Path | None, fmt: str) -> int:
    """Write dict rows as CSV or JSON lines to ``out`` (None: stdout); returns the count."""
    handle = open(out, "w", newline="", encoding="utf-8") if out else sys.stdout  # noqa: SIM115 - closed below
    count = 0
    try:
        writer = None
        for row in rows:
            if fmt == "jsonl":
                handle.write(json.dumps(row) + "\n")
            else:
                if writer is None:
                    writer = csv.DictWriter(handle, fieldnames=list(row))
                    writer.writeheader()
                writer.writerow(row)
            count += 1
    finally:
        if out:
            handle.close()
    return count


def cmd_export(args: argparse.Namespace, ctx: CliContext) -> int:
    store = ctx.store(readonly=True)
    out = None if args.out == "-" else Path(args.out)
    count = write_rows(store.prunable_rows(args.type, float("inf")), out, args.format)
    if out:
        ctx.err.print(f"wrote {count:,} {args.type} rows to {out}")
    return 0
