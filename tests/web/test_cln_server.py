"""``lens-http-port``: the CLN plugin serves the same API and stream in-process (the real plugin executable,
under the lightningd stand-in backed by the simulator)."""

from __future__ import annotations

import json
import socket

import httpx2
import pytest

standin_mod = pytest.importorskip("lnlens_testing.cln")
pytest.importorskip("pyln.client")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cln_plugin_serves_the_api_and_streams_live_forwards(tmp_path):
    from websockets.sync.client import connect

    node = standin_mod.sim_node(history_s=3 * 3600.0)
    standin = standin_mod.StandIn(tmp_path / "regtest", node)
    try:
        standin.advance(2 * 3600.0)
        port = _free_port()
        standin.start_plugin({"lens-http-port": str(port)})
        standin.wait_backfill()
        token = (standin.lightning_dir / "http-token").read_text().strip()
        base, headers = f"http://127.0.0.1:{port}/api/v1", {"Authorization": f"Bearer {token}"}
        assert httpx2.get(f"{base}/node").status_code == 401
        info = standin.wait_for(lambda: httpx2.get(f"{base}/node", headers=headers).json()["node"])
        assert info["backend"] == "cln"
        stored = httpx2.get(f"{base}/node", headers=headers).json()["database"]["rows"]["forwards"]
        assert stored == standin.plugin.call("lens-status")["db"]["forwards"] > 0
        with connect(f"ws://127.0.0.1:{port}/api/v1/stream?token={token}", open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "hello"
            sent = standin.advance(1800.0)
            assert sent
            wanted, keys = {e.key for e in sent}, set()
            while not wanted <= keys:  # every forward lightningd announced arrives (recv times out otherwise)
                msg = json.loads(ws.recv(timeout=20))
                if msg["type"] == "forward":
                    keys.add(msg["data"]["key"])
    finally:
        standin.close()
