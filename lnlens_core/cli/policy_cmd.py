"""``lnlens policy check|plan|apply|history|rollback|explain``: the fee policy engine from the shell.

``plan`` and ``explain`` never change anything. ``apply`` changes fees only with
``--confirm`` (or ``dry_run = false`` in the settings); without it, it prints the plan.
Commands that talk to a node take ``--backend NAME``: a factory from the
``lnlens.backends`` entry points, built from the settings table of the same name
(``[sim]`` for the simulator).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..backend import NodeBackend
from ..domain import ChannelId
from ..errors import ConfigError, LnlensError
from ..fees.api import history, plan_or_apply, rollback_change
from ..fees.chargelnd import check_policy_file
from ..fees.engine import FeeEngine
from ..fees.plan import EMIT_FORMATS, describe_changes, emit_commands
from ..fees.rails import rails_from_table
from ..fees.sample import SAMPLE_POLICY
from ..lens import Lens
from ..plugins import get_plugin_manager
from ..storage import Store
from . import policy_experiment
from .context import CliContext, add_json_flag, duration_arg, duration_or_zero_arg, int_arg
from .node import backend_lens


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("policy", help="fee policy: check, plan, apply, history, rollback, explain, experiment")
    psub = p.add_subparsers(dest="policy_command", metavar="SUBCOMMAND", required=True)
    check = psub.add_parser("check", help="validate a charge-lnd-format policy file and the [policy] rails")
    check.add_argument("file", nargs="?", help="policy file (default: the configured one)")
    add_json_flag(check)
    check.set_defaults(handler=cmd_check)
    sample = psub.add_parser("sample", help="print a starting policy file (accepted by policy check)")
    sample.set_defaults(handler=cmd_sample)
    for name, handler, text in (
        ("plan", cmd_plan, "what would change now (changes nothing)"),
        ("apply", cmd_apply, "apply the plan (needs --confirm, else prints the plan)"),
        ("explain", cmd_explain, "every matcher, the strategy's inputs and outputs and the rails for one channel"),
    ):
        q = psub.add_parser(name, help=text)
        if name == "explain":
            q.add_argument("channel", type=_channel, help="BLOCKxTXxOUT")
        _node_args(q)
        if name == "plan":
            q.add_argument("--emit", choices=EMIT_FORMATS, help="print lncli/lightning-cli commands instead")
            q.add_argument("--channel", type=_channel, help="only this channel")
        if name == "apply":
            q.add_argument("--confirm", action="store_true", help="really change fees on the node")
            _wait_arg(q)
        add_json_flag(q)
        q.set_defaults(handler=handler)
    hist = psub.add_parser("history", help="the fee journal, with measured outcomes per change and per policy")
    hist.add_argument("--channel", type=_channel)
    hist.add_argument(
        "--window", type=duration_arg, default=None, help="outcome window (default: rails' rollback_window)"
    )
    add_json_flag(hist)
    hist.set_defaults(handler=cmd_history)
    rb = psub.add_parser("rollback", help="restore the exact policy from before a change")
    which = rb.add_mutually_exclusive_group(required=True)
    which.add_argument("--change", type=int_arg(1), metavar="ID", help="journal id (see policy history)")
    which.add_argument("--channel", type=_channel, help="the channel's last applied change")
    _node_args(rb, policy=False)
    _wait_arg(rb)
    add_json_flag(rb)
    rb.set_defaults(handler=cmd_rollback)
    policy_experiment.register(psub)


def _node_args(p: argparse.ArgumentParser, *, policy: bool = True) -> None:
    p.add_argument("--backend", default="sim", help="node backend from the lnlens.backends entry points (default sim)")
    if policy:
        p.add_argument("--policy", help="policy file (default: the configured one)")
    p.add_argument("--sim-warmup", type=duration_or_zero_arg, default=0, metavar="DURATION",
                   help="with the simulator: simulate this much traffic into the store first (e.g. 1d)")  # fmt: skip


def _wait_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", type=duration_or_zero_arg, default=0, metavar="DURATION",
                   help="when another process is changing fees on this database, wait this long (default: "
                        "give up at once, naming it)")  # fmt: skip


def _channel(text: str) -> ChannelId:
    try:
        return ChannelId.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _lens(args: argparse.Namespace, ctx: CliContext) -> tuple[Lens, NodeBackend]:
    lens = backend_lens(args.backend, ctx)
    backend = lens.backend
    assert backend is not None
    warmup = getattr(args, "sim_warmup", 0)
    if warmup:
        run = getattr(backend, "run", None)
        if run is None:
            raise ConfigError("--sim-warmup works with the simulator only")
        backend.attach(lens.monitor)  # type: ignore[attr-defined]
        run(warmup)
        _snapshot(ctx, lens, backend)
    return lens, backend


def _snapshot(ctx: CliContext, lens: Lens, backend: NodeBackend) -> None:
    """Store the channels as the node has them now, so ``channels`` and fee histories see the change."""
    ctx.store().add_snapshots(backend.list_channels(), time=lens.clock.now())


def _engine(args: argparse.Namespace, ctx: CliContext) -> tuple[Lens, NodeBackend, FeeEngine]:
    lens, backend = _lens(args, ctx)
    path = Path(args.policy) if getattr(args, "policy", None) else None
    return lens, backend, FeeEngine.from_config(lens, backend, policy_path=path)


def cmd_check(args: argparse.Namespace, ctx: CliContext) -> int:
    config = ctx.config()
    path = Path(args.file) if args.file else config.policy_path
    problems: list[str] = []
    warnings: tuple[str, ...] = ()
    if path is None:
        problems.append("no policy file: give FILE or set policy = FILE in the settings")
    else:
        # Strategies only: a policy file is checked without any database.
        lens = Lens(config, store=Store(None), clock=ctx.clock, pm=get_plugin_manager(blocked=config.blocked_plugins))
        report = check_policy_file(path, lens.strategies)
        problems.extend(report.problems)
        warnings = report.warnings
    try:
        rails_from_table(config.backends.get("policy"))
    except ConfigError as exc:
        problems.extend(exc.problems)
    data = {"file": str(path) if path else None, "ok": not problems, "problems": problems, "warnings": list(warnings)}

    def render(console: Console) -> None:
        for w in warnings:
            console.print(f"warning: {w}", markup=False)
        for p in problems:
            console.print(f"problem: {p}", markup=False)
        console.print(f"{path}: {'OK' if not problems else f'{len(problems)} problem(s)'}", markup=False)

    ctx.emit(data, render)
    return 0 if not problems else 2


def cmd_sample(args: argparse.Namespace, ctx: CliContext) -> int:
    print(SAMPLE_POLICY, end="")
    return 0


def _render_plan(console: Console, plan: dict[str, Any], title: str) -> None:
    """The plan table, from :meth:`Plan.to_json` (the same data ``--json`` prints)."""
    table = Table(title=title)
    for col in ("channel", "alias", "policy", "strategy", "old → new", "status", "reason"):
        table.add_column(col, overflow="fold")
    for c in plan["channels"]:
        vetoes = "; ".join(f"{v['plugin']}: {v['reason']}" for v in c["vetoes"])
        why = c["error"] or c["blocked"] or vetoes or c["reason"]
        if c["rails"]:
            why += f" [rails: {'; '.join(c['rails'])}]"
        moves = ", ".join(f"{k} {v['old']} → {v['new']}" for k, v in c["changes"].items()) or "-"
        table.add_row(
            c["short_channel_id"], c["alias"], c["policy"] or "-", c["strategy"] or "-", moves, c["status"], why
        )
    console.print(table)
    for note in plan["notes"]:
        console.print(f"note: {note}", markup=False)
    for c in plan["channels"]:
        for note in c["notes"]:
            console.print(f"note ({c['short_channel_id']}): {note}", markup=False)


def _result_line(d: dict[str, Any]) -> str:
    return f"#{d['journal_id']} {d['short_channel_id']}: {d['state']}" + (f" ({d['detail']})" if d["detail"] else "")


def cmd_plan(args: argparse.Namespace, ctx: CliContext) -> int:
    _, _, engine = _engine(args, ctx)
    plan = engine.plan(only=args.channel)
    if args.emit:
        print("\n".join(emit_commands(plan, args.emit)))
        return 0
    n, data = len(plan.to_apply()), plan.to_json()
    ctx.emit(data, lambda c: _render_plan(c, data, f"Fee plan on {plan.backend}: {n} change(s), dry run"))
    return 0


def cmd_apply(args: argparse.Namespace, ctx: CliContext) -> int:
    really = args.confirm or not ctx.config().dry_run
    if really:  # held from before the node is opened until its state is saved (a simulator's, between commands)
        ctx.hold_writer_lock(wait_s=args.wait)
    lens, backend = _lens(args, ctx)
    path = Path(args.policy) if args.policy else None
    data = plan_or_apply(lens, backend, apply=really, policy_path=path)
    if data["results"] or data["reconciled"] or data["auto_rollbacks"]:
        _snapshot(ctx, lens, backend)

    def render(console: Console) -> None:
        mode = "applied" if really else "dry run (pass --confirm to apply)"
        _render_plan(console, data["plan"], f"Fee plan on {data['plan']['backend']}: {mode}")
        for d in [*data["reconciled"], *data["auto_rollbacks"], *data["results"]]:
            console.print(_result_line(d), markup=False)

    ctx.emit(data, render)
    return 1 if any(d["state"] == "failed" for d in data["results"]) else 0


def cmd_explain(args: argparse.Namespace, ctx: CliContext) -> int:
    _, _, engine = _engine(args, ctx)
    plan = engine.plan(only=args.channel, explain=True, emit=False)
    (change,) = plan.changes
    data = change.to_json()

    def render(console: Console) -> None:
        console.print(f"{change.channel_id} {change.alias} (chosen by {change.chosen_by})", markup=False)
        for line in change.explain:
            console.print(f"  {line}", markup=False)
        if change.chosen_by != "policy-file":
            console.print(f"  strategy: {change.strategy} from {change.policy}: {change.reason}", markup=False)
        console.print(f"  proposed: {change.proposed.fields_set() if change.proposed else 'nothing'}", markup=False)
        for rail in change.rails:
            console.print(f"  rail: {rail}", markup=False)
        if change.blocked:
            console.print(f"  blocked: {change.blocked}", markup=False)
        for plugin, reason in change.vetoes:
            console.print(f"  vetoed by {plugin}: {reason}", markup=False)
        console.print(f"  result: {describe_changes(change)} ({change.status})", markup=False)
        for note in plan.notes:
            console.print(f"  note: {note}", markup=False)

    ctx.emit(data, render)
    return 0


def cmd_history(args: argparse.Namespace, ctx: CliContext) -> int:
    data = history(ctx.lens(readonly=True), channel=args.channel, window_s=args.window)
    window = data["window_s"]

    def render(console: Console) -> None:
        table = Table(title=f"Fee journal (outcomes over ±{window / 3600:.0f} h)")
        for col in ("id", "channel", "state", "policy/strategy", "reason", "revenue Δ msat (95 %)", "detail"):
            table.add_column(col, overflow="fold")
        for r in data["changes"]:
            o = r["outcome"]
            delta = "-" if o is None else f"{o['revenue_delta_msat']:+d} ±{o['revenue_band_msat']}"
            if o is not None and not o["complete"]:
                delta += " (window open)"
            who = f"{r['policy'] or '-'}/{r['strategy'] or '-'}"
            ref = f" (undoes #{r['rollback_of']})" if r["rollback_of"] else ""
            table.add_row(str(r["id"]), r["channel_id"], r["state"], who, r["reason"] + ref, delta, r["detail"] or "")
        console.print(table)
        for name, agg in data["policies"].items():
            console.print(f"policy {name}: {agg['changes']} change(s), revenue {agg['revenue_delta_msat']:+d} "
                          f"±{agg['revenue_band_msat']} msat, flow {agg['volume_delta_msat']:+d} "
                          f"±{agg['volume_band_msat']} msat", markup=False)  # fmt: skip

    ctx.emit(data, render)
    return 0


def cmd_rollback(args: argparse.Namespace, ctx: CliContext) -> int:
    ctx.hold_writer_lock(wait_s=args.wait)
    lens, backend = _lens(args, ctx)
    done = rollback_change(lens, backend, change_id=args.change, channel=args.channel)
    _snapshot(ctx, lens, backend)
    ctx.emit(done, lambda c: c.print(_result_line(done), markup=False))
    if done["state"] == "failed":
        raise LnlensError(f"rollback of {done['short_channel_id']} failed: {done['detail']}")
    return 0
