"""Property: every ``lnlens`` command, given generated bad arguments, settings and policy files, ends with exit 0, 1
or 2 and never a traceback, and leaves its input files as they were. In-process and bounded, so it stays quick.

Commands that serve, connect to lnd or simulate for minutes are driven elsewhere (their argument checks are in
test_robustness.py); the simulator commands here run on a tiny synthetic network with their long flags fixed.
"""

from __future__ import annotations

import argparse
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lnlens_core.cli import build_parser, main

from .conftest import hostile_store

SKIP = {("serve",), ("lnd",), ("model", "train"), ("policy", "experiment")}
# A tiny node and short runs: the point is what each command does with its input, not a long simulation.
FIXED = {
    ("sim", "run"): ["--network", "synthetic", "--nodes", "20", "--days", "0.01", "--seed", "1"],
    ("monitor",): ["--duration", "1h", "--interval", "30m"],
}
NOT_GENERATED = {"--days", "--duration", "--sim-warmup", "--network", "--nodes", "--help", "-h", "--version",
                 "--snapshot-every", "--interval", "--payments-per-hour", "--gossip-delay"}  # fmt: skip
# Hostile values; paths stay inside the test's folder (or /proc, where nothing can be created).
VALUES = ["-1", "0", "1", "2", "nan", "inf", "-inf", "1e309", "100000", "", " ", "x", "[/]", "[red]x|y", "$a$",
          "\x1b[2J", "24h", "7d", "0s", "-5m", "800000x1x0", "1x1x1", "x1x", "/proc/x", "a-file/x", "out/f.json",
          "saved.json", "policy.ini", "lnlens.toml", "é", "9" * 30, "--json"]  # fmt: skip
SETTINGS_LINES = ['db = 5', 'dry_run = "maybe"', "dry_run = false", 'interval = "-1"', "interval = 0",
                  'policy = 7', "http_port = 70000", 'model = "a-file"', "unknown = 1", "[plugins]\nblock = 5",
                  '[sim]\nseed = "x"', "[sim]\nnodes = 2", "[sim]\npayments_per_hour = nan", '[sim]\nbogus = 1',
                  "[policy]\nmax_fee_ppm = -5", '[policy]\ncooldown = "x"', "[analyzer]\nbogus = 1",
                  "[sim]\nseed = -1", "\x00\xff", "[[x]]", "= 1"]  # fmt: skip
POLICY_LINES = ["[default]\nstrategy = static\nfee_ppm = 100", "[x]\nstrategy = nope", "fee_ppm = -1",
                "[y]\nchan.min_ratio = 2\nstrategy = static\nfee_ppm = 1", "[z]\nstrategy = balance_based\nbins = 0",
                "[w]\nnode.id = [/]\nstrategy = ignore", "\x00", "[", "time_lock_delta = 0",
                "[v]\nstrategy = proportional\nmin_fee_ppm = 900\nmax_fee_ppm = 10"]  # fmt: skip
BASE_SETTINGS = '[sim]\nnetwork = "synthetic"\nnodes = 20\nseed = 1\n'


def _commands() -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    found: list[tuple[tuple[str, ...], argparse.ArgumentParser]] = []

    def visit(path: tuple[str, ...], parser: argparse.ArgumentParser) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs and path and not any(path[: len(s)] == s for s in SKIP):
            found.append((path, parser))
        for action in subs:
            for name, child in action.choices.items():
                visit((*path, name), child)

    visit((), build_parser())
    return found


COMMANDS = _commands()


@st.composite
def command_lines(draw) -> list[str]:
    path, parser = draw(st.sampled_from(COMMANDS))
    argv = [*path, *FIXED.get(path, [])]
    options = [a for a in parser._actions if a.option_strings and not set(a.option_strings) & NOT_GENERATED]
    chosen = draw(st.lists(st.sampled_from(options), max_size=4)) if options else []
    for action in [*(a for a in options if a.required and a not in chosen), *chosen]:
        argv.append(action.option_strings[-1])
        if action.nargs != 0:
            pool = list(action.choices) + VALUES if action.choices else VALUES
            argv.append(draw(st.sampled_from(pool)))
    for action in (a for a in parser._actions if not a.option_strings and a.nargs != argparse.REMAINDER):
        if action.required or draw(st.booleans()):
            argv.append(draw(st.sampled_from(VALUES)))
    return argv


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    path = tmp_path_factory.mktemp("hostile") / "db.sqlite3"
    hostile_store(path)
    return path


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(argv=command_lines(),
       extra_settings=st.one_of(st.just([]), st.lists(st.sampled_from(SETTINGS_LINES), max_size=2)),
       policy_lines=st.lists(st.sampled_from(POLICY_LINES), max_size=3))  # fmt: skip
def test_every_command_answers_bad_input_with_one_line(argv, extra_settings, policy_lines, template, tmp_path_factory,
                                                        capsys, monkeypatch):  # fmt: skip
    work = tmp_path_factory.mktemp("run")
    monkeypatch.chdir(work)
    monkeypatch.setenv("LNLENS_DATA_DIR", str(work / "data"))
    for name in ("LNLENS_CONFIG", "LNLENS_DB_PATH", "LNLENS_POLICY_PATH"):
        monkeypatch.delenv(name, raising=False)
    shutil.copy(template, work / "db.sqlite3")
    (work / "a-file").write_text("")
    inputs = {
        "lnlens.toml": ("\n".join([*extra_settings, BASE_SETTINGS]) + "\n").encode("utf-8", "surrogateescape"),
        "policy.ini": ("\n\n".join(policy_lines) + "\n").encode(),
        "saved.json": b'{"schema_version": 1, "opportunities": [{"short_channel_id": "[/]"}], "window_s": "x"}',
    }
    for name, data in inputs.items():
        (work / name).write_bytes(data)
    try:
        code = main(["--config", "lnlens.toml", "--db", "db.sqlite3", *argv])
    except SystemExit as exc:  # argparse: usage errors (2), --help (0)
        code = exc.code
    err = capsys.readouterr().err
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in err, (argv, err)
    for name, data in inputs.items():
        assert (work / name).read_bytes() == data, f"{argv} changed its input {name}"
