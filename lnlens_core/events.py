"""Typed records handed to the ``track_event`` hook, in batches.

New kinds are added here as lnlens learns to do new things; observers ignore
kinds they do not know, so adding one never needs a new hook.
"""

from __future__ import annotations

from dataclasses import dataclass

from .domain import HtlcEvent, Opportunity

__all__ = ["ForwardRecorded", "OpportunitiesFound", "LensEvent"]


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


LensEvent = ForwardRecorded | OpportunitiesFound
