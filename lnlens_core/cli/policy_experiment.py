"""``lnlens policy experiment POLICY_FILE``: a seeded A/B of a policy on the simulator, with a holdout.

Each seed builds a fresh simulator from the ``[sim]`` settings with that seed (never the
database's own simulated node, never the database), splits its channels into treatment and
holdout, and runs the policy through the engine exactly as ``policy apply`` does, with the
``[policy]`` rails (docs/FEES.md, "Experiments").
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..errors import ConfigError
from ..fees.chargelnd import load_policy_file
from ..fees.experiment import DAY_S, run_experiment
from ..fees.rails import rails_from_table
from ..fees.simrun import require_simulator
from ..lens import Lens
from ..plugins import get_plugin_manager
from ..storage import Store
from .context import MAX_DAYS, CliContext, add_json_flag, duration_arg, duration_or_zero_arg, float_arg, int_arg
from .node import backend_factory

DEFAULT_SEEDS = (1, 2, 3, 4, 5)


def register(psub: argparse._SubParsersAction) -> None:
    q = psub.add_parser(
        "experiment", help="seeded A/B of a policy file on the simulator: treatment channels against a holdout"
    )
    q.add_argument("policy_file", metavar="POLICY_FILE", help="the charge-lnd-format policy file to try")
    q.add_argument("--days", type=float_arg(0, MAX_DAYS, above=True), default=3.0,
                   help="simulated days the policy runs, per seed (default 3)")  # fmt: skip
    q.add_argument("--seeds", type=int_arg(0), nargs="+", default=list(DEFAULT_SEEDS), metavar="SEED",
                   help="one simulation per seed (default 1 2 3 4 5)")  # fmt: skip
    q.add_argument("--holdout", type=_share, default=0.5, metavar="SHARE",
                   help="share of channels left untouched, 0 < SHARE < 1 (default 0.5)")  # fmt: skip
    q.add_argument("--warmup", type=duration_or_zero_arg, default=86_400, metavar="DURATION",
                   help="simulated traffic before the policy starts, not measured (default 1d)")  # fmt: skip
    q.add_argument("--interval", type=duration_arg, default=None, metavar="DURATION",
                   help="how often the engine runs (default: the interval setting)")  # fmt: skip
    q.add_argument("--backend", default="sim", help="a backend that simulates its own traffic (default sim)")
    add_json_flag(q)
    q.set_defaults(handler=cmd_experiment)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _share(text: str) -> float:
    value = _positive(text)
    if not value < 1:
        raise argparse.ArgumentTypeError("must be less than 1 (the treatment needs channels too)")
    return value


def _check_inputs(args: argparse.Namespace, ctx: CliContext, path: Path) -> None:
    """Every problem with the policy file and the rails before any simulation runs (as ``policy check``)."""
    config = ctx.config()
    problems = []
    if len(set(args.seeds)) != len(args.seeds):
        problems.append(f"--seeds: each seed once (got {' '.join(map(str, args.seeds))})")
    lens = Lens(config, store=Store(None), clock=ctx.clock, pm=get_plugin_manager(blocked=config.blocked_plugins))
    try:
        load_policy_file(path, lens.strategies)
    except ConfigError as exc:
        problems.extend(exc.problems)
    try:
        rails_from_table(config.backends.get("policy"))
    except ConfigError as exc:
        problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)


def cmd_experiment(args: argparse.Namespace, ctx: CliContext) -> int:
    path = Path(args.policy_file)
    _check_inputs(args, ctx, path)
    config = ctx.config()
    make = backend_factory(args.backend, ctx)

    def make_backend(seed: int):
        backend = make({"seed": seed})
        require_simulator(backend, "policy experiment")
        return backend

    interval = args.interval or config.interval_s
    per_seed = args.warmup + args.days * DAY_S
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeRemainingColumn(), console=ctx.err, transient=True,
                  disable=not ctx.err.is_terminal) as bar:  # fmt: skip
        task = bar.add_task("simulating", total=per_seed * len(args.seeds))

        def progress(seed: int, done: float) -> None:
            bar.update(task, advance=done, description=f"seed {seed}")

        try:
            result = run_experiment(make_backend, config, path, seeds=args.seeds, days=args.days,
                                    warmup_s=args.warmup, interval_s=interval, holdout_share=args.holdout,
                                    progress=progress)  # fmt: skip
        except ValueError as exc:  # e.g. a node with a single channel cannot be split
            raise ConfigError(f"policy experiment: {exc}") from None
    data = result.to_json()
    ctx.emit(data, lambda console: render(console, data))
    return 0


_SHORT = {
    "revenue_ppm_day": "revenue, ppm of capacity/day",
    "forwards_per_channel_day": "forwards/channel/day",
    "success_rate": "success rate",
    "net_change_share": "net change, % of capacity",
}


def _fmt(value: float | None, metric: str) -> str:
    if value is None:
        return "-"
    if metric == "success_rate":
        return f"{value:.3f}"
    if metric == "net_change_share":
        return f"{value:+.1%}"
    return f"{value:,.1f}"


def render(console: Console, data: dict[str, Any]) -> None:
    """The report from :meth:`ExperimentResult.to_json` (the data ``--json`` prints)."""
    seeds = data["seeds"]
    console.print(f"{data['policy_file']}: {len(seeds)} seed(s), {data['days']:g} simulated day(s) each after "
                  f"{data['warmup_s'] / 3600:g} h of warm-up; engine every {data['interval_s'] / 60:g} min; holdout "
                  f"{data['holdout_share']:.0%} of the channels", markup=False, highlight=False)  # fmt: skip
    compact = {"box": box.SIMPLE_HEAD, "pad_edge": False, "collapse_padding": True}
    per_seed = Table(title="Per seed, experiment period", **compact)
    for col in ("seed", "group", "channels", "BTC", "revenue sat", "forwards", "success", "net Δ"):
        per_seed.add_column(col, justify="left" if col == "group" else "right", no_wrap=True)
    for s in seeds:
        for group in ("treatment", "holdout"):
            g = s[group]
            per_seed.add_row(str(s["seed"]), group, str(len(g["channels"])), f"{g['capacity_msat'] / 1e11:.2f}",
                             f"{g['revenue_msat'] // 1000:,}", f"{g['forwards']:,}",
                             _fmt(g["success_rate"], "success_rate"),
                             _fmt(g["net_change_share"], "net_change_share"))  # fmt: skip
    console.print(per_seed)
    for s in seeds:
        console.print(f"seed {s['seed']}: the engine ran {s['engine_runs']} times: {s['applied']} change(s) applied "
                      f"on treatment channels, {s['blocked']} time(s) a channel was held by the rails, "
                      f"{s['vetoed']} vetoed, {s['failed']} failed", markup=False, highlight=False)  # fmt: skip
    table = Table(title="Treatment against holdout, mean over seeds", **compact)
    for col in ("metric", "treatment", "holdout", "difference", "95 % band"):
        table.add_column(col, justify="left" if col == "metric" else "right", no_wrap=col != "metric")
    for c in data["comparisons"]:
        m = c["metric"]
        band = "-" if c["band"] is None else f"{_fmt(c['band'][0], m)} to {_fmt(c['band'][1], m)}"
        table.add_row(_SHORT[m], _fmt(c["treatment"], m), _fmt(c["holdout"], m), _fmt(c["difference"], m), band)
    console.print(table)
    for c in data["comparisons"]:
        console.print(c["verdict"], markup=False, highlight=False)
    touched = sum(s["holdout_changes"] for s in seeds)
    if touched:
        console.print(f"warning: the engine changed holdout channels {touched} time(s)", markup=False)
