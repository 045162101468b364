"""The database file is handled safely: unknown schemas refused unwritten, read-only files readable, no
database or folder made by a read-only command or a mistyped --db, private modes (issue 14, item 7)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess

import pytest
from sqlite_utils import Database

from lnlens_core.cli import main
from lnlens_core.cli.context import CliContext
from lnlens_core.errors import StoreError
from lnlens_core.storage import Store, private_dir
from lnlens_core.storage.schema import migrations


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("LNLENS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("LNLENS_CONFIG", raising=False)
    return tmp_path


def _made(path):
    store = Store(path)
    store.set_meta("note", "mine")
    store.close()
    return path


def test_a_database_from_a_newer_lnlens_is_refused_and_never_written(tmp_path, capsys):
    path = _made(tmp_path / "newer.sqlite3")
    raw = Store(path)
    raw.db.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at)"
        " VALUES ('lnlens', 'm999_from_the_future', 'x')"
    )
    raw.db.conn.commit()
    raw.close()
    before = _digest(path)
    newest = [m.name for m in migrations.pending(Database(memory=True))][-1]
    for readonly in (False, True):
        with pytest.raises(StoreError) as info:
            Store(path, readonly=readonly)
        assert "m999_from_the_future" in str(info.value) and newest in str(info.value)
    assert main(["--db", str(path), "db", "info"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "newer lnlens" in err and "m999_from_the_future" in err and newest in err
    assert _digest(path) == before
    assert not (tmp_path / "newer.sqlite3-wal").exists() or (tmp_path / "newer.sqlite3-wal").stat().st_size == 0


@pytest.fixture
def read_only(tmp_path):
    """Make a file and its folder unwritable, for root too (chattr +i), and undo it afterwards."""
    made = []

    def lock(*paths):
        for p in paths:
            p.chmod(stat.S_IMODE(p.stat().st_mode) & ~0o222)
        if os.geteuid() == 0:
            if shutil.which("chattr") is None:
                pytest.skip("running as root without chattr: a file cannot be made read-only")
            subprocess.run(["chattr", "+i", *map(str, paths)], check=True)
        made.extend(paths)

    yield lock
    if made and os.geteuid() == 0:
        subprocess.run(["chattr", "-i", *map(str, made)], check=False)
    for p in made:
        p.chmod(stat.S_IMODE(p.stat().st_mode) | 0o200)


def test_a_read_only_database_is_readable_by_db_info_and_export(env, capsys, read_only):
    folder = env / "ro"
    folder.mkdir()
    path = _made(folder / "lnlens.sqlite3")
    read_only(path, folder)
    assert main(["--db", str(path), "db", "info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"]["meta"] == 1
    assert main(["--db", str(path), "db", "export", "--type", "forwards", "--format", "jsonl"]) == 0
    assert main(["--db", str(path), "channels", "--json"]) == 0
    capsys.readouterr()


def test_read_only_commands_leave_the_file_as_it_was(env, capsys):
    path = _made(env / "lnlens.sqlite3")
    before = _digest(path)
    for args in (["db", "info"], ["db", "export", "--type", "journal"], ["channels"], ["policy", "history"]):
        assert main(["--db", str(path), *args]) == 0, args
    capsys.readouterr()
    assert _digest(path) == before


@pytest.mark.parametrize(
    "args",
    [["db", "info"], ["db", "export", "--type", "forwards"], ["channels"], ["opportunities"], ["policy", "history"],
     ["report", "--out", "REPORT"], ["cleanup", "--dry-run"]],
)  # fmt: skip
def test_a_mistyped_db_is_one_clear_line_and_creates_nothing(env, capsys, args):
    for typo in (env / "typo.sqlite3", env / "no-such-folder" / "lnlens.sqlite3"):
        argv = [a.replace("REPORT", str(env / "report")) for a in args]
        assert main(["--db", str(typo), *argv]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(typo) in err and "Traceback" not in err
        assert not typo.exists() and not typo.parent.joinpath("typo.sqlite3").exists()
        assert not (env / "no-such-folder").exists()
    assert not (env / "data").exists()


def test_a_database_lnlens_creates_is_private(env):
    path = env / "new.sqlite3"
    store = Store(path)
    store.set_meta("k", "v")
    wal = env / "new.sqlite3-wal"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert wal.exists() and stat.S_IMODE(wal.stat().st_mode) == 0o600
    store.close()
    with pytest.raises(StoreError, match="does not exist"):
        Store(env / "missing" / "x.sqlite3")
    assert not (env / "missing").exists()


def test_the_default_data_directory_is_made_private(env):
    args = main.__globals__["build_parser"]().parse_args(["db", "info"])
    ctx = CliContext(args)
    store = ctx.store(create=True)
    data = env / "data"
    assert store.path == data / "lnlens.sqlite3"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700 and stat.S_IMODE(store.path.stat().st_mode) == 0o600
    ctx.close()
    deep = private_dir(env / "a" / "b")
    assert stat.S_IMODE(deep.stat().st_mode) == 0o700 and stat.S_IMODE((env / "a").stat().st_mode) == 0o700


def test_a_read_only_command_on_an_older_database_upgrades_its_schema_only(env, capsys):
    path = _made(env / "older.sqlite3")
    raw = Store(path)
    last = raw.schema_version()[-1]
    raw.db.execute("DELETE FROM _sqlite_migrations WHERE name = ?", [last])  # as an older lnlens left it
    undo = {"m012_forward_neighbours_and_sums": "DROP INDEX forwards_refused_near; DROP INDEX forwards_sums;"
                                                " ALTER TABLE forwards DROP COLUMN near"}
    assert last in undo, f"teach this test to undo {last}"
    raw.db.executescript(undo[last])
    raw.db.conn.commit()
    raw.close()
    assert main(["--db", str(path), "db", "info", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["pending_migrations"] == [] and data["migrations"][-1] == last and data["rows"]["meta"] == 1
