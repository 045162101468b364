"""The lnlens command, run in-process through main() with real files."""

from __future__ import annotations

import csv
import json

import pytest

from lnlens_core import __version__
from lnlens_core.cli import main
from lnlens_core.clock import SystemClock
from lnlens_core.domain import ChannelId, ForwardStatus, HtlcEvent
from lnlens_core.storage import Store

CID = ChannelId.parse("800000x1x0")
DAY = 86_400


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("LNLENS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("LNLENS_CONFIG", raising=False)
    path = tmp_path / "lnlens.sqlite3"
    store = Store(path)
    now = SystemClock().now()
    old = [HtlcEvent(CID, 1000, ForwardStatus.SETTLED, now - 100 * DAY, in_htlc_id=i, fee_msat=1) for i in range(30)]
    new = [HtlcEvent(CID, 1000, ForwardStatus.SETTLED, now - DAY, in_htlc_id=100 + i, fee_msat=1) for i in range(5)]
    store.ingest_forwards(old + new, source="backfill")
    store.close()
    return path


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"lnlens {__version__}"


def test_db_info_json(capsys, db):
    code, out, _ = run(capsys, "--db", str(db), "db", "info", "--json")
    data = json.loads(out)
    assert code == 0 and data["path"] == str(db) and data["rows"]["forwards"] == 35
    assert data["migrations"][0] == "m001_initial" and data["pending_migrations"] == []


def test_cleanup_dry_run_deletes_nothing_and_reports(capsys, db):
    code, out, _ = run(capsys, "--db", str(db), "cleanup", "--keep-days", "30", "--dry-run", "--json")
    data = json.loads(out)
    forwards = next(r for r in data["results"] if r["type"] == "forwards")
    assert code == 0 and data["dry_run"] and forwards == {
        "type": "forwards", "matching": 30, "deleted": 0, "exported_to": None,
    }  # fmt: skip
    assert Store(db).row_counts()["forwards"] == 35


def test_cleanup_exports_then_deletes_and_spares_the_journal(capsys, db, tmp_path):
    export = tmp_path / "export"
    args = ("cleanup", "--keep-days", "30", "--export-dir", str(export), "--json", "--yes")
    code, out, _ = run(capsys, "--db", str(db), *args)
    data = json.loads(out)
    assert code == 0 and [r["type"] for r in data["results"]] == [
        "forwards",
        "snapshots",
        "opportunities",
        "alerts",
        "model_runs",
    ]
    with open(export / "forwards.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 30
    assert Store(db).row_counts()["forwards"] == 5


def test_cleanup_table_output(capsys, db):
    code, out, _ = run(capsys, "--db", str(db), "cleanup", "--dry-run", "--type", "forwards", "--keep-days", "7")
    assert code == 0 and "would delete" in out and "forwards" in out and "30" in out


def test_db_export_jsonl(capsys, db):
    code, out, _ = run(capsys, "--db", str(db), "db", "export", "--type", "forwards", "--format", "jsonl")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 35 and rows[0]["in_channel"] == "800000x1x0"


def test_plugins_lists_builtin_and_installed(capsys, db):
    code, out, _ = run(capsys, "--db", str(db), "plugins", "--json")
    names = {p["name"]: p for p in json.loads(out)["plugins"]}
    assert code == 0 and names["lnlens_core.fees.builtin"]["builtin"]
    assert names["fee_example"]["version"] == "0.1.0"


def test_errors_are_one_line_not_tracebacks(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('interval = "often"\nnope = 1\n')
    code, out, err = run(capsys, "--config", str(bad), "db", "info")
    assert code == 2 and err.startswith("lnlens: config error:") and "Traceback" not in err
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"x" * 5000)
    code, out, err = run(capsys, "--db", str(garbage), "db", "info")
    assert code == 1 and err == f"lnlens: error: {garbage}: cannot open the lnlens database (file is not a database)\n"


def test_cleanup_measures_age_from_a_simulated_databases_own_time(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LNLENS_DATA_DIR", str(tmp_path / "data"))
    path = tmp_path / "sim.sqlite3"
    store = Store(path)
    store.set_meta("clock", "simulated")
    start = 1_770_076_800.0  # a simulation's data: months before the wall clock
    store.ingest_forwards([HtlcEvent(CID, 1000, ForwardStatus.SETTLED, start + i * DAY, in_htlc_id=i, fee_msat=1)
                           for i in range(10)], source="sim")  # fmt: skip
    store.close()
    code, out, _ = run(capsys, "--db", str(path), "cleanup", "--keep-days", "5", "--yes", "--json")
    forwards = next(r for r in json.loads(out)["results"] if r["type"] == "forwards")
    assert code == 0 and forwards["deleted"] == 4 and Store(path).forward_count() == 6


def test_cleanup_asks_first_and_refuses_without_a_terminal(capsys, db, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    code, _, err = run(capsys, "--db", str(db), "cleanup", "--keep-days", "30")
    assert code == 1 and err.count("\n") == 1 and "30 forwards" in err and "--yes" in err
    assert Store(db).forward_count() == 35

    class Terminal:
        def __init__(self, answer):
            self.answer = answer

        def isatty(self):
            return True

        def readline(self):
            return self.answer

    monkeypatch.setattr("sys.stdin", Terminal("n\n"))
    code, _, err = run(capsys, "--db", str(db), "cleanup", "--keep-days", "30")
    assert code == 1 and "Delete? [y/N]" in err and Store(db).forward_count() == 35
    monkeypatch.setenv("CI", "true")  # CI never waits for an answer
    code, _, err = run(capsys, "--db", str(db), "cleanup", "--keep-days", "30")
    assert code == 1 and "Delete?" not in err and Store(db).forward_count() == 35
    monkeypatch.delenv("CI")
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    code, _, _ = run(capsys, "--db", str(db), "cleanup", "--keep-days", "30")
    assert code == 0 and Store(db).forward_count() == 5
