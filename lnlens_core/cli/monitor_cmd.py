"""``lnlens monitor --backend sim``: the live loop — record forwards, analyze every interval, run the
liquidity model's loop (online learning, the promotion gate, predictions, drift), report.

On a real node the same loop runs inside lightningd (the ``lens-*`` plugin) or as
``lnlens lnd run``; here it drives a backend that makes its own traffic (the simulator),
so a simulated week of a node's life runs in minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from rich.console import Console

from ..errors import ConfigError
from ..model.loop import ModelLoop
from ..opportunities.flows import WINDOWS
from ..opportunities.run import run_analysis
from .context import CliContext, add_json_flag, duration_arg, int_arg
from .node import backend_lens
from .opportunities_cmd import render_table

_WINDOW_BY_NAME = {name: length for name, (length, _) in WINDOWS.items()}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("monitor", help="run the live loop against a backend that makes its own traffic (simulator)")
    p.add_argument("--backend", default="sim", help="a backend from the lnlens.backends entry points (default sim)")
    p.add_argument("--duration", type=duration_arg, default=86_400, help="how long to run (simulated), e.g. 7d")
    p.add_argument("--interval", type=duration_arg, default=None, help="analysis cadence (default: settings)")
    p.add_argument("--window", choices=sorted(_WINDOW_BY_NAME), default="24h", help="analysis window")
    p.add_argument("--limit", type=int_arg(1), default=5, metavar="N", help="opportunities shown at the end")
    add_json_flag(p)
    p.set_defaults(handler=cmd_monitor)


def cmd_monitor(args: argparse.Namespace, ctx: CliContext) -> int:
    lens = backend_lens(args.backend, ctx)
    backend = lens.backend
    run = getattr(backend, "run", None)
    if run is None or not hasattr(backend, "attach"):
        raise ConfigError(
            f"--backend {args.backend} brings its own live loop: `lnlens lnd run` for LND; on Core Lightning the "
            "plugin runs it inside lightningd (lightning-cli lens-status)"
        )
    interval = args.interval or lens.config.interval_s
    window_s = _WINDOW_BY_NAME[args.window]
    lens.monitor.load_history()
    lens.monitor.observe_channels(backend.list_channels())  # type: ignore[union-attr]
    backend.attach(lens.monitor)  # type: ignore[union-attr]
    loop = ModelLoop.for_lens(lens)
    end = lens.clock.now() + args.duration
    console = ctx.console
    result = None
    while (left := end - lens.clock.now()) > 0:
        before = lens.monitor.events_seen
        run(min(interval, left))
        lens.monitor.observe_channels(backend.list_channels())  # type: ignore[union-attr]
        result = run_analysis(lens, since_s=window_s, from_monitor=True).to_json()
        decided = loop.last_decision
        status = loop.run_safely()
        model = _model_line(status, None if loop.last_decision is decided else loop.last_decision)
        _tick(args, console, lens.clock.now(), lens.monitor.events_seen - before, result, model)
    if result is not None and not args.json:
        render_table(console, result["opportunities"][: args.limit], pairs=False, window_s=result["window_s"],
                     channels=result["channels"])  # fmt: skip
    return 0


def _model_line(status: dict, decision: dict | None) -> dict:
    """What one interval's model loop did, for the tick line: the serving model, the learner's state,
    the decision taken this interval (if any) and the drift indicators' status."""
    last = status.get("last_run") or {}
    tick = status["online_learning"]["last_tick"] or {}
    drift = status.get("drift") or {}
    return {
        "serving": last.get("model"),
        "unavailable": last.get("unavailable"),
        "online_learning": status["online_learning"]["enabled"],
        "learned": tick.get("seen"),
        "waiting": tick.get("waiting") or tick.get("error") or status.get("error"),
        "decision": decision,
        "drift": {k: (drift.get(k) or {}).get("status") for k in ("inputs", "error")} if drift else None,
    }


def _tick(args: argparse.Namespace, console: Console, now: float, recorded: int, result: dict,
          model: dict) -> None:  # fmt: skip
    opps = result["opportunities"]
    missed = sum(o["missed_revenue_msat"] for o in opps)
    line = {
        "time": now,
        "forwards_recorded": recorded,
        "opportunities": len(opps),
        "missed_revenue_msat": missed,
        "alerts": len(result["alerts"]),
        "top": opps[0]["short_channel_id"] if opps else None,
        "top_urgency": opps[0]["urgency"] if opps else None,
        "model": model,
    }
    if args.json:
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        return
    top = f"top {line['top']} urgency {line['top_urgency']}" if opps else "no opportunity above the thresholds"
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(now))
    console.print(
        f"{when}Z  {recorded:,} forwards  {len(opps)} opportunities, {missed // 1000:,} sat missed "
        f"({args.window})  {line['alerts']} alerts  {top}",
        highlight=False,
    )
    drift = model["drift"] or {}
    console.print(f"    model {model['serving'] or 'none'} (" + (f"unavailable: {model['unavailable']}; "
                  if model["unavailable"] else "") + f"drift: inputs {drift.get('inputs') or '-'}, error "
                  f"{drift.get('error') or '-'}; learner: {model['waiting'] or 'learning'})",
                  highlight=False, markup=False)  # fmt: skip
    d = model["decision"]
    if d is not None:
        verdict = "promoted" if d["promoted"] else "kept inactive"
        console.print(f"    candidate {d['model']} (id {d['model_id']}) {verdict}: {d['reason']}", highlight=False,
                      markup=False)  # fmt: skip
