"""The ``lnlens`` command: one entry point, subcommands by noun.

Core commands live in this package. Adapters add theirs (``sim``, ``lnd``) through
the ``lnlens.cli`` entry-point group — a ``register(subparsers)`` function — so the
core never imports an adapter. Every command that prints data takes ``--json``;
errors print one line (or one line per problem) and exit non-zero.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from .. import __version__
from ..errors import ConfigError, LnlensError
from .context import CliContext

CORE_COMMANDS = (
    "lnlens_core.cli.opportunities_cmd",
    "lnlens_core.cli.monitor_cmd",
    "lnlens_core.cli.channels_cmd",
    "lnlens_core.cli.db",
    "lnlens_core.cli.cleanup",
    "lnlens_core.cli.plugins_cmd",
    "lnlens_core.cli.model_cmd",
    "lnlens_core.cli.recommend_cmd",
    "lnlens_core.cli.report_cmd",
    "lnlens_core.cli.policy_cmd",
    "lnlens_core.cli.serve_cmd",
)
log = logging.getLogger("lnlens_core.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lnlens", description="Liquidity, missed opportunities and fee policy for Lightning routing nodes."
    )
    parser.add_argument("--version", action="version", version=f"lnlens {__version__}")
    parser.add_argument("--config", metavar="FILE", help="settings file (TOML); default $LNLENS_CONFIG")
    parser.add_argument("--db", metavar="PATH", help="database file; default <data-dir>/lnlens.sqlite3")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in CORE_COMMANDS:
        importlib.import_module(module).register(sub)
    for ep in sorted(entry_points(group="lnlens.cli"), key=lambda e: e.name):
        try:
            ep.load()(sub)
        except ImportError as exc:
            # An adapter whose extra is missing still shows up, and says how to fix it.
            _register_missing(sub, ep.name, exc)
    return parser


def _register_missing(sub: argparse._SubParsersAction, name: str, exc: ImportError) -> None:
    message = str(exc)
    p = sub.add_parser(name, help=f"(unavailable: {message})", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)

    def fail(args: argparse.Namespace, ctx: CliContext) -> int:
        raise LnlensError(message)

    p.set_defaults(handler=fail)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    ctx = CliContext(args)
    try:
        return int(args.handler(args, ctx) or 0)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"lnlens: config error: {problem}", file=sys.stderr)
        return 2
    except LnlensError as exc:
        print(f"lnlens: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lnlens: interrupted", file=sys.stderr)
        return 130
    finally:
        ctx.close()
