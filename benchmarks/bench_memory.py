"""Memory benchmark for issue [M]: the CLN plugin's and the LND sidecar's RSS as the store grows.

For each store size (by default 500,000, 1,000,000 and 2,000,000 forwards over 30 days on 1,000 channels, 20,000
channel pairs, written directly as ``bench_cln.fill`` writes them), each adapter runs in a process of its own
against its stand-in for the node, as it runs beside a real one:

- **CLN plugin** (``lnlens-cln`` under the lightningd stand-in, 1,000 channels): warm once its first analysis is
  stored, the liquidity model's first run is done (the model's sessions open then) and two new windows
  (``lens-opportunities 3h`` and ``2h``) are answered, read 2 s later (the worker hands a job's freed pages back
  right after it);
- **LND sidecar** (``lnlens lnd run`` against the fake lnd, whose simulated node has 12 channels: its model batch
  is 12 rows, so it never opens the lookup tables' session the plugin's 1,000 rows open): after its third analysis.

Each prints VmRSS (warm) and VmHWM (the peak since the process started), from /proc, beside the same-run baseline
of a process that only imports the adapter's modules, and the growth per million forwards between consecutive
sizes. **Flat** means the growth per million forwards between the two largest sizes (1M and 2M by default) is a
few MB, warm and peak (aim: under 10 MB per million), not tens: what is left then is bounded by the channels and
pairs, not by the events stored. The process uses what is installed (with the ``train`` extra, online learning
runs in child processes, which are not counted: docs/MODEL.md).

Run with ``make bench`` or ``.venv/bin/python benchmarks/bench_memory.py [--sizes 100000,1000000]``. The filled
stores are kept in ``.cache/bench-memory`` (git-ignored; ``--stores DIR`` elsewhere) and reused by the next run
(a store older than a day is filled again, as its month would no longer be the last one): filling 2,000,000
forwards takes several minutes.
"""
from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from bench_cln import bare_rss_mb, fill, node, rss_mb
from bench_lnd import sidecar_rss
from lnlens_testing.cln import StandIn

from lnlens_core.clock import SystemClock

CHANNELS = 1000
PAIRS = 20_000
AIM_MB = 200
FLAT_MB = 10  # growth per million forwards between the two largest sizes, warm and peak
STORES = Path(__file__).resolve().parent.parent / ".cache" / "bench-memory"


def store(folder: Path, n: int) -> Path:
    """A store of ``n`` forwards over the last 30 days (filled once per day in ``folder``), WAL folded in."""
    path = folder / f"store-{n}-{CHANNELS}.sqlite3"
    if path.exists() and SystemClock().now() - path.stat().st_mtime < 86_400:
        return path
    path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    fill(path, node(CHANNELS), n, now=SystemClock().now(), hot_pairs=PAIRS)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    print(f"  (filled {n:,} forwards in {time.perf_counter() - t0:.0f} s)", flush=True)
    return path


def plugin_rss(db: Path, work: Path) -> tuple[float, float]:
    """The plugin over a copy of ``db``: (VmRSS, VmHWM) in MB once warm."""
    standin = StandIn(work / "regtest", node(CHANNELS))
    shutil.copyfile(db, standin.lightning_dir / "lnlens.sqlite3")
    try:
        standin.start_plugin()
        plugin = standin.plugin
        assert plugin is not None and plugin.proc is not None
        standin.wait_for(lambda: plugin.call("lens-status")["last_analysis"], timeout=1800)
        standin.wait_for(lambda: (plugin.call("lens-status")["liquidity_model"] or {}).get("last_run"), timeout=1800)
        plugin.call("lens-opportunities", ["3h"], timeout=1800)
        plugin.call("lens-opportunities", ["2h"], timeout=1800)
        time.sleep(2)
        return rss_mb(plugin.proc.pid)
    finally:
        standin.close()


NAMES = {"cln": "CLN plugin ", "lnd": "LND sidecar"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500000,1000000,2000000", help="forwards per store, comma-separated")
    parser.add_argument("--stores", type=Path, default=STORES, help=f"keep the filled stores here (default {STORES})")
    parser.add_argument("--only", choices=("cln", "lnd"), help="one adapter only")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    with tempfile.TemporaryDirectory(prefix="lnlens-bench-mem-") as tmp:
        folder = args.stores
        folder.mkdir(parents=True, exist_ok=True)
        bare = {"cln": bare_rss_mb(), "lnd": bare_rss_mb("lnlens_lnd.cli, lnlens_lnd.sidecar, lnlens_core.lens, "
                                                          "lnlens_core.opportunities.run")}  # fmt: skip
        print(f"memory, {CHANNELS:,} channels, {PAIRS:,} pairs; baseline, same run: a process that only imports the "
              f"adapter's modules, CLN plugin {bare['cln']:.0f} MB, LND sidecar {bare['lnd']:.0f} MB",
              flush=True)  # fmt: skip
        figures: dict[str, list[tuple[int, float, float]]] = {"cln": [], "lnd": []}
        for n in sizes:
            db = store(folder, n)
            for adapter in ("cln", "lnd"):
                if args.only not in (None, adapter):
                    continue
                with tempfile.TemporaryDirectory(prefix="lnl", dir=tmp) as work:
                    t0 = time.perf_counter()
                    if adapter == "cln":
                        rss, peak = plugin_rss(db, Path(work))
                    else:
                        copy = Path(work) / "db.sqlite3"
                        shutil.copyfile(db, copy)
                        rss, peak, _ = sidecar_rss(copy, Path(work))
                figures[adapter].append((n, rss, peak))
                print(f"  {NAMES[adapter]} {n:>9,} forwards: RSS {rss:4.0f} MB warm, peak {peak:4.0f} MB "
                      f"(aim < {AIM_MB} MB; bare imports {bare[adapter]:.0f} MB, same run; "
                      f"{time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip
        for adapter, rows in figures.items():
            for (n0, rss0, peak0), (n1, rss1, peak1) in zip(rows, rows[1:], strict=False):
                per = 1_000_000 / (n1 - n0)
                warm, high = (rss1 - rss0) * per, (peak1 - peak0) * per
                last = n1 == rows[-1][0]
                verdict = (f"; flat (aim: under {FLAT_MB} MB per million): "
                           f"{'yes' if max(warm, high) < FLAT_MB else 'no'}") if last else ""  # fmt: skip
                print(f"  {NAMES[adapter]} growth per million forwards, {n0:,} -> {n1:,}: {warm:+.0f} MB warm, "
                      f"{high:+.0f} MB peak{verdict}")  # fmt: skip
    sys.stdout.flush()


if __name__ == "__main__":
    main()
