"""Payment demand: who pays whom, how much and when.

Two models share one interface, ``draw(t0, t1) -> Arrivals``:

* :class:`CapacityWeightedTraffic` (default), after sim-ln's random activity:
  Poisson arrivals, senders and receivers drawn with probability proportional to
  their channel capacity, a share of payments from a few large *sources*
  (exchanges, custodial wallets) and to a few large *sinks* (merchants), so
  channels drain in one direction as on mainnet; log-normal amounts whose mean is
  sim-ln's ``EXPECTED_PAYMENT_AMOUNT`` (3,800,000 msat, "around $10"); a daily
  cycle; and a slow log-normal random walk of every node's weight (drift), so a
  learner has something moving to track.
* :class:`LightningLensTraffic`: LightningLens's generator as a preset
  (U(500, 3000) sat amounts, U(10, 30) s gaps, patterns 70/25/5).

All randomness comes from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Arrivals", "TrafficConfig", "CapacityWeightedTraffic", "LightningLensTraffic"]

DAY_S = 86_400.0
SIM_LN_EXPECTED_PAYMENT_MSAT = 3_800_000  # sim-ln EXPECTED_PAYMENT_AMOUNT


@dataclass(frozen=True, slots=True)
class Arrivals:
    """Payments arriving in one interval, in time order (parallel arrays)."""

    times: np.ndarray
    senders: np.ndarray
    receivers: np.ndarray
    amounts_msat: np.ndarray

    def __len__(self) -> int:
        return len(self.times)


@dataclass(frozen=True, slots=True)
class TrafficConfig:
    """Parameters of :class:`CapacityWeightedTraffic`; docs/SIMULATOR.md gives their sources."""

    payments_per_hour: float = 9_000.0
    amount_mean_msat: int = SIM_LN_EXPECTED_PAYMENT_MSAT
    amount_sigma: float = 1.5  # log-normal shape: median ~1,235 sat, p99 ~40,000 sat
    min_amount_msat: int = 1_000
    max_amount_msat: int = 5_000_000_000  # 5M sat: larger payments are rare and MPP-split in practice
    sink_share: float = 0.3
    source_share: float = 0.2
    n_sinks: int = 20
    n_sources: int = 20
    daily_amplitude: float = 0.4
    peak_hour_utc: float = 16.0
    drift_sigma: float = 0.15
    drift_period_s: float = 6 * 3600.0

    def __post_init__(self) -> None:
        if self.payments_per_hour <= 0 or not 0 <= self.daily_amplitude < 1:
            raise ValueError("payments_per_hour must be > 0 and daily_amplitude in [0, 1)")
        if not (0 <= self.sink_share <= 1 and 0 <= self.source_share <= 1):
            raise ValueError("sink_share and source_share must be in [0, 1]")
        if not 0 < self.min_amount_msat <= self.max_amount_msat:
            raise ValueError("need 0 < min_amount_msat <= max_amount_msat")


def _pick(rng: np.random.Generator, cumulative: np.ndarray, items: np.ndarray, n: int) -> np.ndarray:
    return items[np.searchsorted(cumulative, rng.random(n) * cumulative[-1], side="right").clip(0, len(items) - 1)]


class CapacityWeightedTraffic:
    """Poisson, capacity-weighted demand with large sinks/sources, daily cycle and drift.

    :param nodes: node indices that may send or receive (the managed node excluded by the caller).
    :param capacity_sat: every node's total channel capacity (the weights).
    """

    def __init__(
        self, nodes: np.ndarray, capacity_sat: np.ndarray, rng: np.random.Generator, config: TrafficConfig | None = None
    ):
        self.config = config or TrafficConfig()
        self.rng = rng
        self.nodes = np.asarray(nodes, dtype=np.int64)
        if len(self.nodes) < 2:
            raise ValueError("traffic needs at least two nodes that can send and receive")
        self.base_weight = capacity_sat[self.nodes].astype(np.float64) + 1.0
        c = self.config
        # Sinks and sources are drawn from the largest nodes (top 5% by capacity), disjointly.
        top = self.nodes[np.argsort(-self.base_weight, kind="stable")[: max(2, len(self.nodes) // 20)]]
        chosen = rng.permutation(top)
        n_sinks = min(c.n_sinks, len(chosen) // 2)
        self.sinks, self.sources = chosen[:n_sinks], chosen[n_sinks : n_sinks + min(c.n_sources, len(chosen) // 2)]
        self._index = {int(n): i for i, n in enumerate(self.nodes.tolist())}
        self.drift = np.ones(len(self.nodes))
        self._drift_epoch: int | None = None
        self._refresh()

    def _refresh(self) -> None:
        weight = self.base_weight * self.drift
        self._cum_all = np.cumsum(weight)
        sink_idx = [self._index[int(n)] for n in self.sinks]
        source_idx = [self._index[int(n)] for n in self.sources]
        self._cum_sinks = np.cumsum(weight[sink_idx]) if sink_idx else None
        self._cum_sources = np.cumsum(weight[source_idx]) if source_idx else None

    def _advance_drift(self, t: float) -> None:
        epoch = int(t // self.config.drift_period_s)
        if self._drift_epoch is None:
            self._drift_epoch = epoch
            return
        steps = epoch - self._drift_epoch
        if steps > 0 and self.config.drift_sigma > 0:
            shocks = self.rng.normal(0.0, self.config.drift_sigma * math.sqrt(steps), len(self.nodes))
            self.drift *= np.exp(shocks)
            self._refresh()
        self._drift_epoch = epoch

    def get_state(self) -> dict:
        """What later draws depend on beyond the constructor's arguments: the generator and the drift walk.

        JSON-able, for saving a simulation between commands (:mod:`lnlens_sim.state`).
        """
        drifted = self._drift_epoch is not None and bool((self.drift != 1.0).any())
        return {"rng": self.rng.bit_generator.state, "drift_epoch": self._drift_epoch,
                "drift": self.drift.tolist() if drifted else None}  # fmt: skip

    def set_state(self, state: dict) -> None:
        """Continue from :meth:`get_state` of a generator built with the same arguments."""
        self.rng.bit_generator.state = state["rng"]
        self._drift_epoch = state["drift_epoch"]
        if state["drift"] is not None:
            if len(state["drift"]) != len(self.nodes):
                raise ValueError("the saved drift is for another set of traffic nodes")
            self.drift = np.asarray(state["drift"], dtype=np.float64)
        self._refresh()

    def rate_per_s(self, t: float) -> float:
        """Expected payments per second at time ``t`` (daily cycle peaking at ``peak_hour_utc``)."""
        c = self.config
        phase = 2 * math.pi * ((t % DAY_S) / DAY_S - c.peak_hour_utc / 24.0)
        return c.payments_per_hour / 3600.0 * (1.0 + c.daily_amplitude * math.cos(phase))

    def draw(self, t0: float, t1: float) -> Arrivals:
        """The payments arriving in ``[t0, t1)``."""
        self._advance_drift(t0)
        rng, c = self.rng, self.config
        n = int(rng.poisson(self.rate_per_s((t0 + t1) / 2) * (t1 - t0)))
        times = t0 + np.sort(rng.random(n)) * (t1 - t0)
        senders = _pick(rng, self._cum_all, self.nodes, n)
        receivers = _pick(rng, self._cum_all, self.nodes, n)
        if self._cum_sinks is not None:
            to_sink = rng.random(n) < c.sink_share
            receivers[to_sink] = _pick(rng, self._cum_sinks, self.sinks, int(to_sink.sum()))
        if self._cum_sources is not None:
            from_source = rng.random(n) < c.source_share
            senders[from_source] = _pick(rng, self._cum_sources, self.sources, int(from_source.sum()))
        for _ in range(8):  # a payment to oneself is redrawn (a handful of times at most)
            same = senders == receivers
            if not same.any():
                break
            receivers[same] = _pick(rng, self._cum_all, self.nodes, int(same.sum()))
        keep = senders != receivers
        mu = math.log(c.amount_mean_msat) - c.amount_sigma**2 / 2  # so that the mean is amount_mean_msat
        amounts = np.clip(rng.lognormal(mu, c.amount_sigma, n), c.min_amount_msat, c.max_amount_msat)
        return Arrivals(times[keep], senders[keep], receivers[keep], amounts.astype(np.int64)[keep])


class LightningLensTraffic:
    """LightningLens's traffic as a preset (SEEDS row 48).

    Payments come one at a time with gaps ~ U(10, 30) s and amounts ~ U(500, 3000)
    sat. The seed names three patterns in proportions 70/25/5 without defining them
    in our sources; lnlens reads them as: 70% a uniformly random pair, 25% a payment
    to one fixed merchant node (directional flow that drains channels), 5% a large
    payment (the amount times 10).
    """

    PATTERN_SHARES = (0.70, 0.25, 0.05)

    def __init__(self, nodes: np.ndarray, merchant: int, rng: np.random.Generator) -> None:
        self.nodes = np.asarray(nodes, dtype=np.int64)
        if len(self.nodes) < 2 or merchant not in set(self.nodes.tolist()):
            raise ValueError("the merchant must be one of at least two traffic nodes")
        self.merchant = merchant
        self.rng = rng
        self._next: float | None = None

    def get_state(self) -> dict:
        """The generator and the next arrival time (see :meth:`CapacityWeightedTraffic.get_state`)."""
        return {"rng": self.rng.bit_generator.state, "next": self._next}

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self._next = state["next"]

    def draw(self, t0: float, t1: float) -> Arrivals:
        rng = self.rng
        if self._next is None:
            self._next = t0 + rng.uniform(10.0, 30.0)
        times, senders, receivers, amounts = [], [], [], []
        while self._next < t1:
            pattern = rng.choice(3, p=self.PATTERN_SHARES)
            sender, receiver = (int(x) for x in rng.choice(self.nodes, 2, replace=False))
            if pattern == 1:
                others = self.nodes[self.nodes != self.merchant]
                sender, receiver = int(rng.choice(others)), self.merchant
            sat = int(rng.integers(500, 3001)) * (10 if pattern == 2 else 1)
            times.append(self._next)
            senders.append(sender)
            receivers.append(receiver)
            amounts.append(sat * 1000)
            self._next += rng.uniform(10.0, 30.0)
        return Arrivals(
            np.array(times, dtype=np.float64),
            np.array(senders, dtype=np.int64),
            np.array(receivers, dtype=np.int64),
            np.array(amounts, dtype=np.int64),
        )
