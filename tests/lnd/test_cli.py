"""`lnlens lnd status | opportunities | run` against the fake lnd, as an operator runs them."""

from __future__ import annotations

import json

import pytest
from lnlens_testing.lnd import FakeLnd, minimal_ops, sim_node

from lnlens_core.cli import main
from lnlens_core.clock import ManualClock, SystemClock
from lnlens_core.config import LensConfig
from lnlens_core.lens import Lens
from lnlens_core.opportunities.run import run_analysis
from lnlens_core.plugins import get_plugin_manager
from lnlens_core.storage import Store


@pytest.fixture
def recent(tmp_path):
    """A fake lnd whose simulated node has forwarded for the last two hours of real time."""
    node = sim_node(balances="opener", payments_per_hour=800, clock=ManualClock(SystemClock().now() - 7200))
    fake = FakeLnd(node, tmp_path / "lnd")
    fake.start()
    node.run(1800)  # history from before the sidecar starts
    mac = fake.write_macaroon("lnlens.macaroon", minimal_ops("read"))
    config = tmp_path / "lnlens.toml"
    config.write_text(
        f'interval = "1s"\n[lnd]\nhost = "{fake.host}"\nnetwork = "regtest"\ntlscert = "{fake.cert_path}"\n'
        f'macaroon = "{mac}"\n'
    )
    yield fake, config
    fake.stop()


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_status_json(recent, tmp_path, capsys):
    fake, config = recent
    code, out, err = _run(capsys, "--config", str(config), "--db", str(tmp_path / "db.sqlite3"), "lnd", "status",
                          "--json")  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    assert data["node"]["pubkey"] == fake.node.info.pubkey and data["node"]["network"] == "regtest"
    assert data["mode"] == "read" and "inbound_fees" in data["capabilities"]
    assert data["macaroon"]["scope"] == "minimal" and data["channels"] == len(fake.node.list_channels())
    assert data["macaroon"]["least_privilege_command"].startswith("lncli bakemacaroon --save_to=lnlens.macaroon")
    # the docs' least-privilege macaroon leaves out the optional methods; status says so and how to add them
    assert data["macaroon"]["optional_missing"] == ["GetNodeInfo", "EstimateFee", "GetTransactions"]
    assert data["macaroon"]["with_optional_command"].endswith(
        "uri:/lnrpc.Lightning/GetNodeInfo uri:/walletrpc.WalletKit/EstimateFee uri:/lnrpc.Lightning/GetTransactions"
    )


def test_opportunities_json_is_the_core_analysis(recent, tmp_path, capsys, connect_to, feed):
    """The sidecar's store (history + live failures) analysed by `lnlens lnd opportunities`: the core's JSON."""
    fake, config = recent
    f = feed(connect_to(fake), fake.node.clock)
    f.wait_connected(1)
    fake.node.run(3600)
    drops = f.live.stats.drops
    fake.drop_streams()
    f.wait(lambda: f.live.stats.drops > drops)
    f.close()
    code, out, err = _run(capsys, "--config", str(config), "--db", str(f.path), "lnd", "opportunities", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["schema_version"] == 1 and data["channels"] == len(fake.node.list_channels())
    assert data["opportunities"], "the run needs failed forwards at our node"
    assert {"short_channel_id", "urgency", "missed_revenue_msat", "recommendations"} <= set(data["opportunities"][0])
    store = Store(f.path)
    try:
        assert store.row_counts()["forwards"] == len({e.key for e in fake.node.events if e.status.value == "settled"}
                                                     | {e.key for e in fake.emitted})  # fmt: skip
        lens = Lens(LensConfig(data_dir=tmp_path, db_path=f.path), store=store, clock=ManualClock(data["run_time"]),
                    pm=get_plugin_manager(load_entrypoints=False))  # fmt: skip
        again = run_analysis(lens, since_s=86_400, channels=lens.store.latest_channels()[1], save=False).to_json()
    finally:
        store.close()
    assert again["opportunities"] == data["opportunities"]


def test_a_config_error_is_one_line(tmp_path, capsys):
    config = tmp_path / "lnlens.toml"
    config.write_text('[lnd]\nnetwork = "moon"\ncolour = 1\n')
    code, _, err = _run(capsys, "--config", str(config), "--db", str(tmp_path / "db"), "lnd", "status")
    assert code == 2
    assert err.count("config error") == 2 and "Traceback" not in err


def test_run_stops_cleanly_on_sigterm(recent, tmp_path, Daemon):
    fake, config = recent
    daemon = Daemon(config, tmp_path / "db.sqlite3", "--json")
    daemon.wait_for("analysis 1:")
    assert daemon.stop() == 0, daemon.text
    first = json.loads(daemon.proc.stdout.readline())  # --json: one line per analysis
    assert first["schema_version"] == 1 and first["channels"] == len(fake.node.list_channels())
    assert "SIGTERM, stopping" in daemon.text and "sidecar stopped" in daemon.text and "Traceback" not in daemon.text


def test_run_waits_for_lnd_to_come_up(recent, tmp_path, Daemon):
    fake, config = recent
    fake.stop()
    daemon = Daemon(config, tmp_path / "db.sqlite3")
    daemon.wait_for("cannot reach lnd")
    assert "trying again in" in daemon.text
    fake.start()
    daemon.wait_for("analysis 1:")
    assert daemon.stop() == 0, daemon.text
    assert "Traceback" not in daemon.text


def test_run_waiting_for_lnd_stops_on_sigterm(recent, tmp_path, Daemon):
    fake, config = recent
    fake.stop()
    daemon = Daemon(config, tmp_path / "db.sqlite3")
    daemon.wait_for("trying again in")
    assert daemon.stop() == 0, daemon.text


def test_without_a_policy_nothing_needs_write_access(recent, tmp_path, capsys):
    """dry_run = false alone applies nothing, so a read-only macaroon is enough (least privilege)."""
    fake, config = recent
    config.write_text("dry_run = false\n" + config.read_text())
    code, out, err = _run(capsys, "--config", str(config), "--db", str(tmp_path / "db"), "lnd", "status", "--json")
    assert code == 0, err
    assert json.loads(out)["mode"] == "read"
