"""`lnlens model|recommend|report` end to end over a small simulated node's database."""

from __future__ import annotations

import json
import shutil

import onnx
import pytest

from lnlens_core.cli import main
from lnlens_core.model.registry import default_model_path

SHIPPED = default_model_path  # the real one; the fixture below hides it from most tests


@pytest.fixture
def db(tmp_path, sim_db, monkeypatch):
    monkeypatch.setenv("LNLENS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("LNLENS_CONFIG", raising=False)
    monkeypatch.setattr("lnlens_core.model.registry.default_model_path", lambda: None)
    path = tmp_path / "node.sqlite3"
    shutil.copy(sim_db, path)
    return str(path)


# the fixture's node has 20 simulated hours: a gate sized for it
SMALL = ["--min-train-samples", "50", "--min-train-times", "4", "--min-holdout-times", "3"]


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_train_list_use_evaluate(db, capsys):
    first = _json(capsys, ["--db", db, "model", "train", "--db", db, *SMALL, "--json"])
    assert first["promoted"] and first["parity_max_abs_diff"] < 1e-5
    assert set(first["metrics"]["baselines"]) == {"half", "current", "linear"}
    second = _json(capsys, ["--db", db, "model", "train", "--kind", "sgd", "--db", db, *SMALL, "--json"])
    listed = _json(capsys, ["--db", db, "model", "list", "--json"])["models"]
    assert [m["id"] for m in listed] == [1, 2]
    assert sum(m["active"] for m in listed) == 1
    assert listed[1]["active"] == second["promoted"]
    force = [] if second["promoted"] else ["--force"]  # the gate may refuse it: `use` then needs --force
    assert _json(capsys, ["--db", db, "model", "use", "2", *force, "--json"])["active"] == 2
    assert _json(capsys, ["--db", db, "model", "use", "--previous", "--json"])["active"] == 1
    evaluated = _json(capsys, ["--db", db, "model", "evaluate", "--json"])
    assert evaluated["model"] == "liquidity-1" and evaluated["metrics"]["model"]["n"] > 0


def test_recommend_and_report(db, capsys, tmp_path):
    _json(capsys, ["--db", db, "model", "train", "--db", db, *SMALL, "--json"])
    rec = _json(capsys, ["--db", db, "recommend", "--json", "--min-gap", "0.05"])
    assert rec["model_unavailable"] is None
    for r in rec["model"]:
        assert r["origin"] == "liquidity-model" and r["source_channel"] and r["target_channel"]
        assert isinstance(r["amount_msat"], int) and r["amount_msat"] > 0
    out = tmp_path / "report"
    result = _json(capsys, ["--db", db, "report", "--out", str(out), "--json"])
    text = (out / "report.md").read_text()
    for name in ("balance_distribution", "optimal_vs_current", "rebalance_recommendations", "feature_importance"):
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"({png.name})" in text
    assert "current ratio" in text and "50/50" in text and result["report"].endswith("report.md")
    h = result["health"]
    # 40 x success + 30 x balanced + 30 x (1 - missed share), from measured parts only
    expected = 40 * h["success_rate"] + 30 * h["balanced_share"] + 30 * (1 - h["missed_fee_share"])
    assert h["score"] == round(expected, 1) and f"**{h['score']}** / 100" in text
    from lnlens_core.storage import Store

    store = Store(db)
    try:
        saved = store.predictions()
        _, channels = store.latest_channels()
    finally:
        store.close()
    assert {r["channel_id"] for r in saved} == {str(c.channel_id) for c in channels}
    assert {r["model"] for r in saved} == {"liquidity-1"}


def test_rules_keep_running_when_the_model_does_not_match(db, capsys, tmp_path):
    _json(capsys, ["--db", db, "model", "train", "--db", db, *SMALL, "--json"])
    listed = _json(capsys, ["--db", db, "model", "list", "--json"])["models"]
    path = listed[0]["path"]
    model = onnx.load(path)
    for entry in model.metadata_props:
        if entry.key == "feature_version":
            entry.value = "0"
    onnx.save(model, path)
    rec = _json(capsys, ["--db", db, "recommend", "--json"])
    assert "feature version" in rec["model_unavailable"] and rec["model"] == []
    assert isinstance(rec["rules"], list)


def test_model_info_measures_drift_now_and_list_shows_what_daemons_stored(db, capsys):
    import numpy as np

    from lnlens_core.model.inference import OnnxModel
    from lnlens_core.model.learning import dataset_from_store
    from lnlens_core.model.learning.incremental import SETTLE_S
    from lnlens_core.model.target import TARGET_HORIZON_S
    from lnlens_core.storage import Store

    trained = _json(capsys, ["--db", db, "model", "train", "--db", db, *SMALL, "--json"])
    info = _json(capsys, ["--db", db, "model", "info", "--json"])  # the active model: the one just trained
    assert info["id"] == trained["id"] and info["active"] is True
    assert info["decision"] == {"promoted": True, "reason": "no model in use", "current_mae": None,
                                "holdout_samples": trained["metrics"]["model"]["n"], "holdout_times": 4,
                                "paired": None, "training": {"samples": 208, "times": 11}}  # fmt: skip
    assert info["model"]["feature_stats"] and info["model"]["training_rows"] > 0
    # The drift window is the samples matured in the store's last day: the whole-store build's, recomputed.
    store = Store(db)
    try:
        data = dataset_from_store(store)
        row = store.model_runs()[0]
        last = store.latest_data_time()
    finally:
        store.close()
    # Those whose forwards have had SETTLE_S to resolve after their 6 h (a sample is built once).
    data = data.select(data.times + TARGET_HORIZON_S + SETTLE_S <= last)
    window = data.select(data.times > data.times.max() - 86_400)
    model = OnnxModel.load(row["path"])
    error = info["drift"]["error"]
    assert info["drift"]["window"]["samples"] == len(window) >= 30
    assert error["live_mae"] == pytest.approx(float(np.abs(model.predict(window.x) - window.y).mean()))
    assert error["validation_mae"] == pytest.approx(trained["metrics"]["model"]["mae"])
    assert info["drift"]["inputs"]["status"] in ("stable", "moderate", "shifted")
    assert info["stored_drift"] is None and "no drift measured" in info["stored_drift_note"]
    listed = _json(capsys, ["--db", db, "model", "list", "--json"])["models"]
    assert listed[0]["drift"] is None and "no drift measured" in listed[0]["drift_note"]
    store = Store(db)
    try:
        store.save_drift({**info["drift"], "model": f"{row['name']}-{row['version']}"}, time=1.0)
    finally:
        store.close()
    listed = _json(capsys, ["--db", db, "model", "list", "--json"])["models"]
    assert listed[0]["drift"]["error"]["live_mae"] == pytest.approx(error["live_mae"])
    assert listed[0]["drift_note"] is None
    assert main(["--db", db, "model", "list"]) == 0
    table = capsys.readouterr().out
    assert "drift" in table and "PSI" in table  # rich wraps the cells in a narrow terminal
    assert main(["--db", db, "model", "info"]) == 0
    text = capsys.readouterr().out
    assert f"inputs: {info['drift']['inputs']['status']}" in text and "live error:" in text
    assert "Stored by a daemon at" in text


def test_model_info_of_an_unknown_id_is_one_clear_line(db, capsys):
    assert main(["--db", db, "model", "info", "42"]) != 0
    err = capsys.readouterr().err
    assert "no model with id 42" in err and "Traceback" not in err


def test_use_of_a_refused_candidate_needs_force_the_default_is_a_fallback_and_a_choice_is_pinned(
    db, capsys, monkeypatch
):
    first = _json(capsys, ["--db", db, "model", "train", "--db", db, *SMALL, "--json"])
    again = _json(capsys, ["--db", db, "model", "train", "--db", db, *SMALL, "--json"])  # the same model: no better
    assert first["promoted"] and not again["promoted"] and "standard error" in again["reason"]
    assert main(["--db", db, "model", "use", str(again["id"])]) != 0
    err = capsys.readouterr().err
    assert f"model {again['id']} was refused by the promotion gate (held-out MAE" in err and "--force" in err
    used = _json(capsys, ["--db", db, "model", "use", str(again["id"]), "--force", "--json"])
    assert used["active"] == again["id"] and used["pinned"]["model"] == again["id"]
    monkeypatch.setattr("lnlens_core.model.registry.default_model_path", SHIPPED)
    monkeypatch.setattr("lnlens_core.cli.model_cmd.default_model_path", SHIPPED)
    default = _json(capsys, ["--db", db, "model", "use", "default", "--json"])
    assert default["pinned"]["model"] == "default"
    listed = _json(capsys, ["--db", db, "model", "list", "--json"])
    assert not any(m["active"] for m in listed["models"]) and listed["pinned"]["model"] == "default"
    third = _json(capsys, ["--db", db, "model", "train", "--db", db, *SMALL, "--json"])
    assert not third["promoted"] and "pinned model default" in third["reason"]
    assert _json(capsys, ["--db", db, "model", "unpin", "--json"])["unpinned"]["model"] == "default"
    assert _json(capsys, ["--db", db, "model", "list", "--json"])["pinned"] is None


def test_train_simulate_holds_the_gate_minimums(db, capsys):
    # a real (small) simulation: 30 nodes for 14 h gives tens of samples, fewer than the gate's 200
    small = ["--simulate", "--nodes", "30", "--seeds", "1", "--val-seeds", "2", "--centres", "1"]
    out = _json(capsys, ["--db", db, "model", "train", *small, "--hours", "14", "--json"])
    assert not out["promoted"] and out["reason"].startswith("trained on ") and "fewer than 200" in out["reason"]
    listed = _json(capsys, ["--db", db, "model", "list", "--json"])["models"]
    assert [m["active"] for m in listed] == [False]
    # an hour gives no sample at all: one clear line, no traceback
    assert main(["--db", db, "model", "train", *small, "--hours", "1"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "too little to train on" in err and "at least 200" in err
