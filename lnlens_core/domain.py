"""The domain model: frozen, slotted records that cross every boundary in lnlens.

Every amount is an integer millisatoshi (``*_msat``), every fee rate is parts per
million (``*_ppm``), times are float epoch seconds (``*_time``, CLN's convention)
and channels are identified by :class:`ChannelId` (``BLOCKxTXxOUT``). No protobuf,
pyln ``Millisatoshi`` or other wire type ever appears here: adapters convert.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any

__all__ = [
    "ChannelId",
    "ChannelPolicy",
    "PendingHtlc",
    "Channel",
    "NodeInfo",
    "ForwardStatus",
    "FailureCategory",
    "FailureReason",
    "HtlcEvent",
    "Forward",
    "ForwardPage",
    "FeeUpdate",
    "RecommendationKind",
    "Recommendation",
    "Opportunity",
]

_SCID_X = re.compile(r"^(\d+)x(\d+)x(\d+)$")
_SCID_COLON = re.compile(r"^(\d+):(\d+):(\d+)$")


@dataclass(frozen=True, slots=True, order=True, eq=True)
class ChannelId:
    """A short channel id: funding block height, transaction index, output index.

    The canonical text form is ``BLOCKxTXxOUT`` (CLN). LND uses the packed uint64
    ``block << 40 | tx << 16 | out``; charge-lnd also accepts ``BLOCK:TX:OUT``.
    """

    block: int
    tx: int
    output: int
    # Channel ids key every hot dictionary (flows, policies): hash once, not per lookup.
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        if not (0 <= self.block < 1 << 24 and 0 <= self.tx < 1 << 24 and 0 <= self.output < 1 << 16):
            raise ValueError(f"short channel id out of range: {self.block}x{self.tx}x{self.output}")
        object.__setattr__(self, "_hash", hash(self.block << 40 | self.tx << 16 | self.output))

    def __hash__(self) -> int:
        return self._hash

    @classmethod
    def parse(cls, value: str | int | ChannelId) -> ChannelId:
        """Read ``BLOCKxTXxOUT``, ``BLOCK:TX:OUT`` or a decimal uint64 (int or string).

        :raises ValueError: naming the value when it is none of these.
        """
        if isinstance(value, ChannelId):
            return value
        if isinstance(value, bool):
            raise ValueError(f"not a channel id: {value!r}")
        if isinstance(value, int):
            return cls.from_int(value)
        return _parse_text(str(value))

    @classmethod
    def _from_text(cls, value: str) -> ChannelId:
        text = value.strip()
        # charge-lnd checks the colon form first; the order does not matter for valid input.
        match = _SCID_COLON.match(text) or _SCID_X.match(text)
        if match:
            return cls(int(match[1]), int(match[2]), int(match[3]))
        if text.isdigit():
            return cls.from_int(int(text))
        raise ValueError(f"not a channel id (want BLOCKxTXxOUT, BLOCK:TX:OUT or a uint64): {value!r}")

    @classmethod
    def from_int(cls, value: int) -> ChannelId:
        """Unpack LND's uint64 form."""
        if not 0 <= value < 1 << 64:
            raise ValueError(f"channel id out of uint64 range: {value}")
        return cls(value >> 40, (value >> 16) & 0xFFFFFF, value & 0xFFFF)

    def to_int(self) -> int:
        """Pack into LND's uint64 form."""
        return self.block << 40 | self.tx << 16 | self.output

    def colon(self) -> str:
        """The ``BLOCK:TX:OUT`` form."""
        return f"{self.block}:{self.tx}:{self.output}"

    def __str__(self) -> str:
        return f"{self.block}x{self.tx}x{self.output}"


@functools.lru_cache(maxsize=65_536)
def _parse_text(value: str) -> ChannelId:
    # Stores and wire formats repeat the same few thousand ids millions of times.
    return ChannelId._from_text(value)


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    """One direction's forwarding policy: what a node charges to forward *out* of a channel.

    Inbound fees (LND >= 0.18) are charged by the node on HTLCs arriving over this
    channel; they are usually negative (a discount). ``max_htlc_msat=None`` means
    no limit below the channel capacity.
    """

    base_fee_msat: int
    fee_ppm: int
    inbound_base_fee_msat: int = 0
    inbound_fee_ppm: int = 0
    min_htlc_msat: int = 0
    max_htlc_msat: int | None = None
    cltv_delta: int = 80
    disabled: bool = False

    def fee_msat(self, out_msat: int) -> int:
        """The outbound fee for forwarding ``out_msat`` (BOLT 7: rounded down)."""
        return self.base_fee_msat + out_msat * self.fee_ppm // 1_000_000

    def inbound_fee_msat(self, out_msat: int) -> int:
        """The inbound fee (negative: a discount) on an HTLC that leaves with ``out_msat``.

        LND computes it on the outgoing amount plus the outbound fee; callers pass that sum.
        """
        return self.inbound_base_fee_msat + out_msat * self.inbound_fee_ppm // 1_000_000


@dataclass(frozen=True, slots=True)
class PendingHtlc:
    """An HTLC in flight on one of our channels."""

    incoming: bool
    amount_msat: int
    expiry_height: int


@dataclass(frozen=True, slots=True)
class Channel:
    """One of our channels as the node reports it now, with our local policy.

    Balances are what each side owns (reserves included); ``spendable_msat`` is
    what can leave now, when the backend knows it.
    """

    channel_id: ChannelId
    peer_id: str
    capacity_msat: int
    local_balance_msat: int
    remote_balance_msat: int
    local_policy: ChannelPolicy
    active: bool = True
    private: bool = False
    initiator: bool | None = None
    peer_alias: str = ""
    local_reserve_msat: int = 0
    remote_reserve_msat: int = 0
    commit_fee_msat: int = 0
    pending_htlcs: tuple[PendingHtlc, ...] = ()
    spendable_msat: int | None = None
    receivable_msat: int | None = None

    @property
    def balance_ratio(self) -> float | None:
        """Local share of the balance, 0..1; ``None`` when both sides are empty."""
        total = self.local_balance_msat + self.remote_balance_msat
        return self.local_balance_msat / total if total else None


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """Identity of the node a backend talks to."""

    pubkey: str
    alias: str
    network: str
    block_height: int
    version: str
    backend: str


class ForwardStatus(enum.StrEnum):
    """CLN's forward_event status vocabulary, which every adapter maps onto."""

    OFFERED = "offered"
    SETTLED = "settled"
    LOCAL_FAILED = "local_failed"
    FAILED = "failed"

    @property
    def resolved(self) -> bool:
        return self is not ForwardStatus.OFFERED


class FailureCategory(enum.StrEnum):
    """Why a forward failed, as far as what to do about it goes."""

    LIQUIDITY = "liquidity"
    FEE = "fee"
    OTHER = "other"


class FailureReason(enum.StrEnum):
    """The fine-grained cause of a failed forward; each maps to one category."""

    INSUFFICIENT_BALANCE = "insufficient_balance"
    FEE_INSUFFICIENT = "fee_insufficient"
    HTLC_LIMIT = "htlc_limit"
    CLTV = "cltv"
    DISABLED = "disabled"
    UNAVAILABLE = "unavailable"
    ONION = "onion"
    DOWNSTREAM = "downstream"
    UNKNOWN = "unknown"

    @property
    def category(self) -> FailureCategory:
        if self is FailureReason.INSUFFICIENT_BALANCE:
            return FailureCategory.LIQUIDITY
        if self is FailureReason.FEE_INSUFFICIENT:
            return FailureCategory.FEE
        return FailureCategory.OTHER


@dataclass(frozen=True, slots=True)
class HtlcEvent:
    """One forwarded HTLC through our node, in CLN's ``forward_event`` vocabulary.

    CLN uses the same shape for live notifications and for ``listforwards`` rows,
    so lnlens does too: ``Forward`` is the same type. An HTLC is identified by
    :attr:`key`; a later event with the same key updates its status.
    ``out_msat``/``fee_msat`` may be unknown for a ``local_failed`` forward.
    """

    in_channel: ChannelId
    in_msat: int
    status: ForwardStatus
    received_time: float
    in_htlc_id: int | None = None
    out_channel: ChannelId | None = None
    out_msat: int | None = None
    fee_msat: int | None = None
    resolved_time: float | None = None
    failure_reason: FailureReason | None = None
    failcode: int | None = None
    failreason: str | None = None

    def __post_init__(self) -> None:
        if self.in_msat < 0 or (self.out_msat is not None and self.out_msat < 0):
            raise ValueError(f"negative amount in forward on {self.in_channel}")
        if self.status is ForwardStatus.SETTLED and self.failure_reason is not None:
            raise ValueError(f"settled forward on {self.in_channel} carries a failure reason")

    @property
    def key(self) -> str:
        """The identity of the HTLC across status updates and across backfill/live.

        ``in_channel/in_htlc_id`` when the backend reports the HTLC id (CLN always,
        LND >= 0.20); otherwise a digest of the fields both sources share.
        """
        if self.in_htlc_id is not None:
            return f"{self.in_channel}/{self.in_htlc_id}"
        raw = f"{self.in_channel}|{self.out_channel}|{self.received_time:.9f}|{self.in_msat}|{self.out_msat}"
        return "h:" + hashlib.sha256(raw.encode()).hexdigest()[:32]

    @property
    def failure_category(self) -> FailureCategory | None:
        return self.failure_reason.category if self.failure_reason else None


Forward = HtlcEvent


@dataclass(frozen=True, slots=True)
class ForwardPage:
    """One page of forwarding history.

    ``next_cursor`` is opaque to the core; the store persists it so that the next
    call resumes exactly after the last event of this page. ``done`` is true when
    the backend has nothing more right now.
    """

    events: tuple[HtlcEvent, ...]
    next_cursor: str
    done: bool


_POLICY_FIELDS = (
    "base_fee_msat",
    "fee_ppm",
    "inbound_base_fee_msat",
    "inbound_fee_ppm",
    "min_htlc_msat",
    "max_htlc_msat",
    "cltv_delta",
    "disabled",
)


@dataclass(frozen=True, slots=True)
class FeeUpdate:
    """A change to our policy on one channel. ``None`` in a field means keep it."""

    base_fee_msat: int | None = None
    fee_ppm: int | None = None
    inbound_base_fee_msat: int | None = None
    inbound_fee_ppm: int | None = None
    min_htlc_msat: int | None = None
    max_htlc_msat: int | None = None
    cltv_delta: int | None = None
    disabled: bool | None = None

    @classmethod
    def between(cls, old: ChannelPolicy, new: ChannelPolicy) -> FeeUpdate:
        """The update that turns ``old`` into ``new`` (only differing fields set)."""
        changed = {name: getattr(new, name) for name in _POLICY_FIELDS if getattr(old, name) != getattr(new, name)}
        return cls(**changed)

    def fields_set(self) -> dict[str, Any]:
        """The fields this update sets, by name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def apply_to(self, policy: ChannelPolicy) -> ChannelPolicy:
        """The policy after this update."""
        return replace(policy, **self.fields_set())

    def changes(self, policy: ChannelPolicy) -> dict[str, tuple[Any, Any]]:
        """``{field: (old, new)}`` for the fields that would actually change."""
        return {
            name: (getattr(policy, name), value)
            for name, value in self.fields_set().items()
            if getattr(policy, name) != value
        }

    def is_empty(self) -> bool:
        return not self.fields_set()


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
    forward that failed *at our node* would have paid at the policy in force then;
    downstream failures are counted (``failed_downstream``) but never priced. The
    monthly projection is a point with a 90 % range, scaled from ``observed_s``.
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
