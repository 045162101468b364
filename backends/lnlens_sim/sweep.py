"""Strategy bake-offs: a grid of (node, seed, policy) simulations as independent tasks.

Each task builds one mainnet neighbourhood around a managed node with one seed, runs a
warm-up, then follows one policy over the evaluation window and counts the money
(:func:`run_task`). Every policy on a (node, seed) sees the same network and the same
traffic stream (the simulator draws traffic from its own seeded stream), so only the
policy differs and results pair by seed.

Policies:

- ``none``: no action.
- ``chargelnd-proportional``: charge-lnd's ``proportional`` strategy
  (lnlens_core.fees.chargelnd.strategies.Proportional, min 1 ppm, max 2000 ppm) applied
  to every channel at every step; no rebalancing.
- ``balance-based``: lnlens's ``balance_based`` fee strategy (``fee_ppm`` = the node's
  median fee at the start, its other defaults); no rebalancing.
- ``balance-rule``: LightningLens's auto-recovery rule as a baseline: a channel outside
  35-65 % local gets a circular rebalance of 20 % of its capacity toward 50 %, from the
  channel furthest the other way, with a fee ceiling of what forwarding that amount once
  at the receiving channel's fee earns.
- ``model``: what lnlens's models suggest (the shipped defaults through onnxruntime): the
  liquidity model's rebalances with their own fee ceiling, and fee opinions through the
  ``model_driven`` strategy (the fee-response model's when it is installed).
- ``model-cap``: the same rebalances under the balance rule's fee ceiling and no fee changes.
- ``idle-discount``: lnlens's ``idle_discount`` fee strategy (its defaults) through the engine's
  default rails (:class:`lnlens_core.fees.rails.Rails`), reading the fee history the node's own
  forwards and policy changes make; no rebalancing.
- ``zero-revenue``: lnlens's ``zero_revenue`` fee strategy (its defaults; lnlens's recommended
  default) through the engine's default rails, reading the fee history as ``idle-discount`` does and
  each channel's siblings (our other channels to the same peer); no rebalancing.
- ``fees-x0.5``, ``fees-x2``, ``fees-x4``: every channel's fee rate times 0.5, 2 or 4 at the start of the
  evaluation, then kept: the node's demand response, not advice.

The rule baselines (:data:`RULE_POLICIES`) are the ones the paired statistics
(lnlens_sim.sweepstats) compare every policy with, besides no action. ``model`` and
``model-cap`` need the ``ml`` extra (onnxruntime) and the shipped models.

Results are one JSON object per task; :class:`ResultStore` appends each as it finishes,
so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lnlens_core.backend import Capability
from lnlens_core.domain import FeeUpdate, ForwardStatus
from lnlens_core.errors import BackendRejected, ConfigError, ModelError

from .graph import Graph
from .scenario import MAINNET_DEFAULT_NODE, SimSettings, build, load_graph

__all__ = ["POLICIES", "RULE_POLICIES", "FEE_SCALES", "SweepSpec", "Task", "ResultStore", "run_task", "tasks_of",
           "sized_centres", "run_local", "execute", "apply_policy"]  # fmt: skip

FEE_SCALES = {"fees-x0.5": 0.5, "fees-x2": 2.0, "fees-x4": 4.0}
POLICIES = ("none", "chargelnd-proportional", "balance-based", "balance-rule", "model", "model-cap", "idle-discount",
            "zero-revenue", *FEE_SCALES)  # fmt: skip
RULE_POLICIES = ("chargelnd-proportional", "balance-based", "balance-rule")
MODEL_POLICIES = ("model", "model-cap")


@dataclass(frozen=True, slots=True)
class SweepSpec:
    """What every task of a sweep shares. Results from a different spec are never mixed."""

    network: str = "mainnet"
    nodes: int = 200
    warmup_h: float = 24.0
    eval_h: float = 48.0
    every_h: float = 6.0

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class Task:
    centre: str
    seed: int
    policy: str
    spec: SweepSpec

    @property
    def key(self) -> str:
        return f"{self.spec.digest()}:{self.centre}:{self.seed}:{self.policy}"


def tasks_of(spec: SweepSpec, centres: Sequence[str], seeds: Sequence[int], policies: Sequence[str]) -> list[Task]:
    """The grid, node by node and seed by seed, so early results already pair."""
    if unknown := [p for p in policies if p not in POLICIES]:
        raise ConfigError(f"--policies: unknown {', '.join(unknown)} (choose from {', '.join(POLICIES)})")
    return [Task(c, s, p, spec) for c in centres for s in seeds for p in policies]


def sized_centres(graph: Graph, count: int) -> list[str]:
    """Managed nodes of different sizes: the default node, then a large and a small routing node.

    Chosen by channel count (deterministic): ranks 40 (large: MUTATRUM) and 500 (small:
    edelvistar) of the snapshot's nodes by enabled channels; further ones at ranks 150, 250, 350.
    Nodes much further down route next to nothing in a 200-node neighbourhood (ranks 700
    and 900: not one forward in 72 h), so nothing could be measured there.
    """
    order = np.argsort(-graph.degree(), kind="stable")
    out = [MAINNET_DEFAULT_NODE]
    for rank in (40, 500, 150, 250, 350):
        key = graph.pubkeys[int(order[rank])]
        if key not in out:
            out.append(key)
    return out[:count]


# --- the policies -------------------------------------------------------------------------------------------------


def _set_fees(node, strategy, now: float, signals=None, rails: dict | None = None) -> None:
    """Apply ``strategy``'s fee rate to every channel (``signals``: per channel, for those that read them).

    With ``rails`` (the run's journal: channel -> times and directions of its applied changes), each
    proposal first passes the engine's default rails, as ``lnlens policy apply`` would apply it.
    """
    from lnlens_core.fees.rails import ChannelHistory, Rails, apply_rails
    from lnlens_core.fees.strategy import FeeContext

    info = node.get_info()
    channels = list(node.list_channels())
    by_peer: dict[str, list] = {}
    for ch in channels:
        by_peer.setdefault(ch.peer_id, []).append(ch)
    for ch in channels:
        sig = signals.get(ch.channel_id) if signals is not None else None
        ctx = FeeContext(now=now, node=info, capabilities=frozenset(Capability), signals=sig,
                         peer_channels=tuple(by_peer[ch.peer_id]))  # fmt: skip
        proposal = strategy.propose(ch, ctx)
        update = proposal.update if proposal is not None else None
        if rails is not None:
            done = rails.setdefault(ch.channel_id, [])
            last = done[-1] if done else (None, 0)
            history = ChannelHistory(last_change_time=last[0], last_fee_direction=last[1],
                                     changes_last_day=sum(now - t < 86_400 for t, _ in done))  # fmt: skip
            update = apply_rails(ch, update, Rails(), history, now=now).update
        if update is not None and update.fee_ppm not in (None, ch.local_policy.fee_ppm):
            # Only the fee rate. The simulator refuses any change on a channel whose snapshot policy it
            # considers invalid (e.g. a CLTV delta outside 1..2016): that channel keeps its fee.
            try:
                node.set_channel_policy(ch.channel_id, FeeUpdate(fee_ppm=update.fee_ppm))
            except BackendRejected:
                continue
            if rails is not None:
                rails[ch.channel_id].append((now, 1 if update.fee_ppm > ch.local_policy.fee_ppm else -1))


def _fee_history(node, book, start: float, now: float) -> dict:
    """Each channel's fee history (lnlens_core.fees.signals.fee_epochs) from the run's policy book and forwards."""
    from lnlens_core.fees.signals import ChannelSignals, fee_epochs

    changes = sorted((max(t, start), cid, p) for cid, t, _, p in book.periods())
    epochs = fee_epochs(list(node.list_channels()), node.events, changes, now=now)
    return {cid: ChannelSignals(int(now - start), fee_history=h) for cid, h in epochs.items()}


def _balance_rule(node, threshold: float = 0.15, share: float = 0.2) -> None:
    """Channels more than ``threshold`` from 50 % local are rebalanced by ``share`` of capacity toward it."""
    channels = [c for c in node.list_channels() if c.balance_ratio is not None]
    low = sorted((c for c in channels if c.balance_ratio < 0.5 - threshold), key=lambda c: c.balance_ratio)
    high = sorted((c for c in channels if c.balance_ratio > 0.5 + threshold), key=lambda c: -c.balance_ratio)
    for target, source in zip(low, high, strict=False):
        amount = min(int(target.capacity_msat * share), source.local_balance_msat - source.capacity_msat // 2)
        if amount > 0:
            node.rebalance(
                source.channel_id, target.channel_id, amount, max_fee_msat=target.local_policy.fee_msat(amount)
            )


@dataclass(slots=True)
class Models:
    """The models the ``model`` policies follow: the liquidity model and, when installed, the fee-response one."""

    liquidity: Any
    fee: Any = None

    @classmethod
    @functools.cache
    def shipped(cls) -> Models:
        from lnlens_core.model.fee_model import FeeResponseModel, default_fee_model_path
        from lnlens_core.model.inference import OnnxModel
        from lnlens_core.model.registry import default_model_path

        path, fee_path = default_model_path(), default_fee_model_path()
        if path is None:
            raise ModelError("the shipped liquidity model is not installed (the lnlens_models package)")
        fee = FeeResponseModel.load(fee_path) if fee_path is not None else None
        return cls(OnnxModel.load(path), fee)


def _model(node, models: Models, book, peers, now: float, *, cap: bool) -> None:
    from lnlens_core.fees.lnlens_strategies import ModelDriven
    from lnlens_core.fees.signals import ChannelSignals
    from lnlens_core.model.features import LONG_WINDOW_S, compute_features, windows_from_events
    from lnlens_core.model.liquidity import route_cost_ppm
    from lnlens_core.model.suggestions import fee_suggestions, rebalance_suggestions

    channels = list(node.list_channels())
    book.observe_channels(channels, now)
    recent = [e for e in node.events if now - LONG_WINDOW_S <= e.received_time < now]
    x = compute_features(channels, windows_from_events(recent, book, now), peer_policies=peers, book=book)
    predicted = models.liquidity.predict(x)
    table = models.liquidity.json_meta("confidence") or ()
    recs = rebalance_suggestions(channels, predicted, recent, now=now, confidence_table=table,
                                 quote=node.quote_rebalance, cost_ppm=route_cost_ppm(models.liquidity))  # fmt: skip
    by_id = {c.channel_id: c for c in channels}
    for rec in recs:
        budget = (
            by_id[rec.target_channel].local_policy.fee_msat(rec.amount_msat) if cap else rec.evidence["max_fee_msat"]
        )
        node.rebalance(rec.source_channel, rec.target_channel, rec.amount_msat, max_fee_msat=int(budget))
    if not cap:
        # Fee opinions from the balances as they were predicted on (before the rebalances moved any).
        if models.fee is not None:
            opinions = models.fee.opinions(channels, x)
        else:
            opinions = fee_suggestions(channels, predicted, confidence_table=table)
        signals = {cid: ChannelSignals(LONG_WINDOW_S, model=p) for cid, p in opinions.items()}
        _set_fees(node, ModelDriven(), now, signals)


def apply_policy(policy: str, node, state: dict[str, Any], now: float) -> None:
    """One step of ``policy`` on ``node`` at ``now``; ``state`` is the run's (book, peers, strategies)."""
    from lnlens_core.fees.chargelnd.strategies import Proportional
    from lnlens_core.fees.lnlens_strategies import BalanceBased, IdleDiscount, ZeroRevenue

    if policy == "chargelnd-proportional":
        _set_fees(node, Proportional(min_fee_ppm=1, max_fee_ppm=2000), now)
    elif policy == "balance-based":
        _set_fees(node, BalanceBased(fee_ppm=state["median_fee_ppm"]), now)
    elif policy == "balance-rule":
        _balance_rule(node, *state.get("rule", (0.15, 0.2)))
    elif policy in FEE_SCALES and not state.get("scaled"):
        state["scaled"] = True
        for ch in node.list_channels():
            new = max(0, round(ch.local_policy.fee_ppm * FEE_SCALES[policy]))
            if new != ch.local_policy.fee_ppm:
                try:
                    node.set_channel_policy(ch.channel_id, FeeUpdate(fee_ppm=new))
                except BackendRejected:
                    continue
    elif policy == "idle-discount":
        signals = _fee_history(node, state["book"], state["start"], now)
        _set_fees(node, IdleDiscount(**state.get("idle", {})), now, signals, rails=state.setdefault("journal", {}))
    elif policy == "zero-revenue":
        signals = _fee_history(node, state["book"], state["start"], now)
        _set_fees(node, ZeroRevenue(), now, signals, rails=state.setdefault("journal", {}))
    elif policy in MODEL_POLICIES:
        models = state.get("models") or Models.shipped()
        _model(node, models, state["book"], state["peers"], now, cap=policy == "model-cap")


@functools.cache
def _graph(network: str) -> Graph:
    """One graph per worker process: loading mainnet costs about half a second, a task reuses it."""
    return load_graph(SimSettings(network=network))


def run_task(task: Task, *, models: Models | None = None, rule: tuple[float, float] = (0.15, 0.2)) -> dict[str, Any]:
    """Run one (node, seed, policy) simulation and return its result row (plain data)."""
    from lnlens_core.opportunities.flows import PolicyBook

    wall0 = time.perf_counter()
    spec = task.spec
    settings = SimSettings(network=spec.network, node=task.centre, nodes=spec.nodes, seed=task.seed)
    node = build(settings, graph=_graph(spec.network))
    start = node.clock.now()
    book = PolicyBook()
    book.observe_channels(node.list_channels(), start)
    state: dict[str, Any] = {
        "book": book,
        "peers": {ch.channel_id: node.get_peer_policy(ch.channel_id) for ch in node.list_channels()},
        "median_fee_ppm": max(int(np.median([c.local_policy.fee_ppm for c in node.list_channels()])), 1),
        "models": models,
        "rule": rule,
        "start": start,
    }
    node.run(spec.warmup_h * 3_600)
    t0, end = node.clock.now(), node.clock.now() + spec.eval_h * 3_600
    st = node.stats
    revenue0, fees0, reb0, ok0 = st.revenue_msat, st.rebalance_fee_msat, st.rebalances, st.rebalances_ok
    n0 = len(node.events)
    while (now := node.clock.now()) < end - 1e-6:
        apply_policy(task.policy, node, state, now)
        book.observe_channels(node.list_channels(), now)
        node.run(min(spec.every_h * 3_600, end - now))
    ours = node.events[n0:]
    decided = [e for e in ours if e.status in (ForwardStatus.SETTLED, ForwardStatus.LOCAL_FAILED)]
    revenue, fees = st.revenue_msat - revenue0, st.rebalance_fee_msat - fees0
    return {
        "key": task.key, "spec": asdict(spec), "centre": task.centre, "alias": node.get_info().alias,
        "channels": len(node.list_channels()), "seed": task.seed, "policy": task.policy,
        "revenue_msat": revenue, "rebalance_fee_msat": fees, "net_msat": revenue - fees,
        "settled": sum(e.status is ForwardStatus.SETTLED for e in decided), "decided": len(decided),
        "rebalances": st.rebalances - reb0, "rebalances_ok": st.rebalances_ok - ok0,
        "eval_start": t0, "wall_s": round(time.perf_counter() - wall0, 3),
    }  # fmt: skip


# --- storing and running --------------------------------------------------------------------------------------------


class ResultStore:
    """Task results as JSON lines, appended (and flushed) as each task finishes.

    A line that cannot be read (a sweep killed mid-write) is reported and skipped, and
    its task runs again; nothing in the file is ever rewritten.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, dict[str, Any]] = {}
        self.problems: list[str] = []
        self._newline = False
        if path.exists():
            text = path.read_text()
            self._newline = bool(text) and not text.endswith("\n")  # a line cut short: the next one starts afresh
            for n, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    self.rows[row["key"]] = row
                except (json.JSONDecodeError, KeyError, TypeError):
                    self.problems.append(f"{path}:{n}: not a sweep result, ignored (its task runs again)")

    def add(self, row: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write("\n" * self._newline + json.dumps(row, sort_keys=True) + "\n")
            f.flush()
        self._newline = False
        self.rows[row["key"]] = row

    def of(self, tasks: Iterable[Task]) -> list[dict[str, Any]]:
        return [self.rows[t.key] for t in tasks if t.key in self.rows]


def run_local(tasks: Sequence[Task], on_result: Callable[[dict[str, Any]], object]) -> None:
    """The same tasks in a plain loop in this process: the baseline the Dask overhead is measured against."""
    for task in tasks:
        on_result(run_task(task))


def execute(
    tasks: Sequence[Task],
    on_result: Callable[[dict[str, Any]], object],
    *,
    scheduler: str | None = None,
    workers: int = 1,
    on_error: Callable[[Task, BaseException], object] | None = None,
) -> None:
    """Run ``tasks`` on Dask: a local cluster of ``workers`` processes, or the scheduler at ``scheduler``.

    ``on_result`` gets each result as it finishes (in completion order); a task that raises
    goes to ``on_error`` and the others carry on.
    """
    from lnlens_core.extras import require

    distributed = require("dask.distributed", extra="sweep", what="lnlens sim sweep")
    Client, LocalCluster, as_completed = distributed.Client, distributed.LocalCluster, distributed.as_completed
    cluster = None
    if scheduler is None:
        # The local scheduler runs in this process: its routine INFO lines would bury the progress bar.
        logging.getLogger("distributed").setLevel(logging.WARNING)
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
        )
        client = Client(cluster)
    else:
        client = Client(scheduler, timeout=30)
    try:
        futures = {client.submit(run_task, t, key=f"sim-{t.key}", pure=False): t for t in tasks}
        for future in as_completed(futures):
            try:
                on_result(future.result())
            except Exception as exc:  # a failed task is reported, the sweep goes on
                if on_error is None:
                    raise
                on_error(futures[future], exc)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def iter_seeds(text: str) -> Iterator[int]:
    """``1001-1024`` or ``5,7,9`` (or a mix) as seeds."""
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            if sep:
                yield from range(int(lo), int(hi) + 1)
            else:
                yield int(part)
        except ValueError:
            raise ConfigError(f"--seeds: {part!r} is not a seed or a range like 1001-1024") from None
