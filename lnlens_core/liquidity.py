"""The liquidity model over a node's store: features now, predictions, suggestions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .domain import Channel, HtlcEvent, Recommendation
from .features import LONG_WINDOW_S, compute_features, windows_from_events
from .flows import PolicyBook
from .inference import OnnxModel
from .suggestions import rebalance_suggestions

__all__ = ["LiquidityView", "liquidity_view"]


@dataclass(frozen=True, slots=True)
class LiquidityView:
    now: float
    channels: list[Channel]
    features: np.ndarray
    predicted: np.ndarray
    recent: list[HtlcEvent]
    suggestions: list[Recommendation]


def liquidity_view(store, model: OnnxModel, *, now: float, backend=None, min_gap: float = 0.1,
                   limit: int = 10) -> LiquidityView:  # fmt: skip
    """Predict every channel's optimal ratio from the store (and the backend's peer policies, if any)."""
    book = PolicyBook()
    for time, cid, policy in store.policy_history():
        book.observe(cid, policy, time)
    if backend is not None:
        channels = list(backend.list_channels())
        book.observe_channels(channels, now)
        peers = {ch.channel_id: backend.get_peer_policy(ch.channel_id) for ch in channels}
    else:
        _, channels = store.latest_channels(at=now)
        peers = None
    recent = list(store.iter_forwards(since=now - LONG_WINDOW_S, until=now))
    x = compute_features(channels, windows_from_events(recent, book, now), peer_policies=peers, book=book)
    predicted = model.predict(x) if len(channels) else np.zeros(0)
    suggestions = rebalance_suggestions(
        channels, predicted, recent, now=now, confidence_table=model.json_meta("confidence") or (),
        model_version=f"{model.name}-{model.version}", min_gap=min_gap, limit=limit,
    )  # fmt: skip
    return LiquidityView(now, channels, x, predicted, recent, suggestions)
