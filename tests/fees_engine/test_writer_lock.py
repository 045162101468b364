"""One writer per database: two real processes applying fees at once never change a channel twice, and the
cooldown and daily cap hold across processes; a busy lock names its holder (issue 14, item 2)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("lnlens_sim")

from lnlens_core.cli import main  # noqa: E402
from lnlens_core.storage import Store, WriterBusy  # noqa: E402

POLICY = "[all]\nstrategy = static\nfee_ppm = 3000\nbase_fee_msat = 0\n"


def _setup(tmp_path, rails: str):
    # charge_lnd_rails: a charge-lnd strategy steps toward its fee under lnlens's rails, so each process has work
    (tmp_path / "policy.ini").write_text(POLICY)
    db = tmp_path / "db.sqlite3"
    config = tmp_path / "lnlens.toml"
    config.write_text(f'db = "{db}"\n[sim]\nnetwork = "lightninglens"\nseed = 1\n'
                      f'[policy]\nfile = "{tmp_path / "policy.ini"}"\ncharge_lnd_rails = true\n{rails}')  # fmt: skip
    return config, db


def _lnlens(config, *args):
    env = {**os.environ, "LNLENS_DATA_DIR": str(config.parent / "data")}
    env.pop("LNLENS_CONFIG", None)
    cmd = [str(Path(sys.executable).with_name("lnlens")), "--config", str(config), *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _apply_at_once(config, n: int) -> list[tuple[int, str, str]]:
    procs = [_lnlens(config, "policy", "apply", "--confirm", "--json", "--wait", "120") for _ in range(n)]
    return [(p.wait(timeout=180), *p.communicate()) for p in procs]


def _applied(db) -> list[dict]:
    store = Store(db, readonly=True)
    try:
        return [r for r in store.journal() if r["applied_time"] is not None]
    finally:
        store.close()


@pytest.mark.parametrize(("rails", "processes", "per_channel"), [('cooldown = "1h"\n', 3, 1),
                                                                  ('cooldown = 0\nmax_changes_per_day = 2\n', 4, 2)])
def test_processes_applying_at_once_change_each_channel_once_per_rail(tmp_path, rails, processes, per_channel):
    config, db = _setup(tmp_path, rails)
    runs = _apply_at_once(config, processes)
    assert all(rc == 0 for rc, _, _ in runs), [err for _, _, err in runs]
    rows = _applied(db)
    per = Counter(r["channel_id"] for r in rows)
    assert per and set(per.values()) == {per_channel}, per
    # Each process started from the one before it (the simulator's state is saved under the lock): a channel's
    # second change starts from its first one's new fee, never from the same old fee again.
    by_channel: dict[str, list[dict]] = {}
    for r in sorted(rows, key=lambda r: r["id"]):
        by_channel.setdefault(r["channel_id"], []).append(r)
    for changes in by_channel.values():
        for before, after in zip(changes, changes[1:], strict=False):
            assert json.loads(after["old_policy"])["fee_ppm"] == json.loads(before["new_policy"])["fee_ppm"]


def _hold_lock(db, holder: str) -> subprocess.Popen:
    """Another process holding the database's writer lock (named ``holder``) until its stdin closes."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom lnlens_core.storage import Store\n"
         f"lock = Store({str(db)!r}).writer_lock(holder={holder!r})\nlock.__enter__()\n"
         "print('held', flush=True)\nsys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_busy_database_names_the_holder_and_changes_nothing(tmp_path, capsys):
    config, db = _setup(tmp_path, 'cooldown = "1h"\n')
    Store(db).close()
    holder = _hold_lock(db, "lnlens policy apply --confirm")
    try:
        rc = main(["--config", str(config), "policy", "apply", "--confirm"])
        err = capsys.readouterr().err
        assert rc == 1 and err.count("\n") == 1, err
        assert f"pid {holder.pid} (lnlens policy apply --confirm) since " in err
        assert re.search(r"since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", err)
        assert main(["--config", str(config), "policy", "rollback", "--channel", "1x1x0"]) == 1
        assert f"pid {holder.pid}" in capsys.readouterr().err
        with pytest.raises(WriterBusy):
            with Store(db).writer_lock():
                pass
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    assert _applied(db) == []
    with Store(db).writer_lock():  # released when its holder ended
        pass


def test_a_daemons_policy_tick_skips_while_another_process_writes(tmp_path, caplog):
    import logging

    from lnlens_sim import build_backend

    from lnlens_core.config import LensConfig
    from lnlens_core.fees.api import PolicyRunner
    from lnlens_core.lens import Lens
    from lnlens_core.plugins import get_plugin_manager

    (tmp_path / "policy.ini").write_text(POLICY)
    db = tmp_path / "db.sqlite3"
    node = build_backend({"network": "lightninglens", "seed": 1})
    store = Store(db)
    lens = Lens(LensConfig(data_dir=tmp_path, db_path=db), store=store, clock=node.clock,
                pm=get_plugin_manager(load_entrypoints=False), backend=node)  # fmt: skip
    runner = PolicyRunner(lens, node, dry_run=False, policy_path=tmp_path / "policy.ini")
    holder = _hold_lock(db, "lnlens policy rollback --change 1")
    try:
        with caplog.at_level(logging.WARNING, logger="lnlens_core.fees.api"):
            assert runner.tick() is None
        assert f"pid {holder.pid} (lnlens policy rollback --change 1)" in caplog.text
        assert store.journal() == []
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    done = runner.tick()  # the holder has gone: this interval applies
    assert done is not None and done["results"] and store.journal()
    store.close()
