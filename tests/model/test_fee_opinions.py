"""The model's fee opinions: from predicted ratios to fee rates, and into model_driven through the engine."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from lnlens_core.domain import ChannelId
from lnlens_core.fees.engine import FeeEngine
from lnlens_core.lens import Lens
from lnlens_core.model.registry import ModelRegistry
from lnlens_core.model.suggestions import fee_suggestions
from lnlens_core.testing import FakeNode, centring_model, make_channel

TABLE = [{"gap_min": 0.1, "gap_max": 0.2, "n": 50, "win_rate": 0.8}]
A, B, C, D, E = (ChannelId(i, 1, 0) for i in range(1, 6))


def test_cheaper_above_the_optimum_dearer_below_silent_near_it():
    channels = [
        make_channel(A, local_ratio=0.1, fee_ppm=1000),  # short of its optimum 0.25: dearer
        make_channel(B, local_ratio=0.9, fee_ppm=100),  # far above 0.5: cheaper
        make_channel(C, local_ratio=0.6, fee_ppm=100),  # within min_gap: no opinion
        make_channel(D, local_ratio=0.5, fee_ppm=0),  # below its optimum at 0 ppm: at least 1 ppm
        make_channel(E, local_ratio=0.5, fee_ppm=100),  # no prediction (NaN)
    ]
    predicted = np.array([0.25, 0.5, 0.65, 0.7, np.nan])
    got = fee_suggestions(channels, predicted, confidence_table=TABLE, model_version="m-1")
    assert set(got) == {A, B, D}
    assert (got[A].fee_ppm, got[A].confidence, got[A].model) == (1200, 0.8, "m-1")  # gap 0.15: the table's bin
    assert (got[B].fee_ppm, got[B].confidence) == (80, 0.0)  # gap 0.4: no held-out evidence
    assert got[D].fee_ppm == 1
    tiny_fee = fee_suggestions([make_channel(A, local_ratio=0.9, fee_ppm=1)], np.array([0.2]))
    assert tiny_fee[A].fee_ppm == 0  # one ppm lower at least, never negative


POLICY = "[default]\nstrategy = model_driven\nmin_confidence = 0\n"


def test_the_engine_runs_the_serving_model_for_model_driven(lens, tmp_path, monkeypatch):
    # Without a fee-response model installed, model_driven follows the liquidity model's balance opinions.
    monkeypatch.setattr("lnlens_core.model.fee_model.default_fee_model_path", lambda: None)
    node = FakeNode([
        make_channel("800000x1x0", local_ratio=0.5, fee_ppm=100),
        make_channel("800001x2x1", local_ratio=0.1, fee_ppm=500),
        make_channel("800002x3x0", local_ratio=0.9, fee_ppm=50),
    ])  # fmt: skip
    registry = ModelRegistry(lens.store, lens.config.data_dir / "models")
    registry.use(registry.register(centring_model(0.5), name="centre", version="1", metrics={}, now=0.0), now=0.0)
    path = tmp_path / "policy.ini"
    path.write_text(POLICY)
    engine = FeeEngine.from_config(lens, node, policy_path=path)
    plan = engine.plan()
    rows = {str(c.channel_id): c for c in plan.changes}
    assert rows["800001x2x1"].changes == {"fee_ppm": (500, 600)}
    assert "centre-0.5 suggests 600 ppm" in rows["800001x2x1"].reason
    assert rows["800002x3x0"].changes == {"fee_ppm": (50, 40)}
    assert not rows["800000x1x0"].changes and "no model opinion" in rows["800000x1x0"].reason
    # A long-lived engine (the daemons keep one) asks the model again at every plan: never stale opinions.
    gamma = ChannelId.parse("800002x3x0")
    node.channels[gamma] = make_channel(gamma, local_ratio=0.5, fee_ppm=50)
    assert not {str(c.channel_id): c for c in engine.plan().changes}["800002x3x0"].changes
    assert not [n for n in plan.notes if "model" in n]


def _broken_model_lens(lens, tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    return Lens(replace(lens.config, model_path=broken), store=lens.store, clock=lens.clock, pm=lens.pm)


def test_without_a_usable_model_the_plan_says_why_and_keeps_fees(lens, tmp_path):
    lens = _broken_model_lens(lens, tmp_path)
    node = FakeNode([make_channel("800001x2x1", local_ratio=0.1, fee_ppm=500)])
    path = tmp_path / "policy.ini"
    path.write_text(POLICY)
    plan = FeeEngine.from_config(lens, node, policy_path=path).plan()
    assert not plan.changes[0].changes
    assert any(n.startswith("model_driven: no model can be used") and "broken.onnx" in n for n in plan.notes)


def test_a_file_without_model_driven_never_runs_the_model(lens, tmp_path):
    lens = _broken_model_lens(lens, tmp_path)  # it would be reported if it were loaded
    path = tmp_path / "policy.ini"
    path.write_text("[default]\nstrategy = static\nfee_ppm = 10\n")
    engine = FeeEngine.from_config(lens, FakeNode([make_channel("800001x2x1")]), policy_path=path)
    assert not engine.runs_model and not [n for n in engine.plan().notes if "model" in n]
