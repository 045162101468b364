"""lens-policy, lens-history and lens-rollback through the real plugin, against the stand-in.

The stand-in answers the plugin's setchannel from the simulator, so an applied
change is visible on the simulated node and a rollback must restore it exactly.
"""

from __future__ import annotations

import pytest
from lnlens_testing.cln import PluginError
from lnlens_testing.cln.checks import validate

HISTORY_S = 2 * 3600


def policies(standin):
    return {str(c.channel_id): c.local_policy for c in standin.node.list_channels()}


def test_plan_apply_history_rollback(make_standin, tmp_path):
    fees = tmp_path / "fees.ini"
    fees.write_text("[default]\nstrategy = static\nfee_ppm = 777\n")
    standin = make_standin()
    standin.advance(HISTORY_S)
    standin.start_plugin({"lens-policy": str(fees)})
    standin.wait_backfill()
    before = policies(standin)

    plan = validate("lens-policy", standin.plugin.call("lens-policy"))
    assert plan["applied"] is False and plan["results"] == []
    rows = {r["short_channel_id"]: r for r in plan["plan"]["channels"]}
    assert set(rows) == set(before)
    moves = [r["changes"]["fee_ppm"] for r in rows.values() if "fee_ppm" in r["changes"]]
    # every move goes toward 777 ppm, as far as the rails' step limit lets it
    assert moves and all(min(m["old"], 777) <= m["new"] <= max(m["old"], 777) for m in moves)
    assert policies(standin) == before, "a plan changes nothing"

    applied = validate("lens-policy", standin.plugin.cli("lens-policy", "apply=true"))
    changed = [r for r in applied["results"] if r["state"] == "verified"]
    assert applied["applied"] is True and changed
    # what the plan says it applies (toward 777 ppm, within the rails' step limit) is what the node now has
    planned = {r["short_channel_id"]: r["changes"]["fee_ppm"]["new"] for r in applied["plan"]["channels"]
               if "fee_ppm" in r["changes"]}  # fmt: skip
    after = policies(standin)
    assert all(after[r["short_channel_id"]].fee_ppm == planned[r["short_channel_id"]] for r in changed)
    assert all(after[cid].fee_ppm != before[cid].fee_ppm for cid in planned)

    history = validate("lens-history", standin.plugin.call("lens-history"))
    assert {c["id"] for c in history["changes"]} >= {r["journal_id"] for r in changed}

    first = changed[0]
    undone = validate("lens-rollback", standin.plugin.call("lens-rollback", {"change_id": first["journal_id"]}))
    assert undone["short_channel_id"] == first["short_channel_id"] and undone["state"] == "verified"
    assert policies(standin)[first["short_channel_id"]] == before[first["short_channel_id"]]

    with pytest.raises(PluginError) as info:
        standin.plugin.call("lens-rollback", {"change_id": 1, "short_channel_id": first["short_channel_id"]})
    assert info.value.code == -32602
    with pytest.raises(PluginError) as info:
        standin.plugin.call("lens-rollback", {"change_id": 99_999})
    assert info.value.code == 1604


def test_lens_policy_without_a_policy_file_says_how_to_set_one(running):
    with pytest.raises(PluginError) as info:
        running.plugin.call("lens-policy")
    assert info.value.code == 1604 and "lens-policy=FILE" in info.value.message


def test_lens_recommend_gives_rules_and_the_models_suggestions(running):
    answer = validate("lens-recommend", running.plugin.cli("lens-recommend", "since=3h", "min_gap=0.05"))
    # The shipped model loads (onnxruntime is installed here): either it answers or it says why not.
    assert answer["model_unavailable"] is None and answer["model_version"]
    opportunities = running.plugin.call("lens-opportunities", {"since": "3h"})
    expected = [r for o in opportunities["opportunities"] for r in o["recommendations"]]
    assert [(r["type"], r["short_channel_id"]) for r in answer["rules"]] == [
        (r["type"], r["short_channel_id"]) for r in expected
    ]
    assert all(r["origin"] == "liquidity-model" for r in answer["model"])
    with pytest.raises(PluginError) as info:
        running.plugin.call("lens-recommend", {"min_gap": 2})
    assert info.value.code == -32602


def test_the_periodic_run_stores_the_models_predictions(running):
    from lnlens_core.storage import Store

    running.wait_for(lambda: running.plugin.call("lens-status")["last_analysis"] is not None)
    store = Store(running.lightning_dir / "lnlens.sqlite3")
    try:
        running.wait_for(lambda: bool(store.predictions()))
        rows = store.predictions()
    finally:
        store.close()
    assert {r["channel_id"] for r in rows} == {str(c.channel_id) for c in running.node.list_channels()}
