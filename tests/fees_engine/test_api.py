"""The adapters' API: plan_or_apply, history, rollback_change and the daemon's PolicyRunner."""

from __future__ import annotations

from dataclasses import replace

from lnlens_core.domain import ChannelId
from lnlens_core.fees.api import PolicyRunner, history, plan_or_apply, rollback_change

STATIC = "[default]\nstrategy = static\nfee_ppm = 120\n"
A = ChannelId.parse("800000x1x0")


def configured(lens, tmp_path, text=STATIC, rails=None):
    path = tmp_path / "policy.ini"
    path.write_text(text)
    rails = rails or {"cooldown": "1h", "charge_lnd_rails": True}
    lens.config = replace(lens.config, policy_path=path, backends={"policy": rails})
    return lens


def test_plan_apply_history_rollback(lens, node, tmp_path):
    configured(lens, tmp_path)
    planned = plan_or_apply(lens, node, apply=False)
    assert planned["applied"] is False and planned["results"] == [] and lens.store.journal() == []
    assert node.channels[A].local_policy.fee_ppm == 100
    done = plan_or_apply(lens, node, apply=True)
    assert {r["state"] for r in done["results"]} == {"verified"} and node.channels[A].local_policy.fee_ppm == 120
    again = plan_or_apply(lens, node, apply=True)
    assert again["results"] == [] and {c["status"] for c in again["plan"]["channels"]} == {"keep", "blocked"}
    data = history(lens, channel=A)
    assert [c["state"] for c in data["changes"]] == ["verified"] and data["changes"][0]["outcome"] is not None
    assert rollback_change(lens, node, channel=A)["state"] == "verified"
    assert node.channels[A].local_policy.fee_ppm == 100


def test_runner_is_dry_by_default_and_skips_overlapping_ticks(lens, node, tmp_path, monkeypatch):
    configured(lens, tmp_path)
    runner = PolicyRunner(lens, node)
    assert runner.tick()["applied"] is False and node.channels[A].local_policy.fee_ppm == 100
    live = PolicyRunner(lens, node, dry_run=False)
    real = node.list_channels
    inner = []

    def reentrant():
        inner.append(live.tick())  # a tick starting while this one runs (the Store is one thread's)
        return real()

    monkeypatch.setattr(node, "list_channels", reentrant)
    result = live.tick()
    assert inner and inner[0] is None, "an overlapping run is skipped"
    assert result["applied"] is True and node.channels[A].local_policy.fee_ppm == 120
