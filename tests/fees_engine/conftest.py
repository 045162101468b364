"""Fixtures for the fee engine: a lens over FakeNode and policy files written on the fly."""

from __future__ import annotations

import pytest

from lnlens_core.fees.chargelnd import load_policy_file
from lnlens_core.fees.engine import FeeEngine
from lnlens_core.fees.rails import Rails
from lnlens_core.testing import FakeNode, make_channel


@pytest.fixture
def node() -> FakeNode:
    return FakeNode([
        make_channel("800000x1x0", local_ratio=0.5, fee_ppm=100, peer_id="03" + "aa" * 32, peer_alias="alpha"),
        make_channel("800001x2x1", local_ratio=0.1, fee_ppm=500, peer_id="03" + "bb" * 32, peer_alias="beta"),
        make_channel("800002x3x0", local_ratio=0.9, fee_ppm=50, peer_id="03" + "cc" * 32, peer_alias="gamma"),
    ])  # fmt: skip


@pytest.fixture
def make_engine(lens, node, tmp_path):
    def make(text: str | None, rails: Rails | None = None, **kwargs):
        policies = None
        if text is not None:
            path = tmp_path / "policy.ini"
            path.write_text(text)
            policies = load_policy_file(path, lens.strategies)
        return FeeEngine(lens, node, policies=policies, rails=rails or Rails(cooldown_s=0), **kwargs)

    return make
