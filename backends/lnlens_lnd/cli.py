"""``lnlens lnd run | opportunities | status``: lnlens beside lnd.

Registered through the ``lnlens.cli`` entry point. Connection settings come from
the ``[lnd]`` table of the settings file, ``LNLENS_LND_*`` variables and the flags
below (later wins). The mode is ``apply`` (UpdateChannelPolicy allowed, and required of
the macaroon) only with a fee policy and ``dry_run = false``; otherwise ``read``.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from typing import Any

from rich.console import Console
from rich.table import Table

from lnlens_core.cli.context import CliContext, add_json_flag, duration_arg, int_arg, to_jsonable
from lnlens_core.cli.opportunities_cmd import render_table
from lnlens_core.domain import ChannelId
from lnlens_core.errors import BackendUnavailable
from lnlens_core.fees.engine import FeeEngine
from lnlens_core.lens import Lens
from lnlens_core.model.registry import ModelRegistry
from lnlens_core.opportunities.run import filter_opportunities, run_analysis
from lnlens_core.plugins import get_plugin_manager

__all__ = ["register"]

_REFUSED_SHOWN = 5  # the newest refused fee changes `lnd status` lists

log = logging.getLogger(__name__)

_FLAGS = (
    ("host", "HOST:PORT", "lnd's gRPC address (default localhost:10009)"),
    ("lnddir", "DIR", "lnd's folder, for default paths (default ~/.lnd)"),
    ("network", "NET", "mainnet, testnet, testnet4, signet, regtest (default mainnet)"),
    ("tlscert", "FILE", "lnd's tls.cert (default <lnddir>/tls.cert)"),
    (
        "macaroon",
        "FILE",
        "macaroon (default <lnddir>/data/chain/bitcoin/<network>/lnlens.macaroon, then readonly "
        "(read mode), then admin)",
    ),
    ("lndconnect", "URI", "an lndconnect:// URI instead of host, cert and macaroon"),
)


def register(sub: argparse._SubParsersAction) -> None:
    lnd = sub.add_parser("lnd", help="lnlens beside lnd: the sidecar daemon and one-shot commands")
    cmds = lnd.add_subparsers(dest="lnd_command", metavar="COMMAND", required=True)

    run = cmds.add_parser(
        "run", help="the sidecar: store forwards as they happen; analyse (and run the fee policy) every interval"
    )
    _connection_flags(run)
    run.add_argument("--since", type=duration_arg, default="24h", help="analysis window (default 24h)")
    run.add_argument("--json", action="store_true",
                     help="print each analysis, fee plan and model run as one JSON line (JSON Lines)")
    run.set_defaults(handler=cmd_run)

    opp = cmds.add_parser("opportunities", help="read lnd's history, then the missed-opportunity analysis")
    _connection_flags(opp)
    opp.add_argument("--since", type=duration_arg, default="24h", help="analysis window back from now (24h, 7d)")
    opp.add_argument("--min-urgency", type=int_arg(0, 100), default=0, metavar="N", help="only urgency >= N (0-100)")
    opp.add_argument("--channel", type=ChannelId.parse, help="only this channel (BLOCKxTXxOUT or uint64)")
    opp.add_argument("--limit", type=int_arg(1), default=None, metavar="N", help="at most N rows")
    add_json_flag(opp)
    opp.set_defaults(handler=cmd_opportunities)

    status = cmds.add_parser("status", help="the node, its version and capabilities, and what the macaroon allows")
    _connection_flags(status)
    add_json_flag(status)
    status.set_defaults(handler=cmd_status)


def _connection_flags(p: argparse.ArgumentParser) -> None:
    for name, metavar, text in _FLAGS:
        p.add_argument(f"--{name}", metavar=metavar, help=text)


def _connect(args: argparse.Namespace, ctx: CliContext, *, mode: str | None = None):
    from .backend import LndBackend
    from .connection import LndSettings

    config = ctx.config()
    flags = {name: getattr(args, name, None) for name, _, _ in _FLAGS}
    # Least privilege: UpdateChannelPolicy only when something will apply fees (a policy, dry_run = false).
    applies = not config.dry_run and config.policy_path is not None
    settings = LndSettings.from_sources(
        config.backends.get("lnd", {}), flags=flags, mode=mode or ("apply" if applies else "read")
    )
    return LndBackend.connect(settings, clock=ctx.clock)


def _lens(ctx: CliContext, backend) -> Lens:
    config = ctx.config()
    return Lens(
        config,
        store=ctx.store(create=True),
        clock=ctx.clock,
        pm=get_plugin_manager(blocked=config.blocked_plugins),
        backend=backend,
    )


class _StoppedStarting(Exception):
    """SIGTERM or SIGINT before the sidecar runs: start-up stops where it is (a child process it waits for is
    killed by ``subprocess``), instead of finishing work that would be thrown away."""


def cmd_run(args: argparse.Namespace, ctx: CliContext) -> int:
    from .sidecar import Sidecar

    stop = threading.Event()
    running: list[Sidecar] = []

    def on_signal(signum: int, frame: Any) -> None:
        ctx.err.print(f"lnlens lnd: {signal.Signals(signum).name}, stopping")
        first = not stop.is_set()
        stop.set()
        if first and not running:  # still starting (store, plugins, the model's probe of its extra): abandon it
            raise _StoppedStarting
        for sidecar in running:
            sidecar.shutdown()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        backend = _connect_waiting(args, ctx, stop)
        if backend is None:
            return 0
        web = None
        try:
            lens = _lens(ctx, backend)
            lens.startup()
            config = ctx.config()
            web = _start_web(ctx, lens, backend)
            engine = FeeEngine.from_config(lens, backend) if config.policy_path is not None else None
            sidecar = Sidecar(
                lens,
                backend,
                ctx.clock,
                stop=stop,
                interval_s=config.interval_s,
                since_s=args.since,
                on_result=_print_json_line if args.json else None,
                engine=engine,
                apply=not config.dry_run,
                on_plan=_print_json_line if args.json else None,
                models=ModelRegistry(lens.store, config.data_dir / "models", configured=config.model_path),
                on_model=_print_json_line if args.json else None,
            )
            running.append(sidecar)
            if not stop.is_set():
                sidecar.run()
        finally:
            if web is not None:
                web.stop()
            backend.close()
    except _StoppedStarting:
        return 0
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if sidecar.refused:
        last = sidecar.refused[-1]
        print(f"lnlens: error: lnd refused {len(sidecar.refused)} fee change(s) during this run (last: "
              f"{last['short_channel_id']}: {last['detail']}); see lnlens lnd status", file=sys.stderr)  # fmt: skip
        return 1
    return 0


def _start_web(ctx: CliContext, lens: Lens, backend):
    """``http_port`` set: the read-only API, stream and dashboard on 127.0.0.1 in this daemon (docs/api.md)."""
    config = ctx.config()
    if config.http_port is None:
        return None
    from lnlens_core.web.server import WebServer
    from lnlens_core.web.stream import StreamObserver
    from lnlens_core.web.views import Live

    web = WebServer(config, ctx.clock, port=config.http_port, live=Live(backend=backend))
    web.start()
    lens.pm.register(StreamObserver(web.hub), name="lnlens-stream")
    ctx.err.print(web.describe(), highlight=False)
    return web


def _print_json_line(result) -> None:
    data = result if isinstance(result, dict) else result.to_json()
    sys.stdout.write(json.dumps(data, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _connect_waiting(args: argparse.Namespace, ctx: CliContext, stop: threading.Event):
    """Connect, waiting (with backoff) while lnd is down, starting or locked; None when stopped meanwhile.

    Configuration problems (files, macaroon, network) are raised at once: waiting cannot fix them.
    """
    delay = 1.0
    while True:
        try:
            return _connect(args, ctx)
        except BackendUnavailable as exc:
            log.warning("%s; trying again in %g s", exc, delay)
            if ctx.clock.sleep(delay, stop):
                return None
            delay = min(delay * 2, 60.0)


def cmd_opportunities(args: argparse.Namespace, ctx: CliContext) -> int:
    from .events import history_stream

    backend = _connect(args, ctx, mode="read")
    backend.hold_answers()
    try:
        lens = _lens(ctx, backend)
        lens.monitor.backfill(backend, stream=history_stream(backend))
        channels = backend.list_channels()
        lens.monitor.observe_channels(channels)
        result = run_analysis(lens, since_s=args.since, channels=channels).to_json()
    finally:
        backend.close()
    rows = filter_opportunities(
        result["opportunities"], min_urgency=args.min_urgency, channel=args.channel, limit=args.limit
    )
    data = {**result, "opportunities": rows}

    def render(console: Console) -> None:
        render_table(console, rows, pairs=False, window_s=result["window_s"], channels=result["channels"])

    ctx.emit(data, render)
    return 0


def status_data(backend, store) -> dict[str, Any]:
    """What ``lnlens lnd status`` reports (also used by the docs generator)."""
    from .backend import bake_command
    from .events import history_stream
    from .rpc import OPTIONAL_METHODS, OPTIONAL_WRITE_METHODS

    info = backend.get_info()
    perms = backend.permissions
    channels = backend.list_channels()
    run_time, opportunities = store.latest_opportunities() if store is not None else (None, [])
    refused = store.journal(states=("failed",)) if store is not None else []
    return {
        "node": to_jsonable(info),
        "mode": backend.settings.mode,
        "capabilities": sorted(c.value for c in backend.capabilities),
        "channels": len(channels),
        "active_channels": sum(1 for c in channels if c.active),
        "macaroon": {
            "scope": perms.scope,
            "missing": list(perms.missing),
            "excess": list(perms.excess),
            "note": perms.note,
            "least_privilege_command": bake_command(backend.settings.mode),
            # Optional: only policies with node.*_channels/capacity, onchain.*_fee_rate, onchain_fee or cost need them.
            "optional_missing": list(perms.optional_missing),
            "with_optional_command": bake_command(backend.settings.mode, optional=(
                *OPTIONAL_METHODS, *(OPTIONAL_WRITE_METHODS if backend.settings.mode == "apply" else ())
            )),
        },
        "store": {
            "forwards": store.row_counts().get("forwards", 0) if store is not None else 0,
            "history_cursor": store.get_cursor(history_stream(backend)) if store is not None else None,
            "last_analysis_time": run_time,
            "opportunities": len(opportunities),
        },
        # Fee changes that failed (lnd refused them, or the macaroon forbids UpdateChannelPolicy), newest first.
        "refused_fee_changes": [
            {"journal_id": r["id"], "short_channel_id": r["channel_id"], "time": r["finished_time"],
             "reason": r["detail"]}
            for r in reversed(refused[-_REFUSED_SHOWN:])
        ],  # fmt: skip
        "refused_fee_changes_total": len(refused),
    }


def cmd_status(args: argparse.Namespace, ctx: CliContext) -> int:
    backend = _connect(args, ctx)
    backend.hold_answers()
    try:
        # Read only; before the sidecar's first run there is no database yet, and status makes none.
        store = ctx.store(readonly=True) if ctx.config().db_path.exists() else None
        data = status_data(backend, store)
    finally:
        backend.close()

    def render(console: Console) -> None:
        node = data["node"]
        table = Table(show_header=False, title=f"lnd {node['alias']} ({node['network']})")
        rows = [
            ("pubkey", node["pubkey"]),
            ("version", node["version"]),
            ("block height", str(node["block_height"])),
            ("mode", data["mode"]),
            ("capabilities", ", ".join(data["capabilities"])),
            ("channels", f"{data['active_channels']} active of {data['channels']}"),
            (
                "macaroon",
                data["macaroon"]["scope"]
                + (f" (can also {', '.join(data['macaroon']['excess'])})" if data["macaroon"]["excess"] else ""),
            ),
            ("forwards stored", str(data["store"]["forwards"])),
            ("history cursor", str(data["store"]["history_cursor"])),
        ]
        for r in data["refused_fee_changes"]:
            rows.append((f"fee change #{r['journal_id']} refused", f"{r['short_channel_id']}: {r['reason']}"))
        for key, value in rows:
            table.add_row(key, value, style="bold red" if "refused" in key else None)
        console.print(table)
        if data["refused_fee_changes_total"]:
            console.print(f"{data['refused_fee_changes_total']} fee change(s) refused in all (lnlens policy history "
                          "lists them)", style="bold red", markup=False)  # fmt: skip

    ctx.emit(data, render)
    return 0
