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
import os
import sqlite3
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import NoReturn

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
INTERNAL_ERROR = 70  # EX_SOFTWARE


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (which argument, why, where the help is), exit 2; every subcommand uses it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``lnlens`` parser, every command in it.

    :param argv: the command line it is about to parse: when that names a command (``lnlens lnd run``,
        ``lnlens monitor``), no other adapter's entry point is loaded. A daemon then does not import another
        adapter's libraries for its life (the simulator's numba and scipy, ~120 MB; issue 16).
    """
    parser = _Parser(
        prog="lnlens", description="Liquidity, missed opportunities and fee policy for Lightning routing nodes."
    )
    parser.add_argument("--version", action="version", version=f"lnlens {__version__}")
    parser.add_argument("--config", metavar="FILE", help="settings file (TOML); default $LNLENS_CONFIG")
    parser.add_argument("--db", metavar="PATH", help="database file; default <data-dir>/lnlens.sqlite3")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in CORE_COMMANDS:
        importlib.import_module(module).register(sub)
    adapters = sorted(entry_points(group="lnlens.cli"), key=lambda e: e.name)
    named = _command(parser, argv) if argv is not None else None
    if named in sub.choices or any(ep.name == named for ep in adapters):
        adapters = [ep for ep in adapters if ep.name == named]
    for ep in adapters:
        try:
            ep.load()(sub)
        except ImportError as exc:
            # An adapter whose extra is missing still shows up, and says how to fix it.
            _register_missing(sub, ep.name, exc)
    _global_options_everywhere(parser)
    return parser


def _command(parser: argparse.ArgumentParser, argv: Sequence[str]) -> str | None:
    """The command ``argv`` names (its first word that is neither a global option nor an option's value)."""
    takes_value = {s for a in parser._actions if a.option_strings and a.nargs != 0 for s in a.option_strings}
    words = iter(argv)
    for word in words:
        if word in takes_value:
            next(words, None)
        elif word == "--" or not word.startswith("-"):
            return next(words, None) if word == "--" else word
    return None


def _register_missing(sub: argparse._SubParsersAction, name: str, exc: ImportError) -> None:
    message = str(exc)
    p = sub.add_parser(name, help=f"(unavailable: {message})", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)

    def fail(args: argparse.Namespace, ctx: CliContext) -> int:
        raise LnlensError(message)

    p.set_defaults(handler=fail)


def _global_options_everywhere(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``--db`` and ``-v`` are also accepted after the subcommand (``lnlens opportunities --db X``).

    Each leaf subcommand gets copies whose default is SUPPRESS, so a value given before the subcommand stays
    unless the same option is given again after it. A subcommand with its own ``--db`` keeps its own.
    """
    seen: set[int] = set()

    def visit(p: argparse.ArgumentParser) -> None:
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if p is not parser and not subs:
            have = p._option_string_actions
            if "--config" not in have:
                p.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
            if "--db" not in have:
                p.add_argument("--db", metavar="PATH", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
            if "-v" not in have and "--verbose" not in have:
                p.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        for action in subs:
            for child in action.choices.values():
                if id(child) not in seen:
                    seen.add(id(child))
                    visit(child)

    visit(parser)


def _os_error(exc: OSError) -> str:
    """``/proc/x: No such file or directory`` from an OSError, without its errno prefix."""
    where = " ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    reason = exc.strerror or str(exc)
    return f"{where}: {reason}" if where else reason


def _quiet_stdout() -> None:
    """Standard output's reader went away (``| head``): drop what is still buffered instead of failing on exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Exit codes (docs/cli.md): 0 done, 1 failed, 2 usage or configuration error,
    130 interrupted, 70 an unexpected internal error (a bug: one line, and the traceback with -vv)."""
    parser = build_parser(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)  # a usage error: argparse prints it in one line and exits 2
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    ctx = CliContext(args)
    try:
        try:
            code = int(args.handler(args, ctx) or 0)
        finally:
            ctx.close()
        sys.stdout.flush()  # a reader that went away shows here, not as an exception at exit
        return code
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"lnlens: config error: {problem}", file=sys.stderr)
        return 2
    except LnlensError as exc:
        print(f"lnlens: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except OSError as exc:
        print(f"lnlens: error: {_os_error(exc)}", file=sys.stderr)
        return 1
    except sqlite3.Error as exc:
        print(f"lnlens: error: database: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lnlens: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, never a traceback
        log.debug("internal error", exc_info=True)
        print(f"lnlens: internal error (a bug in lnlens; -vv shows where): {type(exc).__name__}: {exc}",
              file=sys.stderr)  # fmt: skip
        return INTERNAL_ERROR
