"""Fixtures for the LND tests: a SimNode, a fake lnd over it (TLS, fake macaroons), a connected backend."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("grpc", reason="the lnd extra is not installed")

from lnlens_lnd.backend import LndBackend  # noqa: E402
from lnlens_lnd.events import LiveForwards  # noqa: E402
from lnlens_testing.lnd import FakeLnd, minimal_ops, sim_node  # noqa: E402

from lnlens_core.clock import SystemClock  # noqa: E402
from lnlens_core.opportunities.monitor import HtlcMonitor  # noqa: E402
from lnlens_core.storage import Store  # noqa: E402


@pytest.fixture
def node():
    """A small simulated routing node with steady traffic (see raise_fees for failures at our node)."""
    return sim_node(payments_per_hour=6000)


def _raise_fees(node) -> None:
    """Raise our fees on every channel, as an operator would: until the gossip spreads, senders still pay the
    old fees, and our node refuses their HTLCs (fee_insufficient, a failure at our node)."""
    from lnlens_core.domain import FeeUpdate

    for c in node.list_channels():
        node.set_channel_policy(c.channel_id, FeeUpdate(fee_ppm=c.local_policy.fee_ppm * 5 + 500))


@pytest.fixture
def raise_fees():
    return _raise_fees


@pytest.fixture
def fake(node, tmp_path) -> Iterator[FakeLnd]:
    server = FakeLnd(node, tmp_path / "lnd")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def connect_to():
    """connect_to(fake, mode="read", ops=None, **settings) -> LndBackend, closed after the test."""
    opened: list[LndBackend] = []

    def make(fake, mode: str = "read", ops=None, name: str = "lnlens.macaroon", **settings) -> LndBackend:
        macaroon = fake.write_macaroon(name, ops if ops is not None else minimal_ops(mode))
        backend = LndBackend.connect(fake.settings(macaroon, mode=mode, **settings), clock=fake.node.clock)
        opened.append(backend)
        return backend

    yield make
    for backend in opened:
        backend.close()


@pytest.fixture
def connect(fake, connect_to):
    """connect(mode="read", ops=None, **settings) -> LndBackend connected to the ``fake`` fixture."""
    return lambda *args, **kwargs: connect_to(fake, *args, **kwargs)


class Feed:
    """A LiveForwards running in its own thread, with its own Store on a file (SQLite connections stay in their
    thread); the test thread drives the simulator and the fake server."""

    def __init__(self, backend: LndBackend, path: Path, clock, **kwargs) -> None:
        self.stop = threading.Event()
        self.path = path
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.counted = 0

        def work() -> None:
            store = Store(path)
            try:
                monitor = HtlcMonitor(store, clock, lambda batch: None)
                self.live = LiveForwards(backend, monitor, SystemClock(), self.stop, **kwargs)
                self.ready.set()
                self.live.run()
                self.counted = monitor.events_seen
            except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                self.error = exc
                self.ready.set()
            finally:
                store.close()

        self.thread = threading.Thread(target=work, name="test-feed")
        self.thread.start()
        assert self.ready.wait(10)

    def wait(self, predicate, timeout: float = 10.0) -> None:
        done = threading.Event()
        for _ in range(int(timeout / 0.01)):
            if predicate():
                return
            done.wait(0.01)
        raise AssertionError("timed out waiting for the feed")

    def wait_connected(self, connects: int) -> None:
        self.wait(lambda: self.live.stats.connects >= connects and self.live.connected.is_set())

    def close(self) -> None:
        self.live.close()
        self.thread.join(10)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


@pytest.fixture
def feed(tmp_path):
    feeds: list[Feed] = []

    def start(backend: LndBackend, clock, **kwargs) -> Feed:
        kwargs.setdefault("backoff_s", (0.05, 0.2))
        f = Feed(backend, tmp_path / f"feed{len(feeds)}.sqlite3", clock, **kwargs)
        feeds.append(f)
        return f

    yield start
    for f in feeds:
        if f.thread.is_alive():
            f.live.close()
            f.thread.join(10)


class _Daemon:
    """`lnlens -v lnd run` in a subprocess (SIGTERM needs the main thread of a process of its own)."""

    def __init__(self, config, db, *extra: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-c", "import sys; from lnlens_core.cli import main; sys.exit(main())", "-v",
               "--config", str(config), "--db", str(db), "lnd", "run", *extra]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        pause = threading.Event()
        for _ in range(int(timeout / 0.02)):
            if any(text in line for line in self.lines):
                return
            pause.wait(0.02)
        raise AssertionError(f"no {text!r} in:\n{self.text}")

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.reader.join(5)


@pytest.fixture
def Daemon():  # noqa: N802 - a class handed out by a fixture
    """`lnlens -v lnd run` in a subprocess: Daemon(config, db, *extra flags)."""
    started: list[_Daemon] = []

    def start(*args):
        d = _Daemon(*args)
        started.append(d)
        return d

    yield start
    for d in started:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(10)
