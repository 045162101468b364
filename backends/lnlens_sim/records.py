"""What a simulation counts: per-forward ground truth no real node could know, and run counters."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["GroundTruth", "RunStats"]


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """What the simulator knows about one forward at our node that no real node could.

    ``fee_at_policy_msat`` is the fee our policy in force asked for this HTLC: for a
    failed forward, the fee it would have paid us had it gone through.
    """

    key: str
    payment_id: int
    attempt: int
    route_hops: int
    hop_index: int
    fee_offered_msat: int
    fee_at_policy_msat: int
    refused_here: bool
    downstream_ok: bool | None


@dataclass(slots=True)
class RunStats:
    """Counters over everything simulated so far (the whole network, and our node)."""

    payments: int = 0
    settled: int = 0
    no_route: int = 0
    attempts: int = 0
    network_fees_msat: int = 0
    our_settled: int = 0
    our_failed: Counter[str] = field(default_factory=Counter)
    revenue_msat: int = 0
    rebalances: int = 0
    rebalances_ok: int = 0
    rebalance_fee_msat: int = 0
    rebalance_volume_msat: int = 0

    @property
    def success_rate(self) -> float | None:
        return self.settled / self.payments if self.payments else None
