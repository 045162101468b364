"""lnlens's shipped liquidity model and its model card.

``liquidity-default.onnx`` is trained reproducibly by ``make model`` (models/train/make_default.py:
fixed seeds, simulated mainnet data); ``liquidity-default.json`` is its model card (data, features,
target, metrics against baselines, confidence table, permutation importance) and
``MODEL_CARD.md`` the prose around it. All are read through importlib.resources.
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

__all__ = ["DEFAULT_MODEL", "model_bytes", "model_card", "model_card_text"]

DEFAULT_MODEL = "liquidity-default"


def model_bytes(name: str = DEFAULT_MODEL) -> bytes:
    """The ONNX model file's bytes."""
    return files(__name__).joinpath(f"{name}.onnx").read_bytes()


def model_card(name: str = DEFAULT_MODEL) -> dict[str, Any]:
    """The machine-readable model card written when the model was trained."""
    return json.loads(files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8"))


def model_card_text() -> str:
    """The prose model card (data, features, target, metrics, limits)."""
    return files(__name__).joinpath("MODEL_CARD.md").read_text(encoding="utf-8")
