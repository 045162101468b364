"""The fee policy engine on lnd: `lnlens policy ... --backend lnd` and the policy run of `lnlens lnd run`."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from lnlens_lnd.backend import build_backend
from lnlens_testing.lnd import READONLY, minimal_ops

from lnlens_core.cli import main
from lnlens_core.domain import FeeUpdate
from lnlens_core.errors import BackendRejected
from lnlens_core.fees.journal import policy_from_json
from lnlens_core.storage import Store

STATIC = "[default]\nstrategy = static\nfee_ppm = 400\nbase_fee_msat = 0\n"


def _table(fake, mac) -> dict:
    return {"host": fake.host, "network": "regtest", "tlscert": str(fake.cert_path), "macaroon": str(mac)}


def _config(tmp_path, fake, mac, *, dry_run: bool, interval: str = "10m") -> str:
    policy = tmp_path / "policy.ini"
    policy.write_text(STATIC)
    table = "".join(f'{k} = "{v}"\n' for k, v in _table(fake, mac).items())
    path = tmp_path / "lnlens.toml"
    path.write_text(f'dry_run = {str(dry_run).lower()}\ninterval = "{interval}"\n[policy]\nfile = "{policy}"\n'
                    f"[lnd]\n{table}")  # fmt: skip
    return str(path)


def test_the_backend_entry_point_picks_the_mode_from_the_macaroon(fake):
    apply = build_backend(_table(fake, fake.write_macaroon("a.macaroon", minimal_ops("apply"))))
    read = build_backend(_table(fake, fake.write_macaroon("r.macaroon", READONLY)))
    try:
        assert (apply.settings.mode, read.settings.mode) == ("apply", "read")
        assert read.permissions.missing == () and read._rpc.allows("UpdateChannelPolicy") is False
        assert not hasattr(apply, "clock"), "the policy commands take a backend with a clock for a simulator"
    finally:
        apply.close()
        read.close()


def test_policy_plan_and_apply_through_lnd(fake, tmp_path, capsys):
    mac = fake.write_macaroon("lnlens.macaroon", minimal_ops("apply"))
    config = _config(tmp_path, fake, mac, dry_run=True)
    db = str(tmp_path / "db.sqlite3")
    assert main(["--config", config, "--db", db, "policy", "plan", "--backend", "lnd", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["backend"] == "lnd"
    assert main(["--config", config, "--db", db, "policy", "apply", "--backend", "lnd", "--confirm", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    verified = [r for r in out["results"] if r["state"] == "verified"]
    assert verified, out
    _check_journal_against_node(fake, db, verified)


def _check_journal_against_node(fake, db: str, verified: list[dict]) -> None:
    """What the journal says was applied is what the simulated node now routes with (and not what it had)."""
    policies = {str(c.channel_id): c.local_policy for c in fake.node.list_channels()}
    store = Store(db)
    try:
        rows = {row["id"]: row for row in store.journal()}
    finally:
        store.close()
    for r in verified:
        row = rows[r["journal_id"]]
        assert policy_from_json(row["new_policy"]) == policies[r["short_channel_id"]]
        assert policy_from_json(row["old_policy"]) != policies[r["short_channel_id"]]


def test_policy_apply_with_a_readonly_macaroon_is_refused_client_side(fake, tmp_path, capsys):
    mac = fake.write_macaroon("readonly.macaroon", READONLY)
    config = _config(tmp_path, fake, mac, dry_run=True)
    db = str(tmp_path / "db.sqlite3")
    before = list(fake.calls)
    code = main(["--config", config, "--db", db, "policy", "apply", "--backend", "lnd", "--confirm", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["results"] and all(r["state"] == "failed" for r in out["results"])
    assert all("does not send UpdateChannelPolicy" in r["detail"] for r in out["results"])
    assert "/lnrpc.Lightning/UpdateChannelPolicy" not in fake.calls[len(before) :]


@pytest.mark.parametrize("dry_run", [False, True])
def test_lnd_run_runs_the_policy_every_interval(fake, tmp_path, dry_run, Daemon):
    mac = fake.write_macaroon("lnlens.macaroon", minimal_ops("apply"))
    before = {c.channel_id: c.local_policy for c in fake.node.list_channels()}
    daemon = Daemon(_config(tmp_path, fake, mac, dry_run=dry_run), tmp_path / "db.sqlite3", "--json")
    daemon.wait_for("fee policy 1:")
    assert daemon.stop() == 0, daemon.text
    lines = [json.loads(line) for line in daemon.proc.stdout.read().splitlines()]
    run = next(line for line in lines if "fee_plan" in line)
    assert run["applied"] is (not dry_run)
    after = {c.channel_id: c.local_policy for c in fake.node.list_channels()}
    if dry_run:
        assert after == before and not run["results"]
        return
    assert run["results"] and all(r["state"] == "verified" for r in run["results"])
    assert after != before
    store = Store(tmp_path / "db.sqlite3")
    try:
        assert {row["state"] for row in store.journal()} == {"verified"}
    finally:
        store.close()


def test_lnd_run_stores_the_models_predictions_every_interval(fake, tmp_path, Daemon):
    mac = fake.write_macaroon("lnlens.macaroon", minimal_ops("apply"))
    daemon = Daemon(_config(tmp_path, fake, mac, dry_run=True), tmp_path / "db.sqlite3", "--json")
    daemon.wait_for("fee policy 1:")
    assert daemon.stop() == 0, daemon.text
    store = Store(tmp_path / "db.sqlite3")
    try:
        rows = store.predictions()
    finally:
        store.close()
    ours = {str(c.channel_id) for c in fake.node.list_channels()}
    assert rows and {r["channel_id"] for r in rows} == ours
    assert all(r["model"].startswith("liquidity-default") for r in rows)


def test_lnd_run_logs_a_plan_note_once(fake, tmp_path, Daemon):
    # The minimal macaroon has no uri:/lnrpc.Lightning/GetNodeInfo, which a node.* criterion needs.
    mac = fake.write_macaroon("lnlens.macaroon", minimal_ops("apply"))
    config = _config(tmp_path, fake, mac, dry_run=True, interval="1s")
    (tmp_path / "policy.ini").write_text("[big]\nnode.min_channels = 2\nstrategy = static\nfee_ppm = 11\n\n" + STATIC)
    daemon = Daemon(config, tmp_path / "db.sqlite3")
    daemon.wait_for("fee policy 2:")
    assert daemon.stop() == 0, daemon.text
    said = [line for line in daemon.text.splitlines() if "fee policy: " in line and "GetNodeInfo" in line]
    assert len(said) == 1 and said[0].startswith("WARNING") and "node.min_channels" in said[0], daemon.text


def test_a_fee_change_lnd_refuses_is_a_warning_in_status_and_fails_lnd_run(fake, tmp_path, Daemon, capsys):
    mac = fake.write_macaroon("lnlens.macaroon", minimal_ops("apply"))
    config = _config(tmp_path, fake, mac, dry_run=False)
    # lnd refuses a CLTV delta under its minimum (the fake answers as lnd does); nothing client-side stops it.
    (tmp_path / "policy.ini").write_text("[default]\nstrategy = static\nfee_ppm = 400\ntime_lock_delta = 10\n")
    daemon = Daemon(config, tmp_path / "db.sqlite3")
    daemon.wait_for("fee policy 1:")
    assert daemon.stop() == 1, daemon.text
    refused = [line for line in daemon.text.splitlines() if "refused" in line and line.startswith("WARNING")]
    cids = {str(c.channel_id) for c in fake.node.list_channels()}
    assert refused and all(any(cid in line for cid in cids) for line in refused), daemon.text
    assert all("time lock delta of 10 is too small" in line for line in refused)
    assert "lnlens: error: lnd refused" in daemon.text
    assert main(["--config", config, "--db", str(tmp_path / "db.sqlite3"), "lnd", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["refused_fee_changes_total"] == len(refused)
    assert all(r["short_channel_id"] in cids and "too small" in r["reason"] for r in status["refused_fee_changes"])
    assert main(["--config", config, "--db", str(tmp_path / "db.sqlite3"), "lnd", "status"]) == 0
    assert "refused" in capsys.readouterr().out


STATUS = "[off]\nchan.id = {off}\nstrategy = disable\n\n[default]\nstrategy = ignore_fees\n"


def _status_config(tmp_path, fake, mac) -> tuple[str, str, str, str]:
    """A policy that disables one channel and re-enables (ignore_fees) another one the node has disabled."""
    off, on = (str(c.channel_id) for c in fake.node.list_channels()[:2])
    fake.node.set_channel_policy(fake.node.list_channels()[1].channel_id, FeeUpdate(disabled=True))
    config = _config(tmp_path, fake, mac, dry_run=False)
    (tmp_path / "policy.ini").write_text(STATUS.format(off=off))
    return config, str(tmp_path / "db.sqlite3"), off, on


def test_disable_and_re_enable_through_update_chan_status(fake, tmp_path, capsys):
    """charge-lnd's channel status on lnd: routerrpc UpdateChanStatus, with the optional permission baked in."""
    mac = fake.write_macaroon("status.macaroon", minimal_ops("apply", optional=["UpdateChanStatus"]))
    config, db, off, on = _status_config(tmp_path, fake, mac)
    before = len(fake.calls)
    assert main(["--config", config, "--db", db, "policy", "apply", "--backend", "lnd", "--confirm", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {r["short_channel_id"]: r["state"] for r in out["results"]} == {off: "verified", on: "verified"}
    status = {str(c.channel_id): c.local_policy.disabled for c in fake.node.list_channels()}
    assert (status[off], status[on]) == (True, False)
    sent = fake.calls[before:]
    assert sent.count("/routerrpc.Router/UpdateChanStatus") == 2
    assert "/lnrpc.Lightning/UpdateChannelPolicy" not in sent  # a status change alone sends no policy update


def test_without_the_status_permission_the_plan_names_the_uri(fake, tmp_path, capsys):
    mac = fake.write_macaroon("lnlens.macaroon", minimal_ops("apply"))
    config, db, off, on = _status_config(tmp_path, fake, mac)
    assert main(["--config", config, "--db", db, "policy", "plan", "--backend", "lnd", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert any("add uri:/routerrpc.Router/UpdateChanStatus to the bake line" in n for n in plan["notes"])
    rows = {c["short_channel_id"]: c for c in plan["channels"]}
    assert rows[off]["changes"] == {}
    assert "disabled -> True not applied: this backend cannot set it" in rows[off]["notes"]
    assert rows[on]["changes"] == {}


def test_a_channel_missing_from_lnds_graph_has_no_policy_and_is_not_planned(node, fake, connect, tmp_path, capsys):
    """lnd answers GetChanInfo "edge not found" and leaves the channel out of FeeReport: the backend must not read
    that as an all-zero policy, and the plan must keep the channel (charge-lnd skips it too), saying why."""
    from lnlens_core.fees.engine import UNKNOWN_POLICY

    off = node.list_channels()[-1].channel_id
    node.seed_channel(off, in_graph=False)
    backend = connect("apply")
    channels = {c.channel_id: c for c in backend.list_channels()}
    assert channels[off].local_policy is None
    assert all(c.local_policy is not None for cid, c in channels.items() if cid != off)
    with pytest.raises(BackendRejected, match="not in lnd's graph"):
        backend.set_channel_policy(off, FeeUpdate(fee_ppm=400))
    mac = fake.write_macaroon("lnlens.macaroon", minimal_ops("apply"))
    config = _config(tmp_path, fake, mac, dry_run=True)
    assert main(["--config", config, "--db", str(tmp_path / "db"), "policy", "plan", "--backend", "lnd",
                 "--json"]) == 0  # fmt: skip
    rows = {r["short_channel_id"]: r for r in json.loads(capsys.readouterr().out)["channels"]}
    kept = rows[str(off)]
    assert (kept["status"], kept["changes"], kept["reason"]) == ("keep", {}, UNKNOWN_POLICY)
    assert any(r["changes"] for cid, r in rows.items() if cid != str(off)), "the others are planned as usual"


@pytest.mark.parametrize("dry_run", [True, False])
def test_one_interval_of_lnd_run_reads_channels_once_and_each_edge_at_most_once(fake, tmp_path, Daemon, dry_run):
    """Issue 16: the analysis, the fee policy (reading peers' policies; applying and verifying its changes when not
    a dry run) and the liquidity model of one interval share one ListChannels, one FeeReport and one GetChanInfo per
    channel."""
    mac = fake.write_macaroon("lnlens.macaroon", minimal_ops("apply"))
    config = _config(tmp_path, fake, mac, dry_run=dry_run)
    (tmp_path / "policy.ini").write_text("[cheap_peer]\nchan.max_fee_ppm = 100\nstrategy = static\nfee_ppm = 11\n\n"
                                         + STATIC)  # fmt: skip
    daemon = Daemon(config, tmp_path / "db.sqlite3", "--json")
    daemon.wait_for("model 1:")
    assert daemon.stop() == 0, daemon.text
    assert "fee policy 1:" in daemon.text and "fee policy 2:" not in daemon.text, daemon.text
    calls = Counter(path.rsplit("/", 1)[1] for path in fake.calls)
    channels = len(fake.node.list_channels())
    assert channels > 1
    assert (calls["ListChannels"], calls["FeeReport"], calls["GetChanInfo"]) == (1, 1, channels), calls
    assert (calls["UpdateChannelPolicy"] > 1) is (not dry_run), calls


def test_policy_apply_sends_and_verifies_every_change_within_one_interval_of_reads(fake, tmp_path, capsys):
    """Issue 16: `policy apply --confirm` over many changes still makes one ListChannels, one FeeReport and at most
    one GetChanInfo per channel: lnd's answer to each UpdateChannelPolicy (no failed_updates) is the verification,
    and what the journal calls verified is what the node then routes with."""
    mac = fake.write_macaroon("lnlens.macaroon", minimal_ops("apply"))
    config = _config(tmp_path, fake, mac, dry_run=True)
    (tmp_path / "policy.ini").write_text("[cheap_peer]\nchan.max_fee_ppm = 100\nstrategy = static\nfee_ppm = 11\n\n"
                                         + STATIC)  # fmt: skip
    db = str(tmp_path / "db.sqlite3")
    before = len(fake.calls)
    code = main(["--config", config, "--db", db, "policy", "apply", "--backend", "lnd", "--confirm", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    calls = Counter(path.rsplit("/", 1)[1] for path in fake.calls[before:])
    verified = [r for r in out["results"] if r["state"] == "verified"]
    assert len(verified) == len(out["results"]) == calls["UpdateChannelPolicy"] > 1, (out, calls)
    assert (calls["ListChannels"], calls["FeeReport"]) == (1, 1), calls
    assert 0 < calls["GetChanInfo"] <= len(fake.node.list_channels()), calls
    _check_journal_against_node(fake, db, verified)


@pytest.mark.parametrize("argv", [
    ("lnd", "status", "--json"),
    ("lnd", "opportunities", "--json"),
    ("policy", "plan", "--backend", "lnd", "--json"),
    ("policy", "explain", "{channel}", "--backend", "lnd", "--json"),
    ("policy", "apply", "--backend", "lnd", "--json"),  # without --confirm: the plan, nothing sent
])  # fmt: skip
def test_a_one_shot_command_reads_channels_once_and_each_edge_at_most_once(fake, tmp_path, capsys, argv):
    """Issue 16: a one-shot command reads as one interval of `lnlens lnd run` does (one ListChannels, one FeeReport,
    at most one GetChanInfo per channel), with a policy that reads peers' policies too."""
    mac = fake.write_macaroon("lnlens.macaroon", minimal_ops("apply"))
    config = _config(tmp_path, fake, mac, dry_run=True)
    (tmp_path / "policy.ini").write_text("[cheap_peer]\nchan.max_fee_ppm = 100\nstrategy = static\nfee_ppm = 11\n\n"
                                         + STATIC)  # fmt: skip
    channel = str(fake.node.list_channels()[0].channel_id)
    before = len(fake.calls)
    code = main(["--config", config, "--db", str(tmp_path / "db.sqlite3"), *(a.format(channel=channel) for a in argv)])
    assert code == 0, capsys.readouterr().err
    calls = Counter(path.rsplit("/", 1)[1] for path in fake.calls[before:])
    assert (calls["ListChannels"], calls["FeeReport"]) == (1, 1), calls
    assert 0 < calls["GetChanInfo"] <= len(fake.node.list_channels()), calls
