"""Memory benchmark for issue [M]: the CLN plugin's and the LND sidecar's RSS as the store grows.

For each store size (by default 100,000, 500,000 and 1,000,000 forwards over 30 days on 1,000 channels, 20,000
channel pairs, written directly as ``bench_cln.fill`` writes them), each adapter runs in a process of its own
against its stand-in for the node, as it runs beside a real one:

- **CLN plugin** (``lnlens-cln`` under the lightningd stand-in): warm once its first analysis is stored and two
  new windows (``lens-opportunities 3h`` and ``2h``) are answered;
- **LND sidecar** (``lnlens lnd run`` against the fake lnd): after its third analysis.

Each prints VmRSS (warm) and VmHWM (the peak since the process started), from /proc, beside the same-run baseline
of a process that only imports the adapter's modules, and the growth per million forwards between the sizes. The
process uses what is installed (with the ``train`` extra, online learning runs in child processes, which are not
counted: docs/MODEL.md).

Run with ``make bench`` or ``.venv/bin/python benchmarks/bench_memory.py [--sizes 100000,1000000]``;
``--stores DIR`` keeps the filled stores there and reuses them on the next run (a store older than a day is
filled again, as its month would no longer be the last one).
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
from lnlens_cln.standin import StandIn

from lnlens_core.clock import SystemClock

CHANNELS = 1000
PAIRS = 20_000


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
        plugin.call("lens-opportunities", ["3h"], timeout=1800)
        plugin.call("lens-opportunities", ["2h"], timeout=1800)
        return rss_mb(plugin.proc.pid)
    finally:
        standin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,500000,1000000", help="forwards per store, comma-separated")
    parser.add_argument("--stores", type=Path, help="keep the filled stores here and reuse them")
    parser.add_argument("--only", choices=("cln", "lnd"), help="one adapter only")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="lnlens-bench-mem-") as tmp:
        folder = args.stores or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        bare = {"cln": bare_rss_mb(), "lnd": bare_rss_mb("lnlens_lnd.cli, lnlens_lnd.sidecar, lnlens_core.lens, "
                                                          "lnlens_core.opportunities")}  # fmt: skip
        print(f"memory, {CHANNELS:,} channels, {PAIRS:,} pairs; a process that only imports the adapter's modules: "
              f"CLN plugin {bare['cln']:.0f} MB, LND sidecar {bare['lnd']:.0f} MB (same run)", flush=True)
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
                name = "CLN plugin " if adapter == "cln" else "LND sidecar"
                print(f"  {name} {n:>9,} forwards: RSS {rss:4.0f} MB warm, peak {peak:4.0f} MB (aim < 200 MB; bare "
                      f"imports {bare[adapter]:.0f} MB; {time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip
        for adapter, rows in figures.items():
            if len(rows) < 2:
                continue
            (n0, rss0, peak0), (n1, rss1, peak1) = rows[-2], rows[-1]
            per = 1_000_000 / (n1 - n0)
            name = "CLN plugin " if adapter == "cln" else "LND sidecar"
            print(f"  {name} growth from {n0:,} to {n1:,} forwards, per million: {(rss1 - rss0) * per:+.0f} MB warm, "
                  f"{(peak1 - peak0) * per:+.0f} MB peak")  # fmt: skip
    sys.stdout.flush()


if __name__ == "__main__":
    main()
