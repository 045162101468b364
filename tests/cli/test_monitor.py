"""lnlens monitor: the live loop over the simulator, one JSON line per analysis."""

from __future__ import annotations

import json

import pytest

from lnlens_core.cli import main
from lnlens_core.storage import Store

pytest.importorskip("lnlens_sim")


def test_monitor_runs_the_live_loop_on_the_simulator(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LNLENS_DATA_DIR", str(tmp_path))
    settings = tmp_path / "lnlens.toml"
    settings.write_text('[sim]\nnetwork = "synthetic"\nnodes = 150\nseed = 5\npayments_per_hour = 4000\n')
    db = tmp_path / "m.sqlite3"
    code = main(["--config", str(settings), "--db", str(db), "monitor", "--duration", "4h", "--interval", "2h",
                 "--json"])  # fmt: skip
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
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
