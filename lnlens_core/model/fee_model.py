"""Serving the fee-response model: what a channel would earn over the next day at another fee.

The liquidity model predicts balance ratios; the money a routing node makes depends
on its fee levels too, and how senders answer a fee change differs per node and
channel. The fee-response model takes the liquidity model's features plus
``log2_fee_multiplier`` and predicts the fee revenue (msat) the channel earns over the
next 24 h with its fee times that multiplier. :meth:`FeeResponseModel.opinions`
evaluates every multiplier of the model's grid (metadata ``multipliers``) and gives a
channel the best one when it beats keeping the fee by ``min_gain`` and at least
``min_gain_msat`` a day. Trained in the simulator by ``models/train/fee_response.py``
(docs/MODEL.md, "Fee-response model"); onnxruntime only, as for the liquidity model.

``confidence`` on every opinion is the model's metadata ``confidence``: the share of
held-out simulated runs in which following its opinions earned more than keeping the
fees. It is one number per model, not per channel; ``model_driven`` compares it with
its ``min_confidence``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..domain import Channel, ChannelId
from ..errors import ModelError
from ..fees.signals import ModelPrediction
from .features import FEATURE_NAMES
from .inference import OnnxModel, shipped_model_file

__all__ = ["FeeResponseModel", "FEE_INPUTS", "FEE_OUTPUT", "default_fee_model_path"]

FEE_INPUTS = (*FEATURE_NAMES, "log2_fee_multiplier")
FEE_OUTPUT = "revenue_msat_next_24h"


def default_fee_model_path() -> Path | None:
    """The shipped fee-response model (None when it is absent)."""
    return shipped_model_file("fee-response-default.onnx")


class FeeResponseModel(OnnxModel):
    """A loaded fee-response model (:meth:`OnnxModel.load` checks its inputs and output)."""

    INPUT_NAMES: ClassVar[tuple[str, ...]] = FEE_INPUTS
    OUTPUT: ClassVar[str] = FEE_OUTPUT

    @property
    def multipliers(self) -> tuple[float, ...]:
        grid = self.json_meta("multipliers")
        if not grid or 1.0 not in grid:
            raise ModelError(f"{self.source}: the fee-response model has no multiplier grid with 1.0 in it")
        return tuple(float(m) for m in grid)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted revenue (msat over the next 24 h) for rows of features plus log2 of a multiplier."""
        return self.run(x)[1]

    def opinions(
        self,
        channels: Sequence[Channel],
        features: np.ndarray,
        *,
        min_gain: float = 0.1,
        min_gain_msat: int = 1_000,
    ) -> dict[ChannelId, ModelPrediction]:
        """The fee each channel should have, where the best multiplier beats keeping its fee.

        Channels at 0 ppm (no multiplier moves them) and inactive ones get no opinion.
        """
        grid = self.multipliers
        logs = np.log2(np.array(grid))
        keep_at = grid.index(1.0)
        confidence = float(self.json_meta("confidence") or 0.0)
        label = f"{self.name}-{self.version}"
        rows, who = [], []
        for ch, row in zip(channels, features, strict=True):
            if ch.local_policy is not None and ch.local_policy.fee_ppm > 0 and ch.active:
                rows.append(np.column_stack([np.repeat(row[None, :], len(grid), axis=0), logs]))
                who.append(ch)
        if not rows:
            return {}
        revenue = self.predict(np.vstack(rows)).reshape(len(who), len(grid))
        out: dict[ChannelId, ModelPrediction] = {}
        for ch, pred in zip(who, revenue, strict=True):
            best = int(np.argmax(pred))
            keep = pred[keep_at]
            if best != keep_at and pred[best] > keep * (1 + min_gain) and pred[best] - keep >= min_gain_msat:
                fee = max(1, round(ch.local_policy.fee_ppm * grid[best]))  # type: ignore[union-attr]
                out[ch.channel_id] = ModelPrediction(model=label, fee_ppm=fee, confidence=confidence)
        return out
