"""lnlens against a real lnd on regtest (bitcoind + lnd started here; skipped when they are not on PATH).

One node, no channels: what only a real lnd can confirm is the API contract lnlens relies
on — the bake command of the README produces a macaroon the start check judges minimal,
CheckMacaroonPermissions answers as lnlens reads it (admin: loud warning; readonly in
apply mode: stop), the network is detected, the history cursor and the HTLC stream work.

    bitcoind (regtest) ── lnd (--noseedbackup) ── lnlens (LndBackend, lncli bakemacaroon)
"""

from __future__ import annotations

import logging
import re
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

_missing = [name for name in ("lnd", "lncli", "bitcoind") if shutil.which(name) is None]
if _missing:
    pytest.skip(f"{' and '.join(_missing)} not on PATH: these tests run a real lnd on regtest",
                allow_module_level=True)  # fmt: skip
pytest.importorskip("grpc", reason="the lnd extra is not installed")

from lnlens_lnd.backend import LndBackend, bake_command  # noqa: E402 - only once the binaries are known to exist
from lnlens_lnd.connection import LndSettings  # noqa: E402
from lnlens_lnd.events import LiveForwards  # noqa: E402

from lnlens_core.clock import SystemClock  # noqa: E402
from lnlens_core.errors import BackendUnavailable, ConfigError  # noqa: E402
from lnlens_core.opportunities.monitor import HtlcMonitor  # noqa: E402
from lnlens_core.storage import Store  # noqa: E402

pytestmark = pytest.mark.integration


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _version(binary: str) -> tuple[int, int, int]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
    m = re.search(r"(\d+)\.(\d+)\.(\d+)", out)
    return (int(m[1]), int(m[2]), int(m[3])) if m else (0, 0, 0)


class Regtest:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.rpc_port, self.zmq_block, self.zmq_tx = _port(), _port(), _port()
        self.grpc, self.rest, self.p2p = _port(), _port(), _port()
        self.lnddir = folder / "lnd"
        btc = folder / "bitcoind"
        btc.mkdir()
        self.procs: list[subprocess.Popen] = []
        self.procs.append(subprocess.Popen(
            ["bitcoind", "-regtest", f"-datadir={btc}", "-server", "-txindex", "-rpcuser=u", "-rpcpassword=p",
             f"-rpcport={self.rpc_port}", f"-port={_port()}", "-fallbackfee=0.0002",
             f"-zmqpubrawblock=tcp://127.0.0.1:{self.zmq_block}", f"-zmqpubrawtx=tcp://127.0.0.1:{self.zmq_tx}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
        args = [
            "lnd", f"--lnddir={self.lnddir}", "--bitcoin.regtest", "--bitcoin.node=bitcoind", "--noseedbackup",
            f"--bitcoind.rpchost=127.0.0.1:{self.rpc_port}", "--bitcoind.rpcuser=u", "--bitcoind.rpcpass=p",
            f"--bitcoind.zmqpubrawblock=tcp://127.0.0.1:{self.zmq_block}",
            f"--bitcoind.zmqpubrawtx=tcp://127.0.0.1:{self.zmq_tx}", f"--rpclisten=127.0.0.1:{self.grpc}",
            f"--restlisten=127.0.0.1:{self.rest}", f"--listen=127.0.0.1:{self.p2p}",
        ]  # fmt: skip
        if _version("lnd") < (0, 18, 0):
            args.append("--bitcoin.active")
        self.procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def settings(self, macaroon: Path | None = None, *, mode: str = "read") -> LndSettings:
        return LndSettings(host=f"127.0.0.1:{self.grpc}", lnddir=self.lnddir, network="regtest", macaroon=macaroon,
                           mode=mode)  # fmt: skip

    def connect(self, macaroon: Path | None = None, *, mode: str = "read", timeout_s: float = 90.0) -> LndBackend:
        """Connect as lnlens does, waiting while lnd starts (BackendUnavailable, missing files)."""
        pause = threading.Event()
        for _ in range(int(timeout_s / 0.5)):
            try:
                return LndBackend.connect(self.settings(macaroon, mode=mode), clock=SystemClock())
            except BackendUnavailable:
                pass
            except ConfigError as exc:
                if "does not exist" not in str(exc) and "no macaroon" not in str(exc):
                    raise
            pause.wait(0.5)
        raise TimeoutError("lnd did not come up")

    def lncli(self, *args: str) -> str:
        cmd = ["lncli", f"--lnddir={self.lnddir}", "--network=regtest", f"--rpcserver=127.0.0.1:{self.grpc}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def regtest(tmp_path_factory):
    net = Regtest(tmp_path_factory.mktemp("lnd-regtest"))
    try:
        net.connect(net.lnddir / "data/chain/bitcoin/regtest/admin.macaroon", mode="apply").close()
        yield net
    finally:
        net.close()


def test_the_readme_bake_command_gives_a_minimal_macaroon(regtest, tmp_path, caplog):
    path = tmp_path / "lnlens.macaroon"
    words = bake_command("apply", save_to=str(path)).split()
    regtest.lncli(*words[1:])
    with caplog.at_level(logging.WARNING):
        backend = regtest.connect(path, mode="apply")
    try:
        assert backend.permissions.scope == "minimal", backend.permissions
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("lnlens_lnd")]
        assert backend.info.network == "regtest"
        page = backend.list_forwards(None, limit=10)
        assert page.events == () and page.done
    finally:
        backend.close()


def test_admin_macaroon_is_loudly_reported(regtest, caplog):
    with caplog.at_level(logging.WARNING):
        backend = regtest.connect(mode="apply")  # the default path: admin.macaroon
    try:
        assert backend.permissions.excess_write and "send payments" in backend.permissions.excess
        assert any(r.levelno >= logging.ERROR and "send payments" in r.getMessage() for r in caplog.records)
    finally:
        backend.close()


def test_readonly_macaroon_stops_apply_mode(regtest):
    readonly = regtest.lnddir / "data/chain/bitcoin/regtest/readonly.macaroon"
    with pytest.raises(ConfigError, match="lacks UpdateChannelPolicy"):
        LndBackend.connect(regtest.settings(readonly, mode="apply"), clock=SystemClock())


def test_wrong_network_is_named(regtest):
    from dataclasses import replace

    settings = replace(regtest.settings(regtest.lnddir / "data/chain/bitcoin/regtest/readonly.macaroon"),
                       network="signet")  # fmt: skip
    with pytest.raises(ConfigError, match='runs on regtest.*set network = "regtest"'):
        LndBackend.connect(settings, clock=SystemClock())


def test_the_htlc_stream_subscribes(regtest, tmp_path):
    backend = regtest.connect(regtest.lnddir / "data/chain/bitcoin/regtest/readonly.macaroon")
    stop = threading.Event()
    store = None
    box: dict = {}

    def run() -> None:
        nonlocal store
        store = Store(tmp_path / "db.sqlite3")
        box["feed"] = feed = LiveForwards(backend, HtlcMonitor(store, SystemClock(), lambda b: None), SystemClock(),
                                          stop)  # fmt: skip
        feed.run()
        store.close()

    worker = threading.Thread(target=run)
    worker.start()
    try:
        pause = threading.Event()
        for _ in range(200):
            if "feed" in box and box["feed"].connected.is_set():
                break
            pause.wait(0.05)
        assert box["feed"].connected.is_set() and box["feed"].stats.resyncs == 1
    finally:
        if "feed" in box:
            box["feed"].close()
        stop.set()
        worker.join(30)
        backend.close()
