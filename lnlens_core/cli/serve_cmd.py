"""``lnlens serve``: the read-only HTTP/JSON API (and stream and dashboard) over the database."""

from __future__ import annotations

import argparse
import sys

from .context import CliContext


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="read-only HTTP/JSON API, event stream and dashboard over the database")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8642, help="port (default 8642; 0 picks a free one)")
    p.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace, ctx: CliContext) -> int:
    from ..web.server import WebServer

    server = WebServer(ctx.config(), ctx.clock, host=args.host, port=args.port)
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        print(f"lnlens: warning: listening on {args.host}: reachable from other machines", file=sys.stderr)
    server.start()
    print(f"{server.describe()}; Ctrl-C stops it", file=sys.stderr)
    try:
        server.wait()
    finally:
        server.stop()
    return 0
