"""Typed records handed to the ``track_event`` hook, in batches.

New kinds are added here as lnlens learns to do new things; observers ignore
kinds they do not know, so adding one never needs a new hook.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .domain import ChannelId, ChannelPolicy, FeeUpdate, HtlcEvent, Opportunity, Recommendation

__all__ = [
    "ForwardRecorded",
    "OpportunitiesFound",
    "FeeUpdatePlanned",
    "FeeUpdateApplied",
    "FeeUpdateVetoed",
    "FeeUpdateRolledBack",
    "StrategyFailed",
    "ModelCandidateDecided",
    "ModelDriftMeasured",
    "ModelSuggested",
    "LensEvent",
]


@dataclass(frozen=True, slots=True)
class ForwardRecorded:
    """A forward was stored for the first time or resolved (settled or failed).

    ``source`` says where it came from: ``live``, ``backfill`` or ``sim``.
    """

    event: HtlcEvent
    source: str


@dataclass(frozen=True, slots=True)
class OpportunitiesFound:
    """An analysis run finished; ``opportunities`` are per channel, most urgent first."""

    run_time: float
    window_s: int
    opportunities: tuple[Opportunity, ...]


@dataclass(frozen=True, slots=True)
class FeeUpdatePlanned:
    """The fee engine wants to change a channel (after the rails, before vetoes); ``applying`` is False on a dry run."""

    time: float
    channel_id: ChannelId
    policy: str | None
    strategy: str | None
    update: FeeUpdate
    reason: str
    applying: bool


@dataclass(frozen=True, slots=True)
class FeeUpdateApplied:
    """A change reached the node: ``old`` and ``new`` are the whole policy before and as the node reports it after.

    ``verified`` is False when the node's policy differs from what was asked (see the journal's detail).
    """

    time: float
    journal_id: int
    channel_id: ChannelId
    old: ChannelPolicy
    new: ChannelPolicy
    verified: bool


@dataclass(frozen=True, slots=True)
class FeeUpdateVetoed:
    """``check_fee_update`` vetoed a change: ``vetoes`` are ``(plugin, reason)`` pairs."""

    time: float
    channel_id: ChannelId
    update: FeeUpdate
    vetoes: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class FeeUpdateRolledBack:
    """Journal entry ``rollback_of`` was reverted to its exact previous policy by entry ``journal_id``."""

    time: float
    journal_id: int
    rollback_of: int
    channel_id: ChannelId
    reason: str
    automatic: bool


@dataclass(frozen=True, slots=True)
class StrategyFailed:
    """A strategy could not decide for a channel; the channel was kept unchanged."""

    time: float
    channel_id: ChannelId
    strategy: str | None
    error: str


@dataclass(frozen=True, slots=True)
class ModelCandidateDecided:
    """The online learner offered a candidate model; the registry promoted it or kept it inactive, and why."""

    time: float
    model_id: int
    name: str
    version: str
    promoted: bool
    reason: str
    candidate_mae: float | None
    """Its MAE on the held-out window (None when the window was too small to score)."""
    current_mae: float | None
    """The serving model's MAE on the same window (None when none served or it was not scored)."""
    holdout_samples: int


@dataclass(frozen=True, slots=True)
class ModelDriftMeasured:
    """A daemon measured the served model's drift indicators (``summary``: lnlens_core.model.learning.drift_summary)."""

    time: float
    model: str
    summary: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ModelSuggested:
    """The liquidity model's rebalancing suggestions of one periodic run, best first (possibly none)."""

    time: float
    model: str
    suggestions: tuple[Recommendation, ...]


LensEvent = (
    ForwardRecorded
    | OpportunitiesFound
    | FeeUpdatePlanned
    | FeeUpdateApplied
    | FeeUpdateVetoed
    | FeeUpdateRolledBack
    | StrategyFailed
    | ModelCandidateDecided
    | ModelDriftMeasured
    | ModelSuggested
)
