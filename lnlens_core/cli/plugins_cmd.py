"""``lnlens plugins``: what is loaded. A fee manager changes a node's policy, so show it all."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from ..plugins import get_plugin_manager, list_plugins
from .context import CliContext, add_json_flag


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plugins", help="list loaded plugins with versions and hooks")
    add_json_flag(p)
    p.set_defaults(handler=cmd_plugins)


def cmd_plugins(args: argparse.Namespace, ctx: CliContext) -> int:
    pm = get_plugin_manager(blocked=ctx.config().blocked_plugins)
    plugins = list_plugins(pm)

    def render(console: Console) -> None:
        table = Table("plugin", "version", "hooks", "kind")
        for p in plugins:
            table.add_row(p.name, p.version or "-", ", ".join(p.hooks), "built-in" if p.builtin else "installed")
        console.print(table)

    ctx.emit({"plugins": plugins}, render)
    return 0
