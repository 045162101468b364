"""The committed default model loads, matches the feature schema and agrees with its model card."""

from __future__ import annotations

import json

import pytest

lnlens_models = pytest.importorskip("lnlens_models")


def test_default_model_loads_and_matches_the_schema():
    from lnlens_core.model.features import FEATURE_NAMES
    from lnlens_core.model.inference import OnnxModel
    from lnlens_core.model.registry import default_model_path

    payload = lnlens_models.model_bytes()
    assert len(payload) < 2_000_000  # small enough to commit
    model = OnnxModel.load(payload)
    assert model.json_meta("feature_names") == list(FEATURE_NAMES)
    assert default_model_path() is not None and OnnxModel.load(default_model_path()).version == model.version


def test_model_card_agrees_with_the_model():
    from lnlens_core.model.inference import OnnxModel

    card = lnlens_models.model_card()
    model = OnnxModel.load(lnlens_models.model_bytes())
    assert card["metrics"] == json.loads(model.metadata["metrics"])
    assert card["confidence"] == json.loads(model.metadata["confidence"])
    assert card["parity_max_abs_diff"] < 1e-5
    text = lnlens_models.model_card_text()
    for section in ("## Data", "## Features", "## Target", "## Metrics", "## Limits"):
        assert section in text


def test_the_default_model_carries_its_route_cost_and_learned_the_net_value_target():
    from lnlens_core.model.inference import OnnxModel
    from lnlens_core.model.learning import TARGET_DEFINITION
    from lnlens_core.model.liquidity import route_cost_ppm

    card = lnlens_models.model_card()
    model = OnnxModel.load(lnlens_models.model_bytes())
    assert model.metadata["target"] == TARGET_DEFINITION
    assert "net of the circular-rebalance route cost" in TARGET_DEFINITION
    assert route_cost_ppm(model) == card["route_cost_ppm"] > 0  # what suggestions estimate with where nothing quotes
    assert card["plan"]["eval_seeds"] and card["held_out_sweep_nodes"]  # judged on nodes and seeds it never saw


def test_suggestions_quote_where_the_backend_can():
    from lnlens_sim.scenario import SimSettings, build

    from lnlens_core.model.liquidity import route_quote

    node = build(SimSettings(network="synthetic", nodes=60, seed=1))
    assert route_quote(node) == node.quote_rebalance and route_quote(object()) is None and route_quote(None) is None
