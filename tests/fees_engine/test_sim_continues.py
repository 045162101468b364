"""Policy commands on a ``sim run`` database continue its simulated time instead of restarting it, and
SIGTERM of ``serve --simulate`` saves the simulator's state as Ctrl-C does (issue 14, item 3)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lnlens_sim")

from lnlens_core.cli import main  # noqa: E402
from lnlens_core.storage import Store  # noqa: E402


@pytest.fixture
def sim_db(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LNLENS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("LNLENS_CONFIG", raising=False)
    db = tmp_path / "db.sqlite3"
    assert main(["sim", "run", "--network", "lightninglens", "--days", "1", "--seed", "1", "--db", str(db),
                 "--json"]) == 0  # fmt: skip
    capsys.readouterr()
    (tmp_path / "policy.ini").write_text("[all]\nstrategy = static\nfee_ppm = 3000\n")
    config = tmp_path / "lnlens.toml"
    # Other [sim] settings than the run's (seed 2): no saved state fits, the simulator is rebuilt from them.
    config.write_text(f'db = "{db}"\n[sim]\nnetwork = "lightninglens"\nseed = 2\n'
                      f'[policy]\nfile = "{tmp_path / "policy.ini"}"\n')  # fmt: skip
    return db, config


def _rows(db, sql):
    store = Store(db, readonly=True)
    try:
        return store.db.execute(sql).fetchall()
    finally:
        store.close()


def test_policy_apply_on_a_sim_run_database_continues_after_its_data(sim_db, capsys):
    db, config = sim_db
    (data_end,) = _rows(db, "SELECT max(max(received_time), coalesce(max(resolved_time), 0)) FROM forwards")[0]
    snapshots = _rows(db, "SELECT * FROM channel_snapshots ORDER BY time, channel_id")
    stored = _rows(db, "SELECT key FROM forwards")
    assert main(["--config", str(config), "policy", "apply", "--confirm", "--sim-warmup", "2h", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert results
    journal = _rows(db, "SELECT planned_time, applied_time, channel_id, new_policy FROM fee_updates")
    assert journal and all(planned > data_end and applied > data_end for planned, applied, _, _ in journal)
    # Every stored snapshot is as it was; the new one comes after them.
    after = _rows(db, "SELECT * FROM channel_snapshots ORDER BY time, channel_id")
    assert after[: len(snapshots)] == snapshots and min(r[0] for r in after[len(snapshots) :]) > data_end
    # The warm-up's forwards come after the stored ones, and none reused a stored forward's key (none was lost).
    new = _rows(db, f"SELECT key, received_time FROM forwards WHERE received_time > {data_end!r}")
    assert new and len(_rows(db, "SELECT key FROM forwards")) == len(stored) + len(new)
    # `channels` shows the fees just set.
    assert main(["--db", str(db), "channels", "--json"]) == 0
    shown = {c["short_channel_id"]: c["fee_ppm"] for c in json.loads(capsys.readouterr().out)["channels"]}
    assert {cid: json.loads(policy)["fee_ppm"] for _, _, cid, policy in journal}.items() <= shown.items()


def test_sigterm_of_serve_simulate_saves_the_simulator_like_ctrl_c(sim_db, tmp_path):
    pytest.importorskip("uvicorn")
    db, config = sim_db
    state = db.with_name(db.name + ".sim-state")
    assert not state.exists()
    env = {**os.environ, "LNLENS_DATA_DIR": str(tmp_path / "data")}
    env.pop("LNLENS_CONFIG", None)
    cmd = [str(Path(sys.executable).with_name("lnlens")), "--config", str(config), "serve", "--simulate", "--port", "0",
           "--speed", "36000"]  # fmt: skip
    ends = []
    for _ in range(2):
        proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
        try:
            for line in proc.stderr:
                if "stops it" in line:
                    break
            subprocess.run(["sleep", "1"], check=True)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        finally:
            proc.kill()
        assert state.exists()
        ends.append(json.loads(state.read_text())["time"])
    # The second run continued the first: its forwards all come after the first run's, none interleave.
    (newest,) = _rows(db, "SELECT max(received_time) FROM forwards")[0]
    assert ends[1] > ends[0] and newest <= ends[1]
