"""``lnlens sim run``: simulate days of a routing node's life into the lnlens database.
``lnlens sim sweep``: strategy bake-offs over (node, seed, policy) on Dask, with paired statistics.

Forwards reach the store through ``HtlcMonitor.record(batch, source="sim")`` once per
tick, as a real adapter's do, so every plugin's ``track_event`` sees them; channel
snapshots are written every ``--snapshot-every`` simulated seconds.
"""

from __future__ import annotations

import argparse
import logging
import re
import time
from collections import Counter, defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lnlens_core.cli.context import MAX_DAYS, CliContext, add_json_flag, duration_arg, float_arg, int_arg
from lnlens_core.config import parse_duration
from lnlens_core.domain import ForwardStatus
from lnlens_core.errors import ConfigError
from lnlens_core.lens import Lens
from lnlens_core.untrusted import styled

from .competitors import ReactiveFees
from .export import AttemptLog, write_events_csv
from .network import BALANCE_RULES
from .node import SimNode
from .rebalance import AutoRecoveryRebalancer
from .scenario import MAX_NODES, NETWORKS, SimSettings, build, load_graph
from .sweep import FEE_SCALES, POLICIES

__all__ = ["register", "summary", "render_sweep"]

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    sim = sub.add_parser("sim", help="the built-in simulator on the real mainnet graph")
    simsub = sim.add_subparsers(dest="sim_command", metavar="SUBCOMMAND", required=True)
    run = simsub.add_parser("run", help="simulate traffic and store forwards and channel snapshots")
    run.add_argument("--network", default="mainnet", metavar="NAME|PATH",
                     help=f"{', '.join(NETWORKS)}, a *.compressed gossip map or a sim-ln JSON file")  # fmt: skip
    run.add_argument("--nodes", type=int_arg(3, MAX_NODES),
                     help="neighbourhood size around the node (synthetic: graph size)")  # fmt: skip
    run.add_argument("--node", help="managed node: index, pubkey or alias (default: see docs/SIMULATOR.md)")
    run.add_argument("--days", type=float_arg(0, MAX_DAYS, above=True), required=True,
                     help=f"simulated days (up to {MAX_DAYS:,})")  # fmt: skip
    run.add_argument("--seed", type=int_arg(0), required=True, help="seed: same seed and actions, same event stream")
    run.add_argument("--db", dest="sim_db", metavar="PATH", help="database file (same as the global --db)")
    run.add_argument("--balances", choices=BALANCE_RULES, help="initial balance rule (default per network)")
    run.add_argument("--payments-per-hour", type=float_arg(0, 1e9, above=True), help="network-wide mean payment rate")
    run.add_argument("--gossip-delay", default="10m", help="time until senders hear our policy changes")
    run.add_argument("--snapshot-every", type=duration_arg, default="1h", help="channel snapshot interval (simulated)")
    run.add_argument("--rebalancer", choices=("none", "auto-recovery"), default="none",
                     help="run LightningLens's auto-recovery rebalancer as a baseline (cost counted)")  # fmt: skip
    run.add_argument("--reactive-fees", action="store_true",
                     help="our peers reprice their channels by liquidity every 6 h (default: static fees)")  # fmt: skip
    run.add_argument("--csv", metavar="FILE", help="also write the event stream as CSV (schema in docs)")
    run.add_argument("--attempts-csv", metavar="FILE", help="also log every HTLC attempt in the network as CSV")
    add_json_flag(run)
    run.set_defaults(handler=cmd_run)
    _register_sweep(simsub)


def _register_sweep(simsub: argparse._SubParsersAction) -> None:
    sweep = simsub.add_parser("sweep", help="policies x seeds x nodes on Dask, with paired statistics")
    sweep.add_argument("--out", required=True, metavar="FILE",
                       help="results file (JSON lines): each task's result is appended as it finishes, and a "
                            "rerun skips the tasks already in it")  # fmt: skip
    sweep.add_argument("--node", action="append", metavar="NODE",
                       help="managed node (pubkey, alias or index; repeatable); default: sized ones")  # fmt: skip
    sweep.add_argument("--centres", type=int, default=3, help="how many nodes of different sizes (default 3)")
    sweep.add_argument("--seeds", default="1001-1024", help="seeds: 1001-1024 or 5,7,9 (default 1001-1024)")
    sweep.add_argument("--policies", default=",".join(p for p in POLICIES if p not in FEE_SCALES),
                       help=f"comma-separated, from {', '.join(POLICIES)} (default: all but the fees-x* "
                            "demand-response arms)")  # fmt: skip
    sweep.add_argument("--nodes", type=int, default=200, help="neighbourhood size around each node (default 200)")
    sweep.add_argument("--warmup", default="24h", help="simulated warm-up before the evaluation (default 24h)")
    sweep.add_argument("--eval", default="48h", help="simulated evaluation window (default 48h)")
    sweep.add_argument("--every", default="6h", help="how often a policy acts (default 6h)")
    sweep.add_argument("--workers", type=int, default=1, help="local cluster's worker processes (default 1)")
    sweep.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler (tcp://host:8786) instead")
    sweep.add_argument("--plot", metavar="FILE", help="also draw the differences vs no action (PNG)")
    add_json_flag(sweep)
    sweep.set_defaults(handler=cmd_sweep)


def _hours(text: str, flag: str) -> float:
    try:
        value = parse_duration(text) / 3_600
    except ValueError as exc:
        raise ConfigError(f"{flag}: {exc}") from None
    if value <= 0 and flag != "--warmup":
        raise ConfigError(f"{flag}: must be positive")
    return value


def cmd_sweep(args: argparse.Namespace, ctx: CliContext) -> int:
    from .sweep import ResultStore, SweepSpec, execute, iter_seeds, sized_centres, tasks_of
    from .sweepstats import summarise

    spec = SweepSpec(nodes=args.nodes, warmup_h=_hours(args.warmup, "--warmup"), eval_h=_hours(args.eval, "--eval"),
                     every_h=_hours(args.every, "--every"))  # fmt: skip
    if args.workers < 1:
        raise ConfigError("--workers: at least 1")
    seeds = list(dict.fromkeys(iter_seeds(args.seeds)))
    if not seeds:
        raise ConfigError("--seeds: no seed given")
    graph = load_graph(SimSettings(network=spec.network))
    if args.node:
        try:
            centres = [graph.pubkeys[graph.find_node(n)] for n in args.node]
        except KeyError as exc:
            raise ConfigError(f"--node: {exc.args[0]}") from None
    else:
        centres = sized_centres(graph, args.centres)
    tasks = tasks_of(spec, centres, seeds, [p for p in args.policies.split(",") if p])
    store = ResultStore(Path(args.out))
    for problem in store.problems:
        ctx.err.print(problem, soft_wrap=True, markup=False)
    todo = [t for t in tasks if t.key not in store.rows]
    failures: list[str] = []
    if todo:
        with Progress(TextColumn("[bold]sweep"), BarColumn(), TextColumn("{task.completed}/{task.total} tasks"),
                      TimeElapsedColumn(), console=ctx.err, transient=True) as progress:  # fmt: skip
            bar = progress.add_task("sweep", total=len(tasks), completed=len(tasks) - len(todo))

            def done(row: dict[str, Any]) -> None:
                store.add(row)
                progress.advance(bar)

            def failed(task, exc: BaseException) -> None:
                failures.append(f"{task.centre[:16]} seed {task.seed} {task.policy}: {exc}")
                progress.advance(bar)

            execute(todo, done, scheduler=args.scheduler, workers=args.workers, on_error=failed)
    for line in failures:
        ctx.err.print(f"task failed (it runs again on the next sweep): {line}", soft_wrap=True, markup=False)
    report = summarise(store.of(tasks))
    report.update(spec=asdict(spec), seeds=seeds, nodes=centres, results=str(store.path), tasks=len(tasks),
                  ran=len(todo) - len(failures), failed=len(failures))  # fmt: skip
    if args.plot and report["groups"]:
        from lnlens_core.model.plots import sweep_differences

        sweep_differences(report["groups"], Path(args.plot))
        report["plot"] = args.plot
    ctx.emit(report, lambda console: render_sweep(console, report))
    return 1 if failures else 0


def _sat(msat: int | None) -> str:
    return "" if msat is None else f"{msat / 1000:+,.0f}"


def _versus(v: dict[str, Any] | None) -> list[str]:
    if not v:
        return ["", "", "", ""]
    interval = f"{_sat(v['mean_msat'])} [{_sat(v['low_msat'])}, {_sat(v['high_msat'])}]"
    p = "" if v["p_holm"] is None else f"{v['p_holm']:.3g}"
    return [interval, p, f"{v['wins']}/{v['losses']}", "" if v["seeds_needed"] is None else f"{v['seeds_needed']:,}"]


def render_sweep(console: Console, report: dict[str, Any]) -> None:
    spec = report["spec"]
    console.print(styled(("lnlens sim sweep", "bold"), f" {len(report['nodes'])} node(s) x {len(report['seeds'])} "
                         f"seed(s), neighbourhoods of {spec['nodes']}, {spec['warmup_h']:g} h warm-up, "
                         f"{spec['eval_h']:g} h evaluated, actions every {spec['every_h']:g} h; results in "
                         f"{report['results']}"))  # fmt: skip
    for group in report["groups"]:
        table = Table(title=f"{group['alias']} ({group['channels'] or '-'} channels, {group['seeds']} seeds); "
                      f"best rule: {group['best_rule'] or '-'}", title_justify="left")  # fmt: skip
        table.add_column("policy", no_wrap=True)
        for name in ("net/run", "success", "rebal.", "Δ none [95 % CI]", "p", "W/L", "n80", "Δ best rule [95 % CI]",
                     "p", "W/L", "n80"):  # fmt: skip
            table.add_column(name, justify="right")
        for p in group["policies"]:
            rate = "" if p["success_rate"] is None else f"{p['success_rate']:.3f}"
            table.add_row(p["policy"], f"{p['mean_net_msat'] / 1000:,.0f}", rate,
                          f"{p['rebalances_ok']}/{p['rebalances']}", *_versus(p["vs_none"]),
                          *_versus(p["vs_best_rule"]))  # fmt: skip
        console.print(table)
    console.print(
        "sat per run of the evaluation window; Δ: paired by seed, mean and 95 % t-interval; p: paired t-test "
        f"after Holm's correction over {report['comparisons']} comparisons; W/L: seeds won/lost; n80: seeds "
        "needed for 80 % power at 5 % to see the observed mean difference; rebal.: rebalances done/tried."
    )

    if report.get("plot"):
        console.print(f"plot: {report['plot']}")


def _settings(args: argparse.Namespace) -> SimSettings:
    try:
        gossip = parse_duration(args.gossip_delay)
    except ValueError as exc:
        raise ConfigError(f"--gossip-delay: {exc}") from None
    settings = SimSettings(network=args.network, node=args.node, nodes=args.nodes, seed=args.seed,
                           balances=args.balances, gossip_delay_s=float(gossip),
                           payments_per_hour=args.payments_per_hour)  # fmt: skip
    try:
        settings.validate()
    except ConfigError as exc:  # name the flags that were given, not the [sim] settings
        flags = [re.sub(r"^sim\.(\w+)", lambda m: "--" + m[1].replace("_", "-"), p) for p in exc.problems]
        raise ConfigError(flags) from None
    return settings


def cmd_run(args: argparse.Namespace, ctx: CliContext) -> int:
    settings = _settings(args)
    snapshot_s = args.snapshot_every
    db = args.sim_db or getattr(args, "db", None)
    config = ctx.config(db_path=db)
    wall0 = time.perf_counter()  # progress and speed only: simulated time comes from the node's ManualClock
    node = build(settings)  # before the database: settings or a network that cannot be used leave no file behind
    load_s = time.perf_counter() - wall0
    store = ctx.store(create=True)
    # Later commands read this database on its own (simulated) time, not the wall clock.
    store.set_meta("clock", "simulated")
    newest = store.latest_data_time()
    if newest is not None:
        # A database that already holds a run: continue its history (clock after its newest data, HTLC ids
        # after the stored ones), never replay its first day over it, which would drop forwards as repeats.
        node.continue_after(newest, store.next_htlc_ids())
    lens = Lens(config, store=store, clock=node.clock, backend=node)
    node.attach(lens.monitor)
    rebalancer = AutoRecoveryRebalancer() if args.rebalancer == "auto-recovery" else None
    reactive = ReactiveFees(node) if args.reactive_fees else None
    attempt_log = AttemptLog(node) if args.attempts_csv else None
    if attempt_log is not None:
        node.payment_observers.append(attempt_log)
    total = args.days * 86_400
    start = node.clock.now()
    next_snapshot = [start]

    with Progress(TextColumn("[bold]simulating"), BarColumn(), TextColumn("{task.fields[status]}"),
                  TimeElapsedColumn(), console=ctx.err, transient=True,
                  disable=getattr(args, "json", False)) as progress:  # fmt: skip
        task = progress.add_task("sim", total=total, status="")

        def on_tick(n: SimNode, batch: list) -> None:
            now = n.clock.now()
            if rebalancer is not None:
                rebalancer(n, batch)
            if reactive is not None:
                reactive(n, batch)
            if now >= next_snapshot[0]:
                store.add_snapshots(n.list_channels(), time=now)
                next_snapshot[0] = now + snapshot_s
            progress.update(task, completed=now - start,
                            status=f"day {(now - start) / 86_400:.2f}, {n.stats.payments:,} payments")  # fmt: skip

        store.add_snapshots(node.list_channels(), time=start)
        next_snapshot[0] = start + snapshot_s
        node.run(total, on_tick=on_tick)
    wall = time.perf_counter() - wall0
    store.add_snapshots(node.list_channels(), time=node.clock.now())
    csv_rows = write_events_csv(node, Path(args.csv)) if args.csv else None
    data = summary(node, days=args.days, seed=args.seed, wall_s=wall, load_s=load_s)
    data["db"] = str(store.path)
    if rebalancer is not None:
        ok = [a for a in rebalancer.actions if a.ok]
        data["rebalancer"] = {
            "attempts": len(rebalancer.actions),
            "succeeded": len(ok),
            "volume_sat": rebalancer.volume_msat // 1000,
            "fees_msat": rebalancer.fee_msat,
        }
    if csv_rows is not None:
        data["csv"] = {"path": args.csv, "rows": csv_rows}
    if attempt_log is not None:
        data["attempts_csv"] = {"path": args.attempts_csv, "rows": attempt_log.write_csv(Path(args.attempts_csv))}
    ctx.emit(data, lambda console: render(console, data))
    return 0


def summary(node: SimNode, *, days: float, seed: int, wall_s: float, load_s: float) -> dict[str, Any]:
    """The closing figures of a run, as plain data (``--json`` prints exactly this)."""
    st, graph = node.stats, node.network.graph
    per: dict[str, dict[str, Any]] = defaultdict(lambda: {"settled": 0, "failed": 0, "revenue_msat": 0})
    reasons: Counter[str] = Counter()
    for e in node.events:
        row = per[str(e.out_channel)]
        if e.status is ForwardStatus.SETTLED:
            row["settled"] += 1
            row["revenue_msat"] += e.fee_msat or 0
        else:
            row["failed"] += 1
            reasons[e.failure_reason.value if e.failure_reason else "unknown"] += 1
    channels = {str(c.channel_id): c for c in node.list_channels()}
    top = sorted(per.items(), key=lambda kv: (-kv[1]["revenue_msat"], -kv[1]["settled"], kv[0]))[:5]
    info = node.get_info()
    return {
        "network": graph.name, "graph_nodes": graph.n_nodes, "graph_channels": graph.n_channels,
        "node": {"alias": info.alias, "pubkey": info.pubkey, "channels": len(channels)},
        "days": days, "seed": seed, "payments": st.payments, "settled": st.settled,
        "success_rate": round(st.success_rate, 4) if st.success_rate is not None else None,
        "attempts_per_payment": round(st.attempts / st.payments, 3) if st.payments else None,
        "our_forwards": len(node.events), "our_settled": st.our_settled, "our_failed": dict(sorted(reasons.items())),
        "revenue_msat": st.revenue_msat, "revenue_sat": st.revenue_msat // 1000,
        "top_channels": [
            {"channel_id": cid, "peer_alias": channels[cid].peer_alias if cid in channels else "",
             "local_ratio": round(channels[cid].balance_ratio or 0.0, 3) if cid in channels else None, **row}
            for cid, row in top
        ],
        "wall_seconds": round(wall_s, 1), "graph_load_seconds": round(load_s, 2),
        "payments_per_second": round(st.payments / max(wall_s - load_s, 1e-9)),
    }  # fmt: skip


def render(console: Console, data: dict[str, Any]) -> None:
    node = data["node"]
    console.print(styled(
        ("lnlens sim", "bold"), f" {data['network']} ({data['graph_nodes']:,} nodes, {data['graph_channels']:,} "
        "channels), our node ", (node["alias"] or node["pubkey"][:16], "bold"),
        f" ({node['channels']} channels), {data['days']:g} simulated day(s), seed {data['seed']}",
    ))  # fmt: skip
    rate = f"{data['success_rate']:.1%}" if data["success_rate"] is not None else "n/a"
    console.print(f"payments: {data['payments']:,}, network success rate {rate}, "
                  f"{data['attempts_per_payment']} attempts per payment")  # fmt: skip
    failed = ", ".join(f"{k} {v:,}" for k, v in data["our_failed"].items()) or "none"
    console.print(f"our forwards: {data['our_forwards']:,} - settled {data['our_settled']:,}; failed: {failed}")
    console.print(styled("revenue: ", (f"{data['revenue_sat']:,} sat", "bold"), f" ({data['revenue_msat']:,} msat)"))
    if data["top_channels"]:
        table = Table(title="top channels")
        table.add_column("channel", no_wrap=True)
        table.add_column("peer", overflow="ellipsis", max_width=24)
        for name in ("settled", "failed", "revenue (sat)", "local share"):
            table.add_column(name, justify="right")
        for row in data["top_channels"]:
            share = f"{row['local_ratio']:.0%}" if row["local_ratio"] is not None else ""
            table.add_row(row["channel_id"], row["peer_alias"], f"{row['settled']:,}", f"{row['failed']:,}",
                          f"{row['revenue_msat'] // 1000:,}", share)  # fmt: skip
        console.print(table)
    if "rebalancer" in data:
        r = data["rebalancer"]
        console.print(f"auto-recovery rebalancer: {r['succeeded']}/{r['attempts']} rebalances, "
                      f"{r['volume_sat']:,} sat moved for {r['fees_msat'] // 1000:,} sat in fees")  # fmt: skip
    if "csv" in data:
        console.print(f"events CSV: {data['csv']['path']} ({data['csv']['rows']:,} rows)")
    if "attempts_csv" in data:
        console.print(f"attempts CSV: {data['attempts_csv']['path']} ({data['attempts_csv']['rows']:,} rows)")
    speed = f"{data['payments_per_second']:,} payments/s after a {data['graph_load_seconds']} s graph load"
    console.print(f"database: {data['db']} - {data['wall_seconds']} s wall ({speed})")
