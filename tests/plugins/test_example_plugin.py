"""plugins/lnlens-fee-example is a separate distribution: found by its entry point, its hooks used."""

from __future__ import annotations

import importlib.metadata

import pytest

from lnlens_core.config import LensConfig
from lnlens_core.domain import ChannelPolicy, FeeUpdate
from lnlens_core.fees.strategy import FeeContext, build_strategy
from lnlens_core.lens import Lens
from lnlens_core.plugins import get_plugin_manager, list_plugins
from lnlens_core.testing import FakeNode, make_channel


def test_installed_as_a_separate_distribution():
    eps = [ep for ep in importlib.metadata.entry_points(group="lnlens") if ep.name == "fee_example"]
    assert eps, "make test installs plugins/lnlens-fee-example; run it, or pip install -e plugins/lnlens-fee-example"
    assert eps[0].dist.name == "lnlens-fee-example"


@pytest.fixture
def lens_with_entrypoints(tmp_path, store, manual_clock):
    config = LensConfig(
        data_dir=tmp_path,
        db_path=tmp_path / "db.sqlite3",
        plugins={"fee_example": {"channels": ["800000x1x0"], "offset_ppm": 50, "max_fee_ppm": 2500}},
    )
    return Lens(config, store=store, clock=manual_clock, pm=get_plugin_manager())


def test_discovered_listed_and_its_results_used(lens_with_entrypoints):
    lens = lens_with_entrypoints
    info = {p.name: p for p in list_plugins(lens.pm)}["fee_example"]
    assert info.version == "0.1.0" and not info.builtin
    assert set(info.hooks) == {"register_fee_strategies", "select_fee_strategy", "check_fee_update"}

    node = FakeNode([make_channel("800000x1x0"), make_channel("800001x1x0")])
    node.peer_policies[node.list_channels()[0].channel_id] = ChannelPolicy(0, 400)
    chosen, other = node.list_channels()
    choice = lens.select_strategy(chosen, node.get_info())
    assert (choice.policy, choice.strategy, dict(choice.params)) == ("fee_example", "peer_offset", {"offset_ppm": 50})
    assert lens.select_strategy(other, node.get_info()) is None

    strategy = build_strategy(lens.strategies[choice.strategy], choice.params, where="test")
    ctx = FeeContext(0.0, node.get_info(), node.capabilities, node.get_peer_policy(chosen.channel_id))
    proposal = strategy.propose(chosen, ctx)
    assert proposal.update == FeeUpdate(fee_ppm=450)
    assert lens.vetoes(proposal.update, chosen) == []
    assert lens.vetoes(FeeUpdate(fee_ppm=3000), chosen) == [
        ("fee_example", "fee 3000 ppm is above the example plugin's ceiling of 2500 ppm")
    ]


def test_blocked_plugin_is_not_loaded():
    pm = get_plugin_manager(blocked=["fee_example"])
    assert "fee_example" not in {p.name for p in list_plugins(pm)}
