"""``--backend sim`` keeps one node across commands: its state is saved next to the database."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict

import pytest

pytest.importorskip("lnlens_sim")

from lnlens_sim.scenario import build_backend  # noqa: E402

from lnlens_core.cli import main  # noqa: E402
from lnlens_core.storage import Store  # noqa: E402

SIM = {"network": "synthetic", "nodes": 80, "seed": 3, "payments_per_hour": 3000}
# Every channel moves 10 ppm toward 400 per apply, so each apply leaves a visible, known fee.
POLICY = "[default]\nstrategy = static\nfee_ppm = 400\n"
RAILS = 'cooldown = "0"\nmax_step_ppm = 10\nmax_step_share = 0.0\ncharge_lnd_rails = true\n'


def _config(tmp_path, sim: dict) -> str:
    policy = tmp_path / "policy.ini"
    policy.write_text(POLICY)
    sim_lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in sim.items())
    path = tmp_path / "lnlens.toml"
    path.write_text(f'db = "{tmp_path / "db.sqlite3"}"\n[sim]\n{sim_lines}[policy]\nfile = "{policy}"\n{RAILS}')
    return str(path)


def lnlens(config: str, *args: str) -> tuple[int, str, str]:
    """One command in its own process, as an operator runs it."""
    code = "import sys; from lnlens_core.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", code, "--config", config, *args], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def test_apply_then_plan_then_rollback_in_separate_processes(tmp_path):
    config = _config(tmp_path, SIM)
    original = {str(c.channel_id): c.local_policy for c in build_backend(SIM).list_channels()}

    rc, out, err = lnlens(config, "policy", "apply", "--confirm", "--json")
    assert rc == 0, err
    applied = json.loads(out)
    new_fee = {c["short_channel_id"]: c["changes"]["fee_ppm"]["new"] for c in applied["plan"]["channels"]
               if "fee_ppm" in c["changes"]}  # fmt: skip
    verified = {r["short_channel_id"]: r["journal_id"] for r in applied["results"] if r["state"] == "verified"}
    assert len(verified) >= 5 and set(verified) <= set(new_fee)

    # A second command plans from the applied fees: the next 10 ppm step starts where the first ended.
    rc, out, err = lnlens(config, "policy", "plan", "--json")
    assert rc == 0, err
    plan = {c["short_channel_id"]: c for c in json.loads(out)["channels"]}
    for cid in verified:
        assert plan[cid]["changes"]["fee_ppm"]["old"] == new_fee[cid] != original[cid].fee_ppm

    cid, change = next(iter(verified.items()))
    rc, out, err = lnlens(config, "policy", "rollback", "--change", str(change), "--json")
    assert rc == 0 and json.loads(out)["state"] == "verified", err

    state = json.loads((tmp_path / "db.sqlite3.sim-state").read_text())
    in_force = {k: v["in_force"] for k, v in state["policies"].items()}
    assert in_force[cid] == asdict(original[cid]), "the exact previous policy, every field"
    others = [k for k in verified if k != cid]
    assert all(in_force[k]["fee_ppm"] == new_fee[k] for k in others), "the other changes stay applied"

    rc, out, err = lnlens(config, "policy", "history", "--json")
    states = {c["id"]: c["state"] for c in json.loads(out)["changes"]}
    assert states[change] == "rolled_back"
    rc, out, err = lnlens(config, "channels", "--json")
    fees = {c["short_channel_id"]: c["fee_ppm"] for c in json.loads(out)["channels"]}
    assert fees[cid] == original[cid].fee_ppm and all(fees[k] == new_fee[k] for k in others)


def test_simulated_time_continues_exactly_across_commands(tmp_path, capsys):
    split, whole = tmp_path / "split", tmp_path / "whole"
    split.mkdir(), whole.mkdir()
    for folder, steps in ((split, ["1h", "1h"]), (whole, ["2h"])):
        config = _config(folder, SIM)
        for step in steps:
            assert main(["--config", config, "policy", "plan", "--sim-warmup", step, "--json"]) == 0
    capsys.readouterr()
    counts = []
    for folder in (split, whole):
        store = Store(folder / "db.sqlite3")
        counts.append(store.db.execute("SELECT count(*), sum(fee_msat), max(received_time) FROM forwards").fetchone())
        store.close()
    assert counts[0] == counts[1] and counts[0][0] > 100, "no forward lost or counted twice; same traffic"
    a, b = (json.loads((f / "db.sqlite3.sim-state").read_text()) for f in (split, whole))
    assert a["balances"] == b["balances"] and a["time"] == b["time"] and a["traffic"] == b["traffic"]


def test_changed_settings_say_so_and_start_over(tmp_path, capsys):
    config = _config(tmp_path, SIM)
    assert main(["--config", config, "policy", "apply", "--confirm", "--json"]) == 0
    capsys.readouterr()
    config = _config(tmp_path, {**SIM, "seed": 4})
    assert main(["--config", config, "policy", "plan", "--json"]) == 0
    out, err = capsys.readouterr()
    assert "saved with other [sim] settings (seed 3 → 4): not restored" in err
    seeded = {str(c.channel_id): c.local_policy.fee_ppm for c in build_backend({**SIM, "seed": 4}).list_channels()}
    olds = {c["short_channel_id"]: c["changes"]["fee_ppm"]["old"] for c in json.loads(out)["channels"]
            if "fee_ppm" in c["changes"]}  # fmt: skip
    assert olds and all(seeded[k] == v for k, v in olds.items()), "a new node at its seeded fees"
    assert json.loads((tmp_path / "db.sqlite3.sim-state").read_text())["settings"]["seed"] == 4


def test_unreadable_state_is_a_warning_and_damaged_state_an_error(tmp_path, capsys):
    config = _config(tmp_path, SIM)
    state = tmp_path / "db.sqlite3.sim-state"
    state.write_text("not json")
    assert main(["--config", config, "policy", "plan", "--json"]) == 0
    assert "db.sqlite3.sim-state: not restored" in capsys.readouterr().err
    data = json.loads(state.read_text())
    data["balances"] = "AAAA"
    state.write_text(json.dumps(data))
    assert main(["--config", config, "policy", "plan", "--json"]) == 1
    err = capsys.readouterr().err
    assert "damaged simulator state" in err and "delete the file" in err and "Traceback" not in err
