"""Seeded A/B experiments of a fee policy on the simulator, with a holdout (SEEDS row 42).

For each seed a fresh simulated node is built (the ``[sim]`` settings with that seed)
and its channels are split at random, by the seed, into *treatment* and *holdout*. After
a warm-up with nothing changed, the policy runs every interval through exactly the path
of ``lnlens policy apply`` (:func:`~lnlens_core.fees.api.plan_or_apply`: reconcile,
automatic rollbacks, strategy, rails, vetoes, journal). The holdout channels are given
to the engine as ``unmanaged``, so it is the engine's own rail that keeps them untouched,
and every other limit (cooldown, step, floors and ceilings, changes per day, plugin
vetoes) is the configured ``[policy]`` one: nothing here clamps or filters a change.

Each group is measured over the experiment period from the forwards that left over its
channels (where our outbound fee is earned) and normalised so that groups of different
size compare: revenue per capacity and day (ppm of capacity per day), settled forwards
per channel and day, the success rate of forwards that reached the group (settled /
settled + refused by our node), and the net change of local balance as a share of
capacity. Per seed, the difference treatment − holdout is one independent measurement;
across seeds its mean gets a 95 % Student-t band (:func:`~.outcomes.mean_band`), and a
difference whose band contains 0 is reported as not significant.

The groups share one node, so they are not independent: a fee raise on treatment
channels can push traffic onto holdout channels. The difference then measures the
policy's effect on the treated channels relative to the rest of the node, which is what
a holdout on a live node measures too; it is not the effect of applying the policy to
every channel.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..backend import NodeBackend
from ..config import LensConfig
from ..domain import ChannelId
from .api import plan_or_apply
from .engine import FeeEngine
from .outcomes import WindowStats, mean_band, window_stats_by_channel
from .simrun import drive, simulated_lens

__all__ = ["GroupResult", "SeedResult", "Comparison", "ExperimentResult", "split_channels", "run_experiment"]

_SPLIT_STREAM = 42  # the split's own random stream, apart from every stream the simulator draws from the seed
DAY_S = 86_400.0
# (name, label, unit): the normalised metrics compared between groups, in report order.
METRICS = (
    ("revenue_ppm_day", "revenue", "ppm of capacity/day"),
    ("forwards_per_channel_day", "forwards", "settled/channel/day"),
    ("success_rate", "success rate", "settled/reached"),
    ("net_change_share", "net change", "local balance Δ/capacity"),
)


@dataclass(frozen=True, slots=True)
class GroupResult:
    """One group's channels over the experiment period of one seed."""

    channels: tuple[ChannelId, ...]
    capacity_msat: int
    days: float
    revenue_msat: int
    forwards: int
    failed_here: int
    net_change_msat: int

    @property
    def revenue_ppm_day(self) -> float:
        return self.revenue_msat / self.capacity_msat * 1e6 / self.days

    @property
    def forwards_per_channel_day(self) -> float:
        return self.forwards / len(self.channels) / self.days

    @property
    def success_rate(self) -> float | None:
        reached = self.forwards + self.failed_here
        return self.forwards / reached if reached else None

    @property
    def net_change_share(self) -> float:
        return self.net_change_msat / self.capacity_msat

    def to_json(self) -> dict[str, Any]:
        return {"channels": [str(c) for c in self.channels], "capacity_msat": self.capacity_msat,
                "revenue_msat": self.revenue_msat, "forwards": self.forwards, "failed_here": self.failed_here,
                "net_change_msat": self.net_change_msat,
                **{name: getattr(self, name) for name, _, _ in METRICS}}  # fmt: skip


@dataclass(frozen=True, slots=True)
class SeedResult:
    """One seed's run: both groups and what the engine did (counted over every interval)."""

    seed: int
    treatment: GroupResult
    holdout: GroupResult
    engine_runs: int
    applied: int
    vetoed: int
    failed: int
    blocked: int
    """Treatment channels the rails stopped entirely in one run (cooldown, changes per day, hysteresis)."""
    holdout_changes: int
    """Changes the engine made on holdout channels: 0 unless the engine's unmanaged rail failed."""

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "treatment": self.treatment.to_json(), "holdout": self.holdout.to_json(),
                "engine_runs": self.engine_runs, "applied": self.applied, "vetoed": self.vetoed, "failed": self.failed,
                "blocked": self.blocked, "holdout_changes": self.holdout_changes}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Comparison:
    """One metric over all seeds: group means, and the mean per-seed difference with its 95 % band."""

    metric: str
    label: str
    unit: str
    treatment: float | None
    holdout: float | None
    difference: float | None
    band: tuple[float, float] | None
    seeds: int
    """Seeds where both groups have a value (a group that no forward reached has no success rate)."""
    seeds_above: int
    """Seeds where treatment exceeded holdout."""

    @property
    def significant(self) -> bool:
        return self.band is not None and (self.band[0] > 0 or self.band[1] < 0)

    def verdict(self) -> str:
        if self.difference is None:
            return f"{self.label}: no seed measured it in both groups"
        if self.band is None:
            return f"{self.label}: one seed gives no band; not significant (run more seeds)"
        if not self.significant:
            return f"{self.label}: not significant (the 95 % band contains 0; treatment above holdout in " \
                   f"{self.seeds_above} of {self.seeds} seeds)"  # fmt: skip
        side = "higher" if self.difference > 0 else "lower"
        return f"{self.label}: significantly {side} with the policy (95 % band excludes 0; treatment above " \
               f"holdout in {self.seeds_above} of {self.seeds} seeds)"  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "unit": self.unit, "treatment": self.treatment, "holdout": self.holdout,
                "difference": self.difference, "band": list(self.band) if self.band else None, "seeds": self.seeds,
                "seeds_above": self.seeds_above, "significant": self.significant,
                "verdict": self.verdict()}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ExperimentResult:
    policy_file: str
    days: float
    warmup_s: float
    interval_s: float
    holdout_share: float
    seeds: tuple[SeedResult, ...]
    comparisons: tuple[Comparison, ...]

    def to_json(self) -> dict[str, Any]:
        return {"policy_file": self.policy_file, "days": self.days, "warmup_s": self.warmup_s,
                "interval_s": self.interval_s, "holdout_share": self.holdout_share,
                "seeds": [s.to_json() for s in self.seeds],
                "comparisons": [c.to_json() for c in self.comparisons]}  # fmt: skip


def split_channels(
    channels: Iterable[ChannelId], seed: int, holdout_share: float
) -> tuple[tuple[ChannelId, ...], tuple[ChannelId, ...]]:
    """``(treatment, holdout)``: a random split drawn from ``seed`` alone, the same on every run.

    The holdout gets ``round(share × n)`` channels, at least one and never all.

    :raises ValueError: fewer than two channels, or a share outside (0, 1).
    """
    ordered = sorted(set(channels))
    if len(ordered) < 2:
        raise ValueError(f"an experiment needs at least two channels to split, the node has {len(ordered)}")
    if not 0 < holdout_share < 1:
        raise ValueError(f"the holdout share must lie strictly between 0 and 1, not {holdout_share}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_STREAM]))
    order = rng.permutation(len(ordered))
    n_hold = min(len(ordered) - 1, max(1, round(holdout_share * len(ordered))))
    holdout = tuple(sorted(ordered[i] for i in order[:n_hold]))
    treatment = tuple(sorted(ordered[i] for i in order[n_hold:]))
    return treatment, holdout


def _group(ids: Sequence[ChannelId], stats: dict[ChannelId, WindowStats], capacity: dict[ChannelId, int],
           start: dict[ChannelId, int], end: dict[ChannelId, int], days: float) -> GroupResult:  # fmt: skip
    empty = WindowStats()
    rows = [stats.get(c, empty) for c in ids]
    return GroupResult(
        channels=tuple(ids), capacity_msat=sum(capacity[c] for c in ids), days=days,
        revenue_msat=sum(r.revenue_msat for r in rows), forwards=sum(r.forwards for r in rows),
        failed_here=sum(r.failed_here for r in rows), net_change_msat=sum(end[c] - start[c] for c in ids),
    )  # fmt: skip


def run_seed(
    backend: NodeBackend,
    config: LensConfig,
    policy_path: Path,
    seed: int,
    *,
    days: float,
    warmup_s: float,
    interval_s: float,
    holdout_share: float,
    progress: Callable[[float], object] | None = None,
    make_pm: Callable[[], Any] | None = None,
) -> SeedResult:
    """One seed on ``backend`` (freshly built for it): warm up, run the policy on the treatment, measure.

    :param make_pm: a fresh plugin manager for the run (default: the installed plugins, as ``policy apply``).
    """
    channels = {c.channel_id: c for c in backend.list_channels()}
    treatment, holdout = split_channels(channels, seed, holdout_share)
    table = dict(config.backends.get("policy") or {})
    table["unmanaged"] = [*table.get("unmanaged", []), *(str(c) for c in holdout)]
    config = replace(config, policy_path=policy_path, backends={**config.backends, "policy": table})
    lens = simulated_lens(config, backend, pm=make_pm() if make_pm is not None else None)
    drive(lens, backend, warmup_s, interval_s=interval_s, progress=progress)
    engine = FeeEngine.from_config(lens, backend, policy_path=policy_path)
    held = set(holdout)
    counts = {"runs": 0, "verified": 0, "vetoed": 0, "failed": 0, "blocked": 0, "holdout": 0}

    def run_engine() -> None:
        data = plan_or_apply(lens, backend, apply=True, engine=engine)
        counts["runs"] += 1
        for r in data["results"]:
            counts[r["state"]] = counts.get(r["state"], 0) + 1
            counts["holdout"] += ChannelId.parse(r["short_channel_id"]) in held
        blocked = [c for c in data["plan"]["channels"] if c["status"] == "blocked"]
        counts["blocked"] += sum(ChannelId.parse(c["short_channel_id"]) not in held for c in blocked)

    start_time = lens.clock.now()
    before = {c.channel_id: c.local_balance_msat for c in backend.list_channels()}
    drive(lens, backend, days * DAY_S, interval_s=interval_s, each_interval=run_engine, progress=progress)
    after = {c.channel_id: c.local_balance_msat for c in backend.list_channels()}
    stats = window_stats_by_channel(lens.store.iter_forwards(since=start_time), start_time, lens.clock.now())
    capacity = {cid: c.capacity_msat for cid, c in channels.items()}
    return SeedResult(
        seed=seed, treatment=_group(treatment, stats, capacity, before, after, days),
        holdout=_group(holdout, stats, capacity, before, after, days), engine_runs=counts["runs"],
        applied=counts["verified"], vetoed=counts["vetoed"], failed=counts["failed"], blocked=counts["blocked"],
        holdout_changes=counts["holdout"],
    )  # fmt: skip


def compare(seeds: Sequence[SeedResult]) -> tuple[Comparison, ...]:
    """Each metric's group means and the per-seed difference's mean and 95 % band."""
    out = []
    for name, label, unit in METRICS:
        pairs = [(getattr(s.treatment, name), getattr(s.holdout, name)) for s in seeds]
        pairs = [(t, h) for t, h in pairs if t is not None and h is not None]
        if not pairs:
            out.append(Comparison(name, label, unit, None, None, None, None, 0, 0))
            continue
        diffs = [t - h for t, h in pairs]
        mean, band = mean_band(diffs)
        out.append(Comparison(name, label, unit, treatment=statistics.fmean(t for t, _ in pairs),
                              holdout=statistics.fmean(h for _, h in pairs), difference=mean, band=band,
                              seeds=len(pairs), seeds_above=sum(d > 0 for d in diffs)))  # fmt: skip
    return tuple(out)


def run_experiment(
    make_backend: Callable[[int], NodeBackend],
    config: LensConfig,
    policy_path: Path,
    *,
    seeds: Sequence[int],
    days: float,
    warmup_s: float,
    interval_s: float,
    holdout_share: float,
    progress: Callable[[int, float], object] | None = None,
    make_pm: Callable[[], Any] | None = None,
) -> ExperimentResult:
    """Run every seed and compare the groups.

    :param make_backend: builds a fresh simulated node for a seed.
    :param progress: called with (seed, simulated seconds just done).
    :param make_pm: see :func:`run_seed`.
    """
    results = []
    for seed in seeds:
        step = (lambda s: lambda done: progress(s, done))(seed) if progress is not None else None
        results.append(run_seed(make_backend(seed), config, policy_path, seed, days=days, warmup_s=warmup_s,
                                interval_s=interval_s, holdout_share=holdout_share, progress=step,
                                make_pm=make_pm))  # fmt: skip
    return ExperimentResult(str(policy_path), days, warmup_s, interval_s, holdout_share, tuple(results),
                            compare(results))  # fmt: skip
