"""`lnlens lnd run`'s periodic model run against the fake lnd: online learning records a decision and prints it
(--json) and logs it; without the train extra the daemon says why and goes on."""

from __future__ import annotations

import json

import pytest
from lnlens_testing.lnd import FakeLnd, minimal_ops, sim_node

from lnlens_core.clock import ManualClock, SystemClock
from lnlens_core.storage import Store

pytest.importorskip("onnxruntime")
HISTORY_H = 36  # 24 h of held-out window, the 6 h target horizon, and some older hours to learn from


@pytest.fixture
def history(tmp_path):
    """A fake lnd whose node forwarded for the last HISTORY_H hours, and a database in which the sidecar (as if it
    had run before) stored a snapshot of our channels every hour of them; (fake, config path, db path)."""
    node = sim_node(payments_per_hour=600, clock=ManualClock(SystemClock().now() - HISTORY_H * 3600 - 600))
    fake = FakeLnd(node, tmp_path / "lnd")  # lnd's forwarding log records from here on
    db = tmp_path / "db.sqlite3"
    store = Store(db)
    try:
        for _ in range(HISTORY_H):
            store.add_snapshots(node.list_channels(), time=node.clock.now())
            node.run(3600)
    finally:
        store.close()
    fake.start()
    mac = fake.write_macaroon("lnlens.macaroon", minimal_ops("read"))
    config = tmp_path / "lnlens.toml"
    config.write_text(f'interval = "1s"\n[lnd]\nhost = "{fake.host}"\nnetwork = "regtest"\n'
                      f'tlscert = "{fake.cert_path}"\nmacaroon = "{mac}"\n')  # fmt: skip
    yield fake, config, db
    fake.stop()


def _lines(daemon) -> list[dict]:
    return [json.loads(line) for line in daemon.proc.stdout.read().splitlines()]


def test_lnd_run_learns_online_and_records_the_decision(history, Daemon):
    pytest.importorskip("sklearn")
    fake, config, db = history
    daemon = Daemon(config, db, "--json")
    daemon.wait_for("online learning: model ", timeout=180)
    assert daemon.stop() == 0, daemon.text
    runs = [line["liquidity_model"] for line in _lines(daemon) if "liquidity_model" in line]
    decided = [r for r in runs if r["online_learning"]["last_decision"]]
    assert runs and decided, daemon.text
    decision = decided[0]["online_learning"]["last_decision"]
    store = Store(db)
    try:
        row = next(r for r in store.model_runs() if r["id"] == decision["model_id"])
        drift = store.latest_drift()
        predictions = store.predictions()
    finally:
        store.close()
    assert row["name"] == "online" and row["active"] is decision["promoted"]
    assert row["metrics"]["decision"]["reason"] == decision["reason"] and decision["holdout_samples"] >= 30
    verdict = "promoted" if decision["promoted"] else "kept inactive"
    assert f"online learning: model {decision['model_id']} {verdict} ({decision['reason']})" in daemon.text
    last = decided[0]["last_run"]
    assert last["predictions"] == len(fake.node.list_channels()) and last["model"] in drift and predictions
    assert decided[0]["drift"]["error"]["live_mae"] is not None
    assert "Traceback" not in daemon.text


def test_lnd_run_without_the_train_extra_says_why_and_goes_on(history, Daemon, tmp_path, monkeypatch):
    shim = tmp_path / "no-sklearn" / "sklearn"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text('raise ImportError("No module named \'sklearn\' (simulated)")\n')
    monkeypatch.setenv("PYTHONPATH", str(shim.parent))
    fake, config, db = history
    daemon = Daemon(config, db, "--json")
    daemon.wait_for("model 2:", timeout=120)
    assert daemon.stop() == 0, daemon.text
    said = [line for line in daemon.text.splitlines() if "online learning is off" in line]
    assert len(said) == 1 and "pip install 'lnlens[train]'" in said[0], daemon.text
    runs = [line["liquidity_model"] for line in _lines(daemon) if "liquidity_model" in line]
    assert len(runs) >= 2 and all(not r["online_learning"]["enabled"] for r in runs)
    assert all("lnlens[train]" in r["online_learning"]["reason"] for r in runs)
    assert all(r["last_run"]["predictions"] == len(fake.node.list_channels()) for r in runs)
    assert "analysis 2:" in daemon.text and "Traceback" not in daemon.text
    store = Store(db)
    try:
        assert store.model_runs() == []
    finally:
        store.close()
