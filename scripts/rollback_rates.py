"""False-rollback rate and power of the automatic rollback rule in the simulator (docs/FEES.md).

Two steps, so that the simulation (slow) is done once and the rule (fast) can be judged on it:

``simulate``: for each seed, simulate the default node's mainnet neighbourhood for ``--warmup`` days
(history, no fee change), save the simulation, then continue four arms from that same state for
``--after`` days each, keeping each arm's database and final simulation state under ``DIR/seed-N``:

- ``placebo``: no fee change;
- ``harmless``: every channel's fee cut by 2 % (``fee_ppm − max(1, round(2 %))``, channels of at
  least 25 ppm, so 1–4 %; a channel under 25 ppm gets its base fee cut by 2 % instead when it has
  one of at least 50 msat) through the fee engine — a change on (nearly) every channel at once;
- ``harmful``: the busiest channel (most fees earned in the warm-up) raised to
  ``max(5000, 50 × its fee)`` ppm;
- ``harmful_all``: every channel raised to ``max(1000, 10 × its fee)`` ppm (a node-wide mistake).

``judge``: judge every change (or placebo) with ``lnlens_core.fees.outcomes.judge`` at each
``--windows`` length. A placebo is judged twice, as the only change on the node (the other channels
are the control) and as one of a change on every channel (no channel is unchanged), and as an
*increase* (the cut bound cannot help it). At the default window the engine's own ``auto_rollback``
is run too, on the arm's final state, and its decisions must match the judged ones. Rates are given
with 95 % Wilson intervals; ``--compare`` adds the plain before/after test (no control).

    nice -n 10 .venv/bin/python scripts/rollback_rates.py simulate out/rb --seeds 201 202 203
    .venv/bin/python scripts/rollback_rates.py judge out/rb --seeds 201 202 203 --json out/rb.json
    .venv/bin/python scripts/rollback_rates.py summarise out/rb.json      # the rates again, from the saved cases

Seeds 1, 2, 5 and 101–106 were used while writing the rule; report other seeds only.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

from lnlens_sim.scenario import SimSettings, build

from lnlens_core.clock import SystemClock
from lnlens_core.config import LensConfig
from lnlens_core.domain import ChannelId, ForwardStatus
from lnlens_core.fees.chargelnd import load_policy_file
from lnlens_core.fees.engine import FeeEngine
from lnlens_core.fees.journal import apply_plan, auto_rollback, policy_from_json
from lnlens_core.fees.outcomes import RevenueIndex, applied_change_times, judge
from lnlens_core.fees.rails import Rails, rails_from_table
from lnlens_core.lens import Lens
from lnlens_core.plugins import get_plugin_manager
from lnlens_core.storage import Store

DAY = 86_400.0
ARMS = ("placebo", "harmless", "harmful", "harmful_all")
# the arms' changes go through the engine with loose rails, so the change asked for is the change made
APPLY_RAILS = {"max_step_share": 1.0, "max_step_ppm": 100_000, "max_fee_ppm": 100_000, "cooldown": 0,
               "min_change_ppm": 0, "auto_rollback": True}  # fmt: skip


def _build(settings: SimSettings):
    node = build(settings)
    node.settings = settings  # what a saved simulation is checked against (lnlens_sim.state)
    return node


def _lens(node, db: Path, workdir: Path) -> Lens:
    lens = Lens(LensConfig(data_dir=workdir, db_path=db), store=Store(db), clock=node.clock,
                pm=get_plugin_manager(load_entrypoints=False), backend=node)  # fmt: skip
    node.attach(lens.monitor)
    return lens


def _busiest(lens: Lens) -> ChannelId:
    """The channel that earned the most fees (a channel earning nothing has no revenue to lose)."""
    fees: dict = {}
    for e in lens.store.iter_forwards():
        if e.status is ForwardStatus.SETTLED and e.out_channel is not None:
            fees[e.out_channel] = fees.get(e.out_channel, 0) + (e.fee_msat or 0)
    return max(fees, key=lambda c: fees[c])


def _apply(lens: Lens, node, workdir: Path, sections: list[str]) -> dict[str, float]:
    path = workdir / "arm.ini"
    path.write_text("".join(sections) + "[default]\nstrategy = ignore\n")
    engine = FeeEngine(lens, node, policies=load_policy_file(path, lens.strategies),
                       rails=rails_from_table(APPLY_RAILS))  # fmt: skip
    applied = apply_plan(lens, node, engine.plan())
    return {str(a.channel_id): lens.clock.now() for a in applied if a.state == "verified"}


def _section(i: int, cid, **fields: int) -> str:
    return f"[c{i}]\nchan.id = {cid}\nstrategy = static\n" + "".join(f"{k} = {v}\n" for k, v in fields.items())


def _arm_sections(arm: str, channels, busiest: ChannelId) -> list[str]:
    out = []
    for i, c in enumerate(channels):
        p = c.local_policy
        if arm == "harmless":
            if p.fee_ppm >= 25:
                out.append(_section(i, c.channel_id, fee_ppm=p.fee_ppm - max(1, round(0.02 * p.fee_ppm))))
            elif p.base_fee_msat >= 50:
                out.append(_section(i, c.channel_id, base_fee_msat=p.base_fee_msat - round(0.02 * p.base_fee_msat)))
        elif arm == "harmful" and c.channel_id == busiest:
            out.append(_section(i, c.channel_id, fee_ppm=max(5000, 50 * p.fee_ppm)))
        elif arm == "harmful_all":
            out.append(_section(i, c.channel_id, fee_ppm=max(1000, 10 * p.fee_ppm)))
    return out


def simulate_seed(seed: int, args: argparse.Namespace, out: Path) -> None:
    settings = SimSettings(seed=seed, nodes=args.nodes, payments_per_hour=args.payments_per_hour)
    out.mkdir(parents=True, exist_ok=True)
    node = _build(settings)
    warm_db = out / "warm.sqlite3"
    lens = _lens(node, warm_db, out)
    node.run(args.warmup * DAY)
    state = out / "warm.sim-state"
    node.save_state(state)
    busiest = _busiest(lens)
    split = node.clock.now()
    lens.store.close()
    meta: dict = {"seed": seed, "nodes": args.nodes, "payments_per_hour": args.payments_per_hour,
                  "warmup_days": args.warmup, "after_days": args.after, "split": split, "busiest": str(busiest),
                  "arms": {}}  # fmt: skip
    for arm in ARMS:
        db = out / f"{arm}.sqlite3"
        shutil.copy(warm_db, db)
        node = _build(settings)
        problem = node.restore_state(state)
        if problem:
            raise SystemExit(f"seed {seed}: the saved simulation did not restore: {problem}")
        lens = _lens(node, db, out)
        changed = _apply(lens, node, out, _arm_sections(arm, node.list_channels(), busiest)) if arm != "placebo" else {}
        node.run(args.after * DAY)
        node.save_state(out / f"{arm}.sim-state")
        lens.store.close()
        meta["arms"][arm] = {"changed": changed}
    warm_db.unlink()
    (out / "meta.json").write_text(json.dumps(meta, indent=1))


def cmd_simulate(args: argparse.Namespace) -> int:
    wall = SystemClock()
    for seed in args.seeds:
        if args.stop_at and wall.now() > args.stop_at:
            print(f"stop time reached; seed {seed} and later not simulated", file=sys.stderr, flush=True)
            break
        out = args.dir / f"seed-{seed}"
        if (out / "meta.json").is_file():
            continue
        started = wall.now()
        with tempfile.TemporaryDirectory() as tmp:
            simulate_seed(seed, args, Path(tmp))
            out.parent.mkdir(parents=True, exist_ok=True)
            if out.exists():
                shutil.rmtree(out)
            shutil.copytree(tmp, out)
        print(f"seed {seed}: simulated in {wall.now() - started:.0f} s", file=sys.stderr, flush=True)
    return 0


def _cases(index: RevenueIndex, changes: dict, t_of: dict, times: dict, window: float, rails: Rails, *,
           controlled: bool = True) -> list[dict]:  # fmt: skip
    """Judge each ``changes`` channel (→ (old, new) policies, or None: a placebo judged as an increase)."""
    out = []
    for cid, policies in changes.items():
        old, new = policies if policies and controlled else (None, None)  # the plain test: the rule before
        j = judge(index, cid, t_of[cid], window, change_times=times, drop_share=rails.rollback_drop_share,
                  min_forwards=rails.rollback_min_forwards, alpha=rails.rollback_alpha, controlled=controlled,
                  old_policy=old, new_policy=new)  # fmt: skip
        # a case: enough forwards before to be judged, and revenue to lose (a channel earning nothing cannot)
        if j.before_forwards >= rails.rollback_min_forwards and j.revenue_before_msat > 0:
            out.append({"channel": str(cid), "rolled_back": j.verdict is not None, **j.to_json()})
    return out


def judge_seed(path: Path, windows: list[float], compare: bool) -> dict:
    meta = json.loads((path / "meta.json").read_text())
    split, default = meta["split"], rails_from_table({"auto_rollback": True})
    result: dict = {"seed": meta["seed"], "busiest": meta["busiest"], "arms": {}}
    for arm in ARMS:
        store = Store(path / f"{arm}.sqlite3")
        index = RevenueIndex(store.iter_forwards())
        rows = store.journal(states=("applied", "verified", "rolled_back"))
        store.close()
        times = applied_change_times(rows)
        changes = {ChannelId.parse(r["channel_id"]): (policy_from_json(r["old_policy"]),
                                                      policy_from_json(r["new_policy"])) for r in rows}  # fmt: skip
        t_of = {ChannelId.parse(r["channel_id"]): r["applied_time"] for r in rows}
        variants: dict = {}
        if arm == "placebo":
            every = dict.fromkeys(index.channels())
            t_of = dict.fromkeys(every, split)
            variants["one"] = (every, {})
            variants["all"] = (every, {c: [split] for c in every})
        else:
            variants["changed"] = (changes, times)
        out: dict = {"changed": len(changes), "windows": {}}
        for window in windows:
            per = out["windows"][f"{window / 3600:g}h"] = {}
            for name, (chosen, change_times) in variants.items():
                per[name] = _cases(index, chosen, t_of, change_times, window, default)
                if compare:
                    per[name + "/plain"] = _cases(index, chosen, t_of, change_times, window, default,
                                                  controlled=False)  # fmt: skip
        if arm != "placebo" and any(abs(w - default.rollback_window_s) < 1 for w in windows):
            out["auto_rollback_reverted"] = _engine_rollbacks(path, meta, arm, default)
            judged = out["windows"][f"{default.rollback_window_s / 3600:g}h"]["changed"]
            out["auto_rollback_matches_judge"] = (
                sorted(c["channel"] for c in judged if c["rolled_back"]) == out["auto_rollback_reverted"])
        result["arms"][arm] = out
    # the true effect of a harmful change: its channel's revenue against the placebo arm's (the same
    # simulation without the change) over the same after window
    for arm in ("harmful", "harmful_all"):
        for window, per in result["arms"][arm]["windows"].items():
            placebo = {c["channel"]: c for c in result["arms"]["placebo"]["windows"][window]["one"]}
            for c in per["changed"]:
                base = placebo.get(c["channel"])
                c["placebo_after_msat"] = None if base is None else base["revenue_after_msat"]
    return result


def _engine_rollbacks(path: Path, meta: dict, arm: str, rails: Rails) -> list[str]:
    """What the engine's own ``auto_rollback`` reverts on the arm's final state (on a copy of its database)."""
    settings = SimSettings(seed=meta["seed"], nodes=meta["nodes"], payments_per_hour=meta["payments_per_hour"])
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "arm.sqlite3"
        shutil.copy(path / f"{arm}.sqlite3", db)
        node = _build(settings)
        problem = node.restore_state(path / f"{arm}.sim-state")
        if problem:
            raise SystemExit(f"{path}: the saved simulation did not restore: {problem}")
        lens = _lens(node, db, Path(tmp))
        reverted = auto_rollback(lens, node, rails)
        lens.store.close()
    return sorted(str(r.channel_id) for r in reverted if r.state == "verified")


def wilson(k: int, n: int) -> str:
    """``k/n = p (95 % Wilson interval)``."""
    if not n:
        return "-"
    z, p = 1.96, k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return f"{k}/{n} = {p:.1%} (95 % {max(0, centre - half):.1%}–{min(1, centre + half):.1%})"


CELLS = (("placebo, one channel", "placebo", "one"), ("placebo, every channel", "placebo", "all"),
         ("harmless -2 %, every channel", "harmless", "changed"), ("harmful 50x, busiest", "harmful", "changed"),
         ("harmful 10x, every channel", "harmful_all", "changed"))  # fmt: skip


def summarise(rows: list[dict], windows: list[str], drop_share: float = 0.3) -> list[str]:
    lines = [f"seeds {', '.join(str(r['seed']) for r in rows)}"]
    for window in windows:
        for suffix, name in (("", "rule"), ("/plain", "before/after alone")):
            cells = []
            for label, arm, key in CELLS:
                cases = [c for r in rows for c in r["arms"][arm]["windows"][window].get(key + suffix, [])]
                if suffix and not cases:
                    continue
                unjudged = sum(c.get("note") is not None for c in cases)
                cells.append(f"{label}: {wilson(sum(c['rolled_back'] for c in cases), len(cases))}"
                             + (f" [{unjudged} not judged]" if unjudged else ""))  # fmt: skip
                if arm.startswith("harmful") and not suffix:
                    lost = [c for c in cases if c.get("placebo_after_msat")
                            and c["revenue_after_msat"] < (1 - drop_share) * c["placebo_after_msat"]]  # fmt: skip
                    cells.append(f"  of those that lost > {drop_share:.0%} against the placebo arm: "
                                 f"{wilson(sum(c['rolled_back'] for c in lost), len(lost))}")  # fmt: skip
            if cells:
                lines.append(f"window {window}, {name}: " + "; ".join(cells))
    matches = [r["arms"][a].get("auto_rollback_matches_judge") for r in rows for a in ARMS if a != "placebo"]
    if any(m is not None for m in matches):
        lines.append(f"engine auto_rollback took the judged decisions: {sum(m is True for m in matches)} of "
                     f"{sum(m is not None for m in matches)} arm runs")  # fmt: skip
    return lines


def cmd_judge(args: argparse.Namespace) -> int:
    windows = [float(w) * 3600 for w in args.windows]
    rows = []
    for seed in args.seeds:
        path = args.dir / f"seed-{seed}"
        if not (path / "meta.json").is_file():
            print(f"seed {seed}: not simulated (no {path / 'meta.json'}); left out", file=sys.stderr)
            continue
        rows.append(judge_seed(path, windows, args.compare))
    if not rows:
        print("no simulated seed to judge", file=sys.stderr)
        return 1
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))
    for line in summarise(rows, [f"{w / 3600:g}h" for w in windows]):
        print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="step", required=True)
    s = sub.add_parser("simulate", help="simulate the arms of each seed into DIR/seed-N")
    s.add_argument("dir", type=Path)
    s.add_argument("--seeds", type=int, nargs="+", required=True)
    s.add_argument("--warmup", type=float, default=7.0, help="days of history before the change")
    s.add_argument("--after", type=float, default=2.0, help="days simulated after it (≥ the longest window)")
    s.add_argument("--nodes", type=int, default=300, help="mainnet neighbourhood size around our node")
    s.add_argument("--payments-per-hour", type=float, default=None, help="network-wide payment rate")
    s.add_argument("--stop-at", type=float, default=None, help="Unix time after which no new seed is started")
    j = sub.add_parser("judge", help="judge the simulated seeds in DIR with the current rule")
    j.add_argument("dir", type=Path)
    j.add_argument("--seeds", type=int, nargs="+", required=True)
    j.add_argument("--windows", nargs="+", default=["48", "24", "6"], help="window lengths in hours")
    j.add_argument("--compare", action="store_true", help="also the plain before/after test (no control)")
    j.add_argument("--json", type=Path, help="write every judged case here too")
    m = sub.add_parser("summarise", help="the rates of judged seeds saved with judge --json (several files)")
    m.add_argument("files", type=Path, nargs="+")
    m.add_argument("--windows", nargs="+", default=["48", "24", "6"], help="window lengths in hours")
    args = p.parse_args(argv)
    if args.step == "simulate":
        return cmd_simulate(args)
    if args.step == "summarise":
        rows = [row for path in args.files for row in json.loads(path.read_text())]
        for line in summarise(sorted(rows, key=lambda r: r["seed"]), [f"{float(w):g}h" for w in args.windows]):
            print(line)
        return 0
    return cmd_judge(args)


if __name__ == "__main__":
    sys.exit(main())
