"""``lnlens serve``: the read-only HTTP/JSON API, event stream and dashboard over the database.

With ``--simulate`` the same process also drives the simulator live: its forwards, analyses and
rebalance suggestions go out on the stream, and a client can acknowledge a suggestion, which the
simulator executes (docs/api.md).
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
import threading

from ..errors import ConfigError
from ..lens import Lens
from ..plugins import get_plugin_manager
from ..storage import Store
from .context import CliContext, duration_arg, float_arg, int_arg
from .node import open_backend


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="read-only HTTP/JSON API, event stream and dashboard over the database")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int_arg(0, 65535), default=8642, help="port (default 8642; 0 picks a free one)")
    p.add_argument("--simulate", action="store_true", help="also run the simulator ([sim] settings) live")
    p.add_argument("--speed", type=float_arg(0, 1e9, above=True), default=600.0,
                   help="--simulate: simulated seconds per real second")  # fmt: skip
    p.add_argument("--interval", type=duration_arg, default=None,
                   help="--simulate: simulated time between analyses (default: the interval setting)")  # fmt: skip
    p.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace, ctx: CliContext) -> int:
    from ..web.driver import SimDriver
    from ..web.server import WebServer
    from ..web.watcher import StoreWatcher

    config = ctx.config()
    if args.speed <= 0:
        raise ConfigError("--speed must be positive")
    ctx.store(create=True)  # the database the API serves (and the simulator writes), made once here
    backend = open_backend("sim", ctx) if args.simulate else None
    clock = getattr(backend, "clock", None) or ctx.clock
    server = WebServer(config, clock, host=args.host, port=args.port, live_clock=backend is not None)
    driver: SimDriver | StoreWatcher
    if backend is not None:
        assert server.live is not None
        server.live.backend = backend

        def make_lens() -> Lens:
            store = Store(config.db_path)
            store.set_meta("clock", "simulated")
            pm = get_plugin_manager(blocked=config.blocked_plugins)
            return Lens(config, store=store, clock=clock, pm=pm, backend=backend)

        driver = SimDriver(make_lens, server.hub, server.live, speed=args.speed,
                           interval_s=args.interval or config.interval_s)  # fmt: skip
        driver.start()
        driver.ready.wait()
    else:
        # Another process writes this database: its new forwards and analyses reach the stream by polling.
        driver = StoreWatcher(config.db_path, server.hub)
        driver.start()
    if not _loopback(args.host):
        print(f"lnlens: warning: listening on {args.host}: reachable from other machines, and the API token "
              "travels in clear text (plain HTTP): put a TLS proxy or an SSH tunnel in front",
              file=sys.stderr)  # fmt: skip
    # SIGTERM (systemd, docker stop, kill) ends the server as Ctrl-C does, so the simulator's state is saved.
    if threading.current_thread() is threading.main_thread():  # (signals reach the main thread only)
        signal.signal(signal.SIGTERM, _interrupt)
    server.start()
    print(f"{server.describe()}; Ctrl-C stops it", file=sys.stderr)
    try:
        server.wait()
    finally:
        server.stop()
        driver.stop()
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
