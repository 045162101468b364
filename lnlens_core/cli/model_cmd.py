"""``lnlens model list|info|train|evaluate|use``: versions of the liquidity model, in the store."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..errors import ConfigError, LnlensError, ModelError
from ..model.inference import OnnxModel
from ..model.info import model_name, stored_drift, with_drift
from ..model.learning.drift import drift_summary
from ..model.registry import Gate, default_model_path, sample_times
from .context import MAX_DAYS, CliContext, add_json_flag, float_arg, int_arg
from .model_info_cmd import cmd_info, drift_cells

_TRAIN_DIR = Path(__file__).resolve().parents[2] / "models" / "train"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("model", help="the liquidity model: list, inspect, train, evaluate, use versions")
    msub = p.add_subparsers(dest="model_command", metavar="ACTION", required=True)

    ls = msub.add_parser("list", help="model versions in the store, with their metrics and newest stored drift")
    add_json_flag(ls)
    ls.set_defaults(handler=cmd_list)

    info = msub.add_parser("info", help="one version: metadata, promotion decision, drift measured now")
    info.add_argument("id", nargs="?", type=int, help="model id (default: the model serving now)")
    add_json_flag(info)
    info.set_defaults(handler=cmd_info)

    tr = msub.add_parser("train", help="train a candidate; it replaces the active model only if it wins")
    src = tr.add_mutually_exclusive_group(required=True)
    src.add_argument("--simulate", action="store_true", help="train on simulated mainnet data (source checkout)")
    src.add_argument(
        "--db",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="train on this database (its newest quarter is held out)",
    )
    tr.add_argument(
        "--kind",
        choices=("gbr", "forest", "sgd"),
        default="gbr",
        help="gbr (default), forest, or sgd: the incremental learner, fed in time order",
    )
    tr.add_argument("--seed", type=int_arg(0, 2**32 - 1), default=0)
    tr.add_argument("--seeds", default="1,2", help="simulation seeds for training (--simulate)")
    tr.add_argument("--val-seeds", default="101", help="held-out simulation seeds (--simulate)")
    tr.add_argument("--centres", type=int_arg(1, 100), default=2, help="training networks; one more is held out")
    tr.add_argument("--nodes", type=int_arg(3, 100_000), default=200, help="nodes per simulated neighbourhood")
    tr.add_argument("--hours", type=float_arg(0, 24 * MAX_DAYS, above=True), default=18.0,
                    help="simulated hours per run")  # fmt: skip
    tr.add_argument("--name", default="liquidity")
    gate = Gate()
    tr.add_argument("--min-train-samples", type=int_arg(1), default=gate.min_train_samples,
                    help=f"the gate: training samples at least (default {gate.min_train_samples})")  # fmt: skip
    tr.add_argument("--min-train-times", type=int_arg(1), default=gate.min_train_times,
                    help=f"the gate: distinct training times at least (default {gate.min_train_times})")  # fmt: skip
    tr.add_argument("--min-holdout-times", type=int_arg(1), default=gate.min_holdout_times,
                    help=f"the gate: distinct held-out times at least (default {gate.min_holdout_times})")  # fmt: skip
    tr.add_argument("--out", metavar="DIR", help="also write the .onnx and its model card here")
    add_json_flag(tr)
    tr.set_defaults(handler=cmd_train)

    ev = msub.add_parser("evaluate", help="score a model on this node's history next to the baselines")
    ev.add_argument("id", nargs="?", type=int, help="model id (default: the active model, else the shipped one)")
    add_json_flag(ev)
    ev.set_defaults(handler=cmd_evaluate)

    use = msub.add_parser("use", help="serve a model version, the shipped default, or the previous one (pinned)")
    which = use.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?", help="model id from `lnlens model list`, or `default` (the shipped model)")
    which.add_argument("--previous", action="store_true", help="re-activate the model in use before the current one")
    use.add_argument("--force", action="store_true", help="use a candidate the promotion gate refused")
    add_json_flag(use)
    use.set_defaults(handler=cmd_use)

    unpin = msub.add_parser("unpin", help="let trained candidates replace the model chosen with `model use`")
    add_json_flag(unpin)
    unpin.set_defaults(handler=cmd_unpin)


def _mae(metrics: dict[str, Any], *path: str) -> str:
    node: Any = metrics
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return f"{node:.4f}" if isinstance(node, float) else "-"


def cmd_list(args: argparse.Namespace, ctx: CliContext) -> int:
    store = ctx.store()
    reg = ctx.model_registry()
    pinned = reg.pinned()
    rows = with_drift(store, reg.list())
    default = default_model_path()
    default_drift = None
    if default is not None:
        try:
            shipped = OnnxModel.load(default)
        except ModelError:
            shipped = None
        if shipped is not None:
            report, note = stored_drift(store, model_name(shipped.name, shipped.version))
            default_drift = {"model": model_name(shipped.name, shipped.version), "drift": drift_summary(report),
                             "drift_note": note}  # fmt: skip

    def render(console: Console) -> None:
        if not rows:
            where = default or "none installed"
            console.print(f"No model versions in the store; the shipped default serves ({where}).")
            return
        table = Table(
            "id",
            "name",
            "version",
            "active",
            "MAE",
            "MAE current-ratio",
            "MAE 50/50",
            "input drift",
            "live error",
            "path",
            title="Liquidity model versions",
        )
        for r in rows:
            m = r["metrics"]
            table.add_row(
                str(r["id"]),
                r["name"],
                r["version"],
                "yes" if r["active"] else "",
                _mae(m, "model", "mae"),
                _mae(m, "baselines", "current", "mae"),
                _mae(m, "baselines", "half", "mae"),
                *drift_cells(r["drift"]),
                r["path"] or "",
            )
        console.print(table)
        if pinned:
            console.print(f"pinned by the operator: model {pinned['model']} (`lnlens model unpin` lets candidates "
                          "replace it)", markup=False)  # fmt: skip

    data = {"models": rows, "default": str(default) if default else None, "default_drift": default_drift,
            "pinned": pinned}  # fmt: skip
    ctx.emit(data, render)
    return 0


def _train_module():
    if not (_TRAIN_DIR / "build.py").is_file():
        raise LnlensError("training from the simulator needs a source checkout (models/train); use --db otherwise")
    if str(_TRAIN_DIR) not in sys.path:
        sys.path.insert(0, str(_TRAIN_DIR))
    return importlib.import_module("build")


def cmd_train(args: argparse.Namespace, ctx: CliContext) -> int:
    from ..model.learning import OnlineSession, dataset_from_store, export_onnx, make_model, time_split

    reg = ctx.model_registry()
    now = ctx.lens().clock.now()
    version = str(len(reg.list()) + 1)
    if args.simulate:
        build = _train_module()
        plan = build.Plan(
            train_centres=args.centres,
            seeds=_ints(args.seeds),
            val_seeds=_ints(args.val_seeds),
            nodes=args.nodes,
            hours=args.hours,
            kind=args.kind,
            seed=args.seed,
        )
        try:
            payload, report, holdout = build.train_from_simulation(plan, name=args.name, version=version)
        except ValueError as exc:
            raise ModelError(f"the simulation gave too little to train on ({exc}); the gate needs at least "
                             f"{args.min_train_samples} training samples from {args.min_train_times} sample times: "
                             "simulate more --hours, --nodes, --seeds or --centres") from None  # fmt: skip
        if args.out:
            build.write(payload, report, Path(args.out), f"{args.name}-{version}")
    else:
        data = dataset_from_store(ctx.store())
        older, recent = time_split(data)
        if args.kind == "sgd":
            session = OnlineSession(seed=args.seed)
            session.learner.update(older)
            from ..model.learning import baselines, evaluate

            metrics = {
                "model": evaluate(session.learner.predict(recent.x), recent),
                "baselines": baselines(recent),
                "kind": "sgd",
            }
            payload = export_onnx(session.learner.pipeline, name=args.name, version=version, trained_at=now,
                                  metrics=metrics, feature_stats=session.learner.stats)  # fmt: skip
            report = {"metrics": metrics}
        else:
            try:
                payload, report = make_model(
                    older,
                    recent,
                    kind=args.kind,
                    seed=args.seed,
                    name=args.name,
                    version=version,
                    now=now,
                    data_note=f"node history {ctx.config().db_path}",
                )
            except ValueError as exc:
                raise ModelError(f"not enough history to train: {exc}") from None
        holdout = recent
        if args.out:
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{args.name}-{version}.onnx").write_bytes(payload)
    # the gate's minimums hold for both sources; the simulator's sample times are counted per run
    if args.simulate:
        training = (report["data"]["train_samples"], report["data"]["train_times"])
    else:
        training = (len(older), sample_times(older))
    decision = reg.consider(payload, holdout, name=args.name, version=version, metrics=report["metrics"], now=now,
                            training=training, gate=Gate(min_train_samples=args.min_train_samples,
                                                         min_train_times=args.min_train_times,
                                                         min_holdout_times=args.min_holdout_times))  # fmt: skip
    result = {
        "id": decision.candidate_id,
        "promoted": decision.promoted,
        "reason": decision.reason,
        "metrics": report["metrics"],
        "parity_max_abs_diff": report.get("parity_max_abs_diff"),
    }

    def render(console: Console) -> None:
        _metrics_table(console, report["metrics"], title=f"Model {args.name}-{version} on held-out data")
        verdict = "now active" if decision.promoted else "kept inactive"
        console.print(f"model id {decision.candidate_id}: {verdict} ({decision.reason})", markup=False)

    ctx.emit(result, render)
    return 0


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 0:
        raise ConfigError(f"not a comma-separated list of seeds (whole numbers, 0 or more): {text!r}")
    return values


def _metrics_table(console: Console, metrics: dict[str, Any], *, title: str) -> None:
    table = Table("predictor", "samples", "MAE", "R²", "gain over staying msat", "captured share", title=title)
    rows = {"model": metrics.get("model", {}), **metrics.get("baselines", {})}
    names = {"half": "50/50", "current": "current ratio", "linear": "linear (ridge)"}
    for name, m in rows.items():
        table.add_row(
            names.get(name, name),
            str(m.get("n", "-")),
            _fmt(m.get("mae")),
            _fmt(m.get("r2")),
            _fmt(m.get("gain_msat")),
            _fmt(m.get("captured_share")),
        )
    console.print(table)


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) and v == v else "-"


def cmd_evaluate(args: argparse.Namespace, ctx: CliContext) -> int:
    from ..model.learning import baselines, dataset_from_store, evaluate

    reg = ctx.model_registry()
    if args.id is not None:
        row = next((r for r in reg.list() if r["id"] == args.id), None)
        if row is None:
            raise ModelError(f"no model with id {args.id}")
        model = OnnxModel.load(row["path"])
    else:
        model = reg.load_active()
    data = dataset_from_store(ctx.store())
    if not len(data):
        raise ModelError("the store has no history with a complete target window to evaluate on")
    metrics = {"model": evaluate(model.predict(data.x), data), "baselines": baselines(data)}
    result = {"model": f"{model.name}-{model.version}", "source": model.source, "metrics": metrics}
    ctx.emit(result, lambda c: _metrics_table(c, metrics, title=f"{result['model']} on this node's history"))
    return 0


def cmd_use(args: argparse.Namespace, ctx: CliContext) -> int:
    reg = ctx.model_registry()
    now = ctx.lens().clock.now()
    if args.previous:
        row = reg.restore_previous(now=now)
    elif args.id == "default":
        reg.use_default(now=now)
        reg.pin("default", now=now)
        data = {"active": None, "name": "default", "version": None, "pinned": reg.pinned()}
        ctx.emit(data, lambda c: c.print(f"the shipped default ({default_model_path()}) now serves; pinned until "
                                         "`lnlens model unpin`", markup=False))  # fmt: skip
        return 0
    else:
        try:
            model_id = int(args.id)
        except ValueError:
            raise LnlensError(f"model use: {args.id!r} is neither a model id nor `default`") from None
        refused = reg.refusal(model_id)
        if refused is not None and not args.force:
            raise ModelError(f"model {model_id} was refused by the promotion gate ({refused}); "
                             "pass --force to use it anyway")  # fmt: skip
        row = reg.use(model_id, now=now)
    reg.pin(row["id"], now=now)
    data = {"active": row["id"], "name": row["name"], "version": row["version"], "pinned": reg.pinned()}
    ctx.emit(data, lambda c: c.print(f"model {row['id']} ({row['name']}-{row['version']}) is now active; pinned "
                                     "until `lnlens model unpin`", markup=False))  # fmt: skip
    return 0


def cmd_unpin(args: argparse.Namespace, ctx: CliContext) -> int:
    was = ctx.model_registry().unpin()
    data = {"unpinned": was}
    text = "nothing was pinned" if was is None else (
        f"model {was['model']} is no longer pinned: the next candidate that passes the gate replaces it")
    ctx.emit(data, lambda c: c.print(text, markup=False))
    return 0
