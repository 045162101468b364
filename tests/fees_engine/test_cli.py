"""``lnlens policy ...`` end to end against the simulator backend."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("lnlens_sim")

from lnlens_core.cli import main  # noqa: E402

POLICY = """[drained]
chan.max_ratio = 0.2
strategy = balance_based
fee_ppm = 200

[default]
strategy = static
fee_ppm = 120
base_fee_msat = 0
"""


@pytest.fixture
def setup(tmp_path):
    (tmp_path / "policy.ini").write_text(POLICY)
    config = tmp_path / "lnlens.toml"
    db, policy = tmp_path / "db.sqlite3", tmp_path / "policy.ini"
    config.write_text(
        f'db = "{db}"\n[sim]\nseed = 3\n[policy]\nfile = "{policy}"\nmax_fee_ppm = 1000\ncooldown = "1h"\n'
    )

    def run(capsys, *args):
        rc = main(["--config", str(config), "policy", *args])
        out = capsys.readouterr()
        return rc, out.out, out.err

    return tmp_path, run


def test_check(setup, capsys, tmp_path):
    _, run = setup
    rc, out, _ = run(capsys, "check")
    assert rc == 0 and "OK" in out
    bad = tmp_path / "bad.ini"
    bad.write_text("[x]\nstrategy = balance_based\nfee_ppm = 10\nbin = 3\n")
    rc, out, _ = run(capsys, "check", str(bad), "--json")
    data = json.loads(out)
    assert rc == 2 and not data["ok"] and any("bin" in p and "bins" in p for p in data["problems"])


def test_plan_explain_emit(setup, capsys):
    _, run = setup
    rc, out, _ = run(capsys, "plan", "--json")
    plan = json.loads(out)
    assert rc == 0 and plan["backend"] == "sim" and len(plan["channels"]) > 10
    drained = [c for c in plan["channels"] if c["policy"] == "drained"]
    assert drained and all(c["strategy"] == "balance_based" for c in drained)
    assert all(c["changes"].get("fee_ppm", {"new": 0})["new"] <= 1000 for c in plan["channels"])
    cid = drained[0]["short_channel_id"]
    rc, out, _ = run(capsys, "explain", cid)
    assert rc == 0 and "chan.max_ratio" in out and "policy: drained" in out and "result:" in out
    rc, out, _ = run(capsys, "plan", "--emit", "lightning-cli")
    assert rc == 0 and "lightning-cli setchannel id=" in out
    rc, out, _ = run(capsys, "plan")
    assert rc == 0 and "dry run" in out


def test_apply_needs_confirm_then_history_and_rollback(setup, capsys):
    _, run = setup
    rc, out, _ = run(capsys, "apply", "--json")
    assert rc == 0 and json.loads(out)["applied"] is False
    rc, out, _ = run(capsys, "history", "--json")
    assert json.loads(out)["changes"] == []
    rc, out, _ = run(capsys, "apply", "--confirm", "--json")
    data = json.loads(out)
    assert data["applied"] is True and data["results"]
    verified = [r for r in data["results"] if r["state"] == "verified"]
    assert len(verified) >= 10
    rc, out, _ = run(capsys, "history", "--json")
    history = json.loads(out)
    assert len(history["changes"]) == len(data["results"])
    assert {c["state"] for c in history["changes"]} <= {"verified", "failed"}
    first = verified[0]["journal_id"]
    # the simulator's state persists between commands, so the rollback really changes the node back
    rc, out, _ = run(capsys, "rollback", "--change", str(first), "--json")
    assert rc == 0 and json.loads(out)["state"] == "verified"
    rc, out, _ = run(capsys, "history", "--json")
    states = {c["id"]: c["state"] for c in json.loads(out)["changes"]}
    assert states[first] == "rolled_back"
    rc, out, _ = run(capsys, "history")
    assert rc == 0 and "Fee journal" in out
    rc, _, err = run(capsys, "rollback", "--change", "99999")
    assert rc == 1 and "no fee change 99999" in err


def test_sample_passes_the_strict_check(setup, capsys, tmp_path):
    _, run = setup
    rc, out, _ = run(capsys, "sample")
    assert rc == 0 and "[default]" in out
    assert "\nstrategy = zero_revenue\n" in out, "lnlens's measured default (docs/FEES.md, Decision quality)"
    path = tmp_path / "sample.ini"
    path.write_text(out)
    rc, out, _ = run(capsys, "check", str(path), "--json")
    data = json.loads(out)
    assert rc == 0 and data["ok"] and data["warnings"] == []


def test_flow_based_with_simulated_warmup(setup, capsys, tmp_path):
    _, run = setup
    flow = tmp_path / "flow.ini"
    flow.write_text("[default]\nstrategy = flow_based\n")
    rc, out, _ = run(capsys, "plan", "--policy", str(flow), "--sim-warmup", "2h", "--json")
    plan = json.loads(out)
    assert rc == 0 and {c["strategy"] for c in plan["channels"]} == {"flow_based"}
    assert not [c for c in plan["channels"] if c["error"]], "the warm-up stored forwards, so signals exist"
    one = plan["channels"][0]["short_channel_id"]
    rc, out, _ = run(capsys, "plan", "--policy", str(flow), "--channel", one, "--json")
    assert rc == 0 and [c["short_channel_id"] for c in json.loads(out)["channels"]] == [one]
