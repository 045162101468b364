"""lnlens monitor: the live loop over the simulator, one JSON line per analysis."""

from __future__ import annotations

import json

import pytest

from lnlens_core.cli import main
from lnlens_core.storage import Store

pytest.importorskip("lnlens_sim")


def monitor_json(tmp_path, capsys, monkeypatch, *, nodes, payments_per_hour, duration, interval):
    """Run `lnlens monitor --json` on a synthetic simulated network; (exit code, lines, database path)."""
    monkeypatch.setenv("LNLENS_DATA_DIR", str(tmp_path))
    settings = tmp_path / "lnlens.toml"
    settings.write_text(f'[sim]\nnetwork = "synthetic"\nnodes = {nodes}\nseed = 5\n'
                        f'payments_per_hour = {payments_per_hour}\n')  # fmt: skip
    db = tmp_path / "m.sqlite3"
    code = main(["--config", str(settings), "--db", str(db), "monitor", "--duration", duration, "--interval", interval,
                 "--json"])  # fmt: skip
    return code, [json.loads(line) for line in capsys.readouterr().out.splitlines()], db


def test_monitor_runs_the_live_loop_on_the_simulator(tmp_path, capsys, monkeypatch):
    code, lines, db = monitor_json(tmp_path, capsys, monkeypatch, nodes=150, payments_per_hour=4000, duration="4h",
                                   interval="2h")  # fmt: skip
    assert code == 0 and len(lines) == 2
    assert lines[1]["time"] - lines[0]["time"] == 7_200
    assert all(line["forwards_recorded"] > 0 for line in lines)
    store = Store(db)
    assert store.get_meta("clock") == "simulated"
    assert store.row_counts()["forwards"] == sum(line["forwards_recorded"] for line in lines)
    assert store.row_counts()["opportunities"] > 0


def test_monitor_refuses_backends_with_their_own_loop(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LNLENS_DATA_DIR", str(tmp_path))
    code = main(["--db", str(tmp_path / "x.sqlite3"), "monitor", "--backend", "nosuch"])
    assert code == 2 and "no such backend" in capsys.readouterr().err


def test_channels_show_flows_per_direction_and_window(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LNLENS_DATA_DIR", str(tmp_path))
    settings = tmp_path / "lnlens.toml"
    settings.write_text('[sim]\nnetwork = "synthetic"\nnodes = 150\nseed = 5\npayments_per_hour = 4000\n')
    db = str(tmp_path / "m.sqlite3")
    assert main(["--config", str(settings), "--db", db, "monitor", "--duration", "2h", "--json"]) == 0
    capsys.readouterr()
    assert main(["--config", str(settings), "--db", db, "channels", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["channels"]
    assert rows and set(rows[0]["windows"]) == {"1h", "24h", "7d", "30d"}
    store = Store(tmp_path / "m.sqlite3")
    settled_out = sum(r["windows"]["7d"]["out"]["settled"] for r in rows)
    assert settled_out == store.db.execute("SELECT count(*) FROM forwards WHERE status = 'settled'").fetchone()[0]
    assert main(["--config", str(settings), "--db", db, "channels"]) == 0
    assert "Channels, last 7d" in capsys.readouterr().out


def test_monitor_runs_the_model_loop_so_candidates_gate_decisions_and_drift_show_without_a_node(
    tmp_path, capsys, monkeypatch
):
    pytest.importorskip("sklearn")  # online learning needs the train extra
    code, lines, db = monitor_json(tmp_path, capsys, monkeypatch, nodes=60, payments_per_hour=1000, duration="36h",
                                   interval="6h")  # fmt: skip
    models = [line["model"] for line in lines]
    assert code == 0 and len(models) == 6
    assert all(m["serving"] == "liquidity-default-2" and m["online_learning"] for m in models)
    assert "no sample has matured yet" in models[0]["waiting"]
    (decision,) = [m["decision"] for m in models if m["decision"] is not None]
    # the first candidate has learned from one sample time: the gate refuses it, the shipped model serves on
    assert not decision["promoted"] and decision["reason"].startswith("trained on 14 samples, fewer than 200")
    store = Store(db)
    (row,) = store.model_runs()
    assert not row["active"] and row["metrics"]["decision"]["training"] == {"samples": 14, "times": 1}
    assert store.row_counts()["model_drift"] > 0 and models[-1]["drift"]["error"] is not None
