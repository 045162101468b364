from pathlib import Path

import pytest

from lnlens_core.config import SETTINGS, LensConfig, load, parse_duration
from lnlens_core.errors import ConfigError

ENV = {"LNLENS_DATA_DIR": "/data/lnlens"}


@pytest.mark.parametrize(
    ("toml", "env", "cli", "expected"),
    [
        ("", {}, {}, {"interval_s": 600, "dry_run": True, "db_path": Path("/data/lnlens/lnlens.sqlite3")}),
        ('interval = "1h"\n', {}, {}, {"interval_s": 3600}),
        ('interval = "1h"\n', {"LNLENS_INTERVAL_S": "5m"}, {}, {"interval_s": 300}),
        ('interval = "1h"\n', {"LNLENS_INTERVAL_S": "5m"}, {"interval_s": "30"}, {"interval_s": 30}),
        ("dry_run = false\n", {}, {}, {"dry_run": False}),
        ("dry_run = false\n", {"LNLENS_DRY_RUN": "yes"}, {}, {"dry_run": True}),
        ('db = "/x/y.sqlite3"\n', {}, {"db_path": "/cli.sqlite3"}, {"db_path": Path("/cli.sqlite3")}),
    ],
)
def test_layers_resolve_defaults_file_env_cli_in_that_order(tmp_path, toml, env, cli, expected):
    path = tmp_path / "lnlens.toml"
    path.write_text(toml)
    config = load(config_path=path, cli=cli, env={**ENV, **env})
    for field, value in expected.items():
        assert getattr(config, field) == value


def test_every_problem_is_reported_at_once_with_file_and_line(tmp_path):
    path = tmp_path / "lnlens.toml"
    path.write_text('# settings\ninterval = "soon"\ndry_run = "maybe"\n')
    with pytest.raises(ConfigError) as info:
        load(config_path=path, env=ENV)
    problems = info.value.problems
    assert len(problems) == 2
    assert problems[0].startswith(f"{path}:2: interval") and "duration" in problems[0]
    assert problems[1].startswith(f"{path}:3: dry_run") and "boolean" in problems[1]


def test_unknown_keys_and_bad_toml_are_errors(tmp_path):
    path = tmp_path / "lnlens.toml"
    path.write_text("intreval = 5\n")
    with pytest.raises(ConfigError, match=r"lnlens.toml:1: intreval: unknown setting \(accepted: .*interval"):
        load(config_path=path, env=ENV)
    path.write_text("interval = \n")
    with pytest.raises(ConfigError, match="line 1"):
        load(config_path=path, env=ENV)
    with pytest.raises(ConfigError, match="cannot read"):
        load(config_path=tmp_path / "missing.toml", env=ENV)


def test_plugin_tables_and_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("LNLENS_TEST_SECRET", "s3cret")
    (tmp_path / "token").write_text("from-file\n")
    path = tmp_path / "lnlens.toml"
    path.write_text(
        '[plugins]\nblock = ["noisy"]\n[plugins.fee_example]\nmax_fee_ppm = 2500\n'
        f'token = {{"$env" = "LNLENS_TEST_SECRET"}}\nother = {{"$file" = "{tmp_path / "token"}"}}\n'
    )
    config = load(config_path=path, env=ENV)
    assert config.blocked_plugins == ("noisy",)
    assert dict(config.plugins["fee_example"]) == {"max_fee_ppm": 2500, "token": "s3cret", "other": "from-file"}


def test_cln_options_use_lens_names_and_default_db_in_lightning_dir():
    config = LensConfig.from_cln_options({"lens-interval": "15m", "lens-db": ""}, "/home/u/.lightning/bitcoin")
    assert config.interval_s == 900 and config.db_path == Path("/home/u/.lightning/bitcoin/lnlens.sqlite3")
    with pytest.raises(ConfigError) as info:
        LensConfig.from_cln_options({"lens-interval": "0", "lens-dry-run": "perhaps"}, "/l")
    assert [p.split(":")[0] for p in info.value.problems] == ["lens-dry-run", "lens-interval"] or [
        p.split(":")[0] for p in info.value.problems
    ] == ["lens-interval", "lens-dry-run"]


def test_settings_table_names_are_consistent():
    for s in SETTINGS:
        assert s.cln_option.startswith("lens-") and s.cli_flag.startswith("--")
        assert s.field in LensConfig.__dataclass_fields__


@pytest.mark.parametrize(("text", "seconds"), [("600", 600), ("10m", 600), ("1h", 3600), ("7d", 604800), (45, 45)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "1y", "-5", "1.5h", -1, True])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)
