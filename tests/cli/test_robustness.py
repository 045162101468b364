"""Bad input and hostile surroundings: one clear line and exit 1 or 2, never a traceback, never a stray file."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lnlens_core.cli import INTERNAL_ERROR, main


def run(capsys, *args):
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


# --- usage: refused before anything runs (exit 2) ------------------------------------------------------------

@pytest.mark.parametrize(("args", "says"), [
    (["opportunities", "--limit", "-1"], "--limit: must be 1 or more"),
    (["opportunities", "--limit", "0"], "--limit: must be 1 or more"),
    (["opportunities", "--min-urgency", "101"], "--min-urgency: must be from 0 to 100"),
    (["recommend", "--min-gap", "2"], "--min-gap: must be from 0 to 1"),
    (["recommend", "--min-gap", "-0.1"], "--min-gap: must be from 0 to 1"),
    (["recommend", "--min-gap", "nan"], "--min-gap: must be from 0 to 1"),
    (["recommend", "--limit", "-1"], "--limit: must be 1 or more"),
    (["report", "--out", "r", "--top", "0"], "--top: must be 1 or more"),
    (["report", "--out", "r", "--min-gap", "inf"], "--min-gap: must be from 0 to 1"),
    (["monitor", "--interval", "0"], "--interval: must be longer than 0"),
    (["monitor", "--limit", "-1"], "--limit: must be 1 or more"),
    (["sim", "run", "--days", "nan", "--seed", "1"], "--days: must be more than 0 and at most 3650"),
    (["sim", "run", "--days", "inf", "--seed", "1"], "--days: must be more than 0 and at most 3650"),
    (["sim", "run", "--days", "100000", "--seed", "1"], "--days: must be more than 0 and at most 3650"),
    (["sim", "run", "--days", "1", "--seed", "-1"], "--seed: must be 0 or more"),
    (["sim", "run", "--days", "1", "--seed", "1", "--payments-per-hour", "0"], "--payments-per-hour: must be more"),
    (["sim", "run", "--days", "1", "--seed", "1", "--nodes", "2"], "--nodes: must be from 3"),
    (["policy", "experiment", "p.ini", "--days", "inf"], "--days: must be more than 0"),
    (["policy", "experiment", "p.ini", "--seeds", "-1"], "--seeds: must be 0 or more"),
    (["policy", "history", "--window", "0"], "--window: must be longer than 0"),
    (["opportunities", "--since", "100000d"], "--since: must be at most 3650 days"),
    (["serve", "--port", "70000"], "--port: must be from 0 to 65535"),
    (["serve", "--speed", "nan"], "--speed: must be more than 0"),
    (["model", "train", "--simulate", "--seed", "-1"], "--seed: must be from 0"),
])  # fmt: skip
def test_out_of_range_arguments_are_refused_in_one_line(capsys, env, monkeypatch, args, says):
    monkeypatch.chdir(env)
    code, _, err = run(capsys, "--db", env / "db.sqlite3", *args)
    assert code == 2 and says in one_line(err)
    assert not (env / "db.sqlite3").exists()


def test_limit_keeps_exactly_n_rows(capsys, hostile_db):
    code, out, _ = run(capsys, "--db", hostile_db, "opportunities", "--json")
    every = [o["short_channel_id"] for o in json.loads(out)["opportunities"]]
    code, out, _ = run(capsys, "--db", hostile_db, "opportunities", "--json", "--limit", len(every))
    assert every and code == 0 and [o["short_channel_id"] for o in json.loads(out)["opportunities"]] == every


def test_global_options_after_the_subcommand(capsys, hostile_db, env):
    code, out, _ = run(capsys, "opportunities", "--db", hostile_db, "--json")
    assert code == 0 and json.loads(out)["channels"] == 2
    config = env / "lnlens.toml"
    config.write_text(f'db = "{hostile_db}"\n')
    code, out, err = run(capsys, "db", "info", "--config", config, "-v", "--json")
    assert code == 0 and json.loads(out)["path"] == str(hostile_db)
    code, out, _ = run(capsys, "--db", env / "elsewhere.sqlite3", "channels", "--db", hostile_db, "--json")
    assert code == 0 and len(json.loads(out)["channels"]) == 2  # the later one wins


# --- settings ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "says"), [
    (b"db = 5\n", "db: must be a path in quotes, not 5"),
    (bytes(range(256)) * 3, "not a settings file (TOML is UTF-8 text"),
    (b'[sim]\nseed = "x"\n', "sim.seed: must be a whole number, not 'x'"),
    (b"[sim]\nnodes = true\n", "sim.nodes: must be a whole number, not True"),
    (b"[sim]\npayments_per_hour = nan\n", "sim.payments_per_hour: must be a finite number"),
    (b'[sim]\nnetwork = ["x"]\n', "sim.network: must be text"),
])  # fmt: skip
def test_bad_settings_are_one_line_each(capsys, env, text, says):
    config = env / "lnlens.toml"
    config.write_bytes(text)
    (env / "p.ini").write_text("[default]\nstrategy = static\nfee_ppm = 100\n")
    code, _, err = run(capsys, "--config", config, "--db", env / "db.sqlite3", "policy", "plan", "--policy",
                       env / "p.ini")  # fmt: skip
    assert code == 2 and says in one_line(err)
    assert config.read_bytes() == text


def test_a_file_that_is_no_network_is_a_config_error_and_leaves_no_database(capsys, env):
    garbage = env / "passwd"
    garbage.write_text("root:x:0:0:root:/root:/bin/bash\n")
    for network in (garbage, env / "graph.json"):
        if network.suffix == ".json":
            network.write_text("{}")
        code, _, err = run(capsys, "--db", env / "db.sqlite3", "sim", "run", "--network", network, "--days", "1",
                           "--seed", "1")  # fmt: skip
        assert code == 2 and f"sim.network: {network}" in one_line(err)
    assert not (env / "db.sqlite3").exists()


# --- the surroundings ----------------------------------------------------------------------------------------

def test_an_unwritable_report_folder_is_one_line(capsys, hostile_db, env):
    blocker = env / "a-file"
    blocker.write_text("")
    code, _, err = run(capsys, "--db", hostile_db, "report", "--out", blocker / "x")
    assert code == 1 and one_line(err).startswith(f"lnlens: error: {blocker / 'x'}")


def test_a_reader_that_goes_away_is_not_an_error(capsys, hostile_db, monkeypatch):
    class Closed:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self):
            raise ValueError("no file")

    monkeypatch.setattr(sys, "stdout", Closed())
    code = main(["--db", str(hostile_db), "db", "export", "--type", "forwards"])
    monkeypatch.undo()
    assert code == 0 and "Traceback" not in capsys.readouterr().err


def test_piping_into_head(hostile_db, env):
    """The README pipes into ``head``: the real thing, in a child process."""
    script = "import sys; from lnlens_core.cli import main; sys.exit(main())"
    for args in (["db", "export", "--type", "forwards"], ["opportunities", "--json"]):
        child = subprocess.Popen([sys.executable, "-c", script, "--db", str(hostile_db), *args],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)  # fmt: skip
        child.stdout.read(10)
        child.stdout.close()
        err = child.stderr.read().decode()
        assert child.wait(timeout=60) == 0 and err == "", err


def test_an_unexpected_error_is_one_line_with_its_own_exit_code(capsys, hostile_db, monkeypatch):
    import lnlens_core.cli.channels_cmd as channels

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(channels, "store_window_stats", broken)
    code, _, err = run(capsys, "--db", hostile_db, "channels")
    assert code == INTERNAL_ERROR and "RuntimeError: boom" in one_line(err)
