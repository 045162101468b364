"""Putting the server together: token, readers, app and a uvicorn server, for every host process.

The CLI (``lnlens serve``) runs it in the foreground; a daemon (the CLN plugin) runs
:meth:`WebServer.start` on a thread of its own and :meth:`WebServer.stop` at shutdown.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..clock import Clock
from ..config import LensConfig
from ..extras import require
from .auth import ensure_token
from .readers import Readers
from .views import Live

__all__ = ["WebServer", "DEFAULT_HOST", "DEFAULT_PORT", "STREAM_PATH"]

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8642
STREAM_PATH = "/api/v1/stream"


@dataclass
class WebServer:
    """The API (and whatever ``extra_routes`` a host adds) on ``host:port`` with uvicorn.

    :raises MissingExtra: starlette or uvicorn is not installed (``pip install 'lnlens[web]'``).
    :raises ConfigError: the token file is readable by others.
    """

    config: LensConfig
    clock: Clock
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    live: Live | None = None
    live_clock: bool = False
    pm_factory: Callable[[], Any] | None = None
    extra_routes: tuple[Any, ...] = ()
    queue_limit: int = 1000
    heartbeat_s: float = 5.0

    def __post_init__(self) -> None:
        require("starlette", extra="web", what="lnlens serve")
        self.uvicorn = require("uvicorn", extra="web", what="lnlens serve")
        from .app import create_app  # imports starlette: only once require() has said how to install it

        self.token_path, self.token = ensure_token(self.config.data_dir)
        self.live = self.live or Live()
        from starlette.routing import WebSocketRoute

        from .stream import Hub

        self.hub = Hub(self.clock, queue_limit=self.queue_limit, heartbeat_s=self.heartbeat_s)
        routes = [WebSocketRoute(STREAM_PATH, self.hub.serve), *self.extra_routes]
        self.readers = Readers(self.config, self.clock, live_clock=self.live_clock, pm_factory=self.pm_factory)
        self.app = create_app(self.readers, token=self.token, live=self.live,
                              extra_routes=routes)  # fmt: skip
        # log_config=None: the host process (CLI, CLN plugin) owns logging; uvicorn must not reconfigure it.
        config = self.uvicorn.Config(self.app, host=self.host, port=self.port, log_config=None, lifespan="off",
                                     ws_max_size=65_536)  # fmt: skip
        self.server = self.uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.bound_port}"

    @property
    def bound_port(self) -> int:
        """The port actually listened on (``port=0`` picks a free one)."""
        servers = getattr(self.server, "servers", None) or []
        for srv in servers:
            for sock in srv.sockets:
                return int(sock.getsockname()[1])
        return self.port

    def run(self) -> None:
        """Serve until interrupted (Ctrl-C) or :meth:`stop`."""
        try:
            self.server.run()
        finally:
            self.readers.close()

    def start(self, *, timeout_s: float = 10.0) -> None:
        """Serve on a daemon thread; returns once the socket listens.

        :raises OSError: the server did not start (port taken, ...) within ``timeout_s``.
        """
        self._thread = threading.Thread(target=self.run, name="lnlens-web", daemon=True)
        self._thread.start()
        done, waited = threading.Event(), 0.0
        while not self.server.started and self._thread.is_alive() and waited < timeout_s:
            done.wait(0.01)
            waited += 0.01
        if not self.server.started:
            raise OSError(f"lnlens web server did not start on {self.host}:{self.port} (see the log)")

    def wait(self) -> None:
        """Block until the server thread ends (Ctrl-C raises KeyboardInterrupt here)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.2)

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def describe(self) -> str:
        return f"lnlens API on {self.url}/api/v1/ (token: {Path(self.token_path)})"
