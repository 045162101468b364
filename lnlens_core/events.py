"""Typed records handed to the ``track_event`` hook, in batches.

New kinds are added here as lnlens learns to do new things; observers ignore
kinds they do not know, so adding one never needs a new hook.
"""

from __future__ import annotations

from dataclasses import dataclass

from .domain import HtlcEvent

__all__ = ["ForwardRecorded", "LensEvent"]


@dataclass(frozen=True, slots=True)
class ForwardRecorded:
    """A forward was stored for the first time or resolved (settled or failed).

    ``source`` says where it came from: ``live``, ``backfill`` or ``sim``.
    """

    event: HtlcEvent
    source: str


LensEvent = ForwardRecorded
