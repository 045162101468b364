"""The plugin's periodic model run under the lightningd stand-in: online learning records a decision and
publishes it in lens-status; without the train extra the plugin says why and goes on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lnlens_testing.cln import PluginProcess, StandIn, sim_node
from lnlens_testing.cln.checks import validate

from lnlens_core.storage import Store

pytest.importorskip("onnxruntime")
HISTORY_H = 36  # 24 h of held-out window, the 6 h target horizon, and some older hours to learn from


def _with_history(tmp_path: Path) -> StandIn:
    """A stand-in whose lightningd has HISTORY_H hours of forwards, and a database in which the plugin (as if it
    had run before) stored a snapshot of our channels every hour of it."""
    node = sim_node(history_s=HISTORY_H * 3600.0 + 600, payments_per_hour=600)
    standin = StandIn(tmp_path / "regtest", node)
    store = Store(standin.lightning_dir / "lnlens.sqlite3")
    try:
        for _ in range(HISTORY_H):
            store.add_snapshots(node.list_channels(), time=node.clock.now())
            standin.advance(3600.0)
    finally:
        store.close()
    return standin


def _sklearn_missing(tmp_path: Path) -> dict[str, str]:
    """An environment in which scikit-learn cannot be imported, as when the train extra is not installed."""
    shim = tmp_path / "no-sklearn" / "sklearn"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text('raise ImportError("No module named \'sklearn\' (simulated)")\n')
    return {"PYTHONPATH": str(shim.parent)}


def _answers(url: str, headers: dict[str, str]) -> bool:
    import httpx2

    try:
        return httpx2.get(url, headers=headers).status_code == 200
    except httpx2.TransportError:  # not listening yet
        return False


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_periodic_run_learns_online_and_records_the_decision(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("starlette")
    from websockets.sync.client import connect

    standin = _with_history(tmp_path)
    try:
        port = _free_port()
        standin.start_plugin({"lens-interval": "1", "lens-http-port": str(port)})
        plugin = standin.plugin
        assert plugin is not None
        standin.wait_backfill()
        token = (standin.lightning_dir / "http-token").read_text().strip()
        node_url, headers = f"http://127.0.0.1:{port}/api/v1/node", {"Authorization": f"Bearer {token}"}
        standin.wait_for(lambda: _answers(node_url, headers))
        # The stream observer gets the model's messages: drift every interval (and suggestions, when any).
        with connect(f"ws://127.0.0.1:{port}/api/v1/stream?token={token}", open_timeout=10) as ws:
            hello = json.loads(ws.recv(timeout=10))
            assert "model" in hello["data"]["types"]
            while (msg := json.loads(ws.recv(timeout=30)))["type"] != "model":
                pass
        assert msg["data"]["kind"] in ("drift", "decision") and msg["data"].get("model", msg["data"].get("name"))

        def decided():
            model = plugin.call("lens-status")["liquidity_model"]
            return model if model and model["online_learning"]["last_decision"] else None

        model = standin.wait_for(decided, timeout=180)
        status = validate("lens-status", plugin.call("lens-status"))
        assert status["liquidity_model"]["online_learning"]["enabled"] is True
        decision = model["online_learning"]["last_decision"]
        store = Store(standin.lightning_dir / "lnlens.sqlite3")
        try:
            row = next(r for r in store.model_runs() if r["id"] == decision["model_id"])
            drift = store.latest_drift()
        finally:
            store.close()
        assert row["name"] == "online" and row["active"] is decision["promoted"]
        assert row["metrics"]["decision"]["reason"] == decision["reason"]
        assert row["metrics"]["decision"]["holdout_samples"] == decision["holdout_samples"] >= 30
        last = model["last_run"]
        assert last["model"] and last["predictions"] == len(standin.node.list_channels())
        assert model["drift"]["error"]["live_mae"] is not None and last["model"] in drift
        assert any(level == "info" and "online model" in message for level, message in plugin.logs)
    finally:
        standin.close()


def test_without_the_train_extra_the_plugin_says_why_and_goes_on(tmp_path):
    standin = _with_history(tmp_path)
    try:
        standin.plugin = PluginProcess(standin.command, str(standin.lightning_dir), env=_sklearn_missing(tmp_path))
        standin.plugin.start({"lens-interval": "1"})
        plugin = standin.plugin

        def ran():
            model = plugin.call("lens-status")["liquidity_model"]
            return model if model and model["last_run"] and model["last_run"]["runs"] >= 2 else None

        model = standin.wait_for(ran, timeout=120)
        online = model["online_learning"]
        assert online["enabled"] is False and online["last_decision"] is None
        assert "scikit-learn" in online["reason"] or "sklearn" in online["reason"]
        assert "pip install 'lnlens[train]'" in online["reason"]
        # Said once (pyln's handler repeats every record with the logger's name in front: not counted).
        warned = [m for _, m in plugin.logs if m.startswith("lnlens: liquidity model:") and "is off" in m]
        assert len(warned) == 1, "\n".join(map(str, plugin.logs))
        # The rest goes on: predictions stored, drift measured, analyses run, no model candidate recorded.
        assert model["last_run"]["predictions"] == len(standin.node.list_channels())
        assert model["drift"] is not None and plugin.call("lens-status")["worker"] == "running"
        store = Store(standin.lightning_dir / "lnlens.sqlite3")
        try:
            assert store.model_runs() == [] and store.predictions()
        finally:
            store.close()
    finally:
        standin.close()
