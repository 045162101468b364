"""The charge-lnd strategies reach lnlens through the register_fee_strategies hook, once each."""

from __future__ import annotations

import pytest

from lnlens_core.errors import ConfigError
from lnlens_core.fees.chargelnd import funding_fee_share_msat
from lnlens_core.fees.strategy import build_strategy, strategy_parameters
from lnlens_core.plugins import get_plugin_manager

CHARGE_LND = {"ignore", "ignore_fees", "static", "match_peer", "proportional", "cost", "onchain_fee", "disable",
              "use_config"}  # fmt: skip


def test_every_charge_lnd_strategy_is_registered_once():
    pm = get_plugin_manager(load_entrypoints=False)
    names = [cls.name for result in pm.hook.register_fee_strategies(lens=None) for cls in result]
    assert CHARGE_LND <= set(names)
    assert len(names) == len(set(names))


def test_parameters_are_explicit_keywords(strategies):
    assert strategy_parameters(strategies["proportional"]) == [
        "min_fee_ppm", "max_fee_ppm", "sum_peer_chans", "base_fee_msat", "inbound_base_fee_msat", "inbound_fee_ppm",
    ]  # fmt: skip
    assert strategy_parameters(strategies["disable"]) == []
    with pytest.raises(ConfigError, match=r"does not take fee_ppm \(it accepts: cost_factor, base_fee_msat"):
        build_strategy(strategies["cost"], {"fee_ppm": 1}, where="x.ini [a]")


def test_funding_fee_share_splits_a_batch_by_capacity():
    # a 9,000 sat fee for a batch of 1M + 2M sat channels: 3,000 and 6,000 sat
    assert funding_fee_share_msat(9_000_000, 1_000_000_000, [1_000_000_000, 2_000_000_000]) == 3_000_000
    assert funding_fee_share_msat(9_000_000, 2_000_000_000, [1_000_000_000, 2_000_000_000]) == 6_000_000
    assert funding_fee_share_msat(9_000_000, 1_000_000_000, [1_000_000_000]) == 9_000_000
