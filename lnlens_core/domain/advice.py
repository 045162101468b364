"""What the analyzer finds and recommends: opportunities and recommendations."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .forwards import FailureCategory
from .ids import ChannelId

__all__ = ["RecommendationKind", "Recommendation", "Opportunity"]


class RecommendationKind(enum.StrEnum):
    REBALANCE_INBOUND = "rebalance_inbound"
    REBALANCE_OUTBOUND = "rebalance_outbound"
    LOWER_FEES = "lower_fees"
    RAISE_FEES = "raise_fees"
    INCREASE_CAPACITY = "increase_capacity"
    INVESTIGATE = "investigate"


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One thing an operator could do, with why and by how much.

    A rebalance names ``source_channel`` (where liquidity leaves) and
    ``target_channel`` (where it arrives) and ``amount_msat``; a fee move names
    ``proposed_fee_ppm``. ``evidence`` holds the numbers behind ``reason``.
    """

    kind: RecommendationKind
    channel_id: ChannelId
    reason: str
    evidence: dict[str, int | float | str] = field(default_factory=dict)
    source_channel: ChannelId | None = None
    target_channel: ChannelId | None = None
    amount_msat: int | None = None
    proposed_fee_ppm: int | None = None
    origin: str = "lnlens"


@dataclass(frozen=True, slots=True)
class Opportunity:
    """Routing revenue missed on one channel (``in_channel`` None) or one channel pair, over a window.

    Counts cover forwards that resolved in the window. Missed revenue is what each
    payment refused *at our node* would have paid at the policy in force then, once per
    payment and only if it did not then go through us (``missed_recovered_msat``);
    ``missed_revenue_htlc_msat`` counts every refused HTLC. Downstream failures are
    counted (``failed_downstream``) but never priced. The monthly projection is a
    point with a 90 % range, scaled from ``observed_s``.
    """

    channel_id: ChannelId
    in_channel: ChannelId | None
    peer_id: str
    peer_alias: str
    window_s: int
    observed_s: int
    attempts: int
    settled: int
    failed_liquidity: int
    failed_fee: int
    failed_other: int
    failed_downstream: int
    revenue_msat: int
    missed_revenue_msat: int
    missed_volume_msat: int
    missed_liquidity_msat: int
    projected_monthly_missed_msat: int
    projected_monthly_missed_low_msat: int
    projected_monthly_missed_high_msat: int
    urgency: int
    urgency_components: dict[str, float] = field(default_factory=dict)
    recommendations: tuple[Recommendation, ...] = ()
    missed_revenue_htlc_msat: int = 0
    missed_recovered_msat: int = 0

    @property
    def failed(self) -> int:
        """Failures at our node (downstream ones excluded)."""
        return self.failed_liquidity + self.failed_fee + self.failed_other

    @property
    def success_rate(self) -> float | None:
        return self.settled / self.attempts if self.attempts else None

    @property
    def cause(self) -> FailureCategory | None:
        """The category with the most failures here (liquidity wins ties: it is the costlier one)."""
        counts = {
            FailureCategory.LIQUIDITY: self.failed_liquidity,
            FailureCategory.FEE: self.failed_fee,
            FailureCategory.OTHER: self.failed_other,
        }
        best = max(counts, key=lambda c: counts[c])
        return best if counts[best] else None
