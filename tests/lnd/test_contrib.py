"""contrib/: the example settings load as the sidecar loads them; the systemd unit runs the sidecar, hardened."""

from __future__ import annotations

import configparser
from pathlib import Path

from lnlens_lnd.connection import LndSettings

from lnlens_core.config import load

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_loads():
    config = load(config_path=ROOT / "contrib" / "lnlens.toml", env={}, backend_tables=("sim", "lnd"))
    assert config.dry_run and config.interval_s == 600
    settings = LndSettings.from_sources(config.backends["lnd"], env={}, mode="read")
    assert (settings.host, settings.network, settings.timeout_s) == ("localhost:10009", "mainnet", 30.0)
    assert settings.macaroon == Path("/etc/lnlens/lnlens.macaroon")


def test_systemd_unit_runs_the_sidecar_hardened():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(ROOT / "contrib" / "lnlens-lnd.service")
    service = unit["Service"]
    assert service["ExecStart"].endswith("lnd run") and "--config /etc/lnlens/lnlens.toml" in service["ExecStart"]
    assert service["KillSignal"] == "SIGTERM" and service["RestartPreventExitStatus"] == "2"
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
        "MemoryDenyWriteExecute": "yes",
    }.items():
        assert service[key] == value, key
    assert service["User"] == "lnlens"


def test_the_unit_lists_the_optional_permissions_and_the_keys_that_need_them():
    from lnlens_lnd.rpc import METHODS, OPTIONAL_METHODS

    text = (ROOT / "contrib" / "lnlens-lnd.service").read_text()
    for name in OPTIONAL_METHODS:
        line = next((line for line in text.splitlines() if f"uri:{METHODS[name].path} " in line), None)
        assert line is not None and METHODS[name].needed_by in line, name
