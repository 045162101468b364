"""``lnlens sim sweep`` on Dask against a plain loop over the same tasks, in the same run.

- plain loop: the tasks one after another in this process (lnlens_sim.sweep.run_local), the graph
  loaded once: the baseline;
- Dask, 1 worker and 2 workers: a LocalCluster of worker processes (one thread each), every task
  submitted at once and its result handed back as it finishes (lnlens_sim.sweep.execute), cluster
  start and stop included.

Figures: tasks per second for each, the 2-worker speed-up over 1 worker, and Dask's overhead per
task: (Dask with 1 worker - plain loop) / tasks. Small tasks (a 60-node neighbourhood, 2 h
evaluated) make the overhead visible; a real sweep's tasks take seconds to minutes each, so the
same overhead is a smaller share there. The machine is shared: figures vary from run to run.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/bench_sweep.py --tasks 8``).
"""

from __future__ import annotations

import argparse
from time import perf_counter

from lnlens_sim.sweep import SweepSpec, _graph, execute, run_local, sized_centres, tasks_of


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=12, help="tasks per measurement (default 12)")
    args = p.parse_args(argv)
    spec = SweepSpec(nodes=60, warmup_h=0.0, eval_h=2.0, every_h=1.0)
    centre = sized_centres(_graph(spec.network), 1)[0]
    tasks = tasks_of(spec, [centre], range(1, args.tasks // 2 + 1), ["none", "balance-based"])
    n = len(tasks)

    def timed(fn) -> float:
        rows: list[dict] = []
        t = perf_counter()
        fn(rows.append)
        elapsed = perf_counter() - t
        assert len(rows) == n
        return elapsed

    loop = timed(lambda sink: run_local(tasks, sink))
    one = timed(lambda sink: execute(tasks, sink, workers=1))
    two = timed(lambda sink: execute(tasks, sink, workers=2))
    print(f"{n} tasks (60-node neighbourhood, 2 h evaluated; graph already loaded in this process)")
    print(f"plain loop       {loop:7.2f} s  {n / loop:6.2f} tasks/s  (baseline)")
    print(f"Dask, 1 worker   {one:7.2f} s  {n / one:6.2f} tasks/s  {loop / one:.2f}x the loop's rate")
    print(f"Dask, 2 workers  {two:7.2f} s  {n / two:6.2f} tasks/s  {one / two:.2f}x 1 worker's rate")
    print(f"Dask overhead per task (1 worker vs the loop, cluster start/stop and graph load included): "
          f"{(one - loop) / n * 1000:.0f} ms")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
