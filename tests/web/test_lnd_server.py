"""``http_port`` in the settings: ``lnlens lnd run`` serves the live API and stream next to the sidecar."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading

import httpx2
import pytest

lnd_testing = pytest.importorskip("lnlens_testing.lnd")
pytest.importorskip("grpc")

from lnlens_core.clock import ManualClock, SystemClock  # noqa: E402


def test_lnd_daemon_serves_the_api(tmp_path):
    node = lnd_testing.sim_node(balances="opener", payments_per_hour=800, clock=ManualClock(SystemClock().now() - 7200))
    fake = lnd_testing.FakeLnd(node, tmp_path / "lnd")
    fake.start()
    proc = None
    try:
        node.run(1800)
        mac = fake.write_macaroon("lnlens.macaroon", lnd_testing.minimal_ops("read"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        config = tmp_path / "lnlens.toml"
        config.write_text(f'interval = "1s"\nhttp_port = {port}\n[lnd]\nhost = "{fake.host}"\nnetwork = "regtest"\n'
                          f'tlscert = "{fake.cert_path}"\nmacaroon = "{mac}"\n')  # fmt: skip
        env = {**os.environ, "LNLENS_DATA_DIR": str(tmp_path / "data")}
        cmd = [sys.executable, "-c", "import sys; from lnlens_core.cli import main; sys.exit(main())",
               "--config", str(config), "--db", str(tmp_path / "db.sqlite3"), "lnd", "run"]  # fmt: skip
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
        reader.start()
        pause = threading.Event()
        for _ in range(1500):
            if any("lnlens API on" in line for line in lines) or proc.poll() is not None:
                break
            pause.wait(0.02)
        assert any(f"http://127.0.0.1:{port}/api/v1/" in line for line in lines), "".join(lines)
        token = (tmp_path / "data" / "http-token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        node_info = httpx2.get(f"http://127.0.0.1:{port}/api/v1/node", headers=headers).json()["node"]
        assert node_info["backend"] == "lnd" and node_info["pubkey"] == fake.node.get_info().pubkey
        assert httpx2.get(f"http://127.0.0.1:{port}/api/v1/node").status_code == 401
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                assert proc.wait(20) == 0, "".join(lines)
            finally:
                if proc.poll() is None:
                    proc.kill()
        fake.stop()
