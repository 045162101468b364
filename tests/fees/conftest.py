"""Fixtures for the charge-lnd conformance suite: a node at a known height, a channel whose numbers are
worked out by hand, its peer and history, and a helper that writes a policy file and evaluates it.

The reference channel ``799000x5x1`` (node height 800000, so 1000 blocks old):

- capacity 1,000,000 sat; local 400,000 sat, remote 600,000 sat; we opened it, commit fee 2,000 sat;
- pending: 10,000 sat outgoing (expires at 800100), 5,000 sat incoming (expires at 800050);
- so charge-lnd's local = 400,000 + 10,000 + 2,000 = 412,000 sat, remote = 600,000 + 5,000 = 605,000 sat,
  ratio = 412,000 / 1,017,000 = 0.40511...;
- our policy: 1000 msat + 100 ppm, max HTLC = capacity, CLTV 80;
- the peer charges 1500 msat + 250 ppm (enabled); the peer node has 20 channels and 50,000,000 sat;
- shared with the same peer: one more active channel (100,000 / 100,000 sat) and an inactive one
  (50,000 / 0 sat);
- activity over 1 day: 3 forwards in (30,000 sat), 1 out (10,000 sat).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from lnlens_core.backend import Capability
from lnlens_core.domain import ChannelPolicy, NodeInfo, PendingHtlc
from lnlens_core.fees.builtin import register_fee_strategies
from lnlens_core.fees.chargelnd import (
    ActivityStats,
    PolicyDecision,
    PolicyEnvironment,
    PolicyEvaluator,
    PolicyInputs,
    load_policy_file,
)
from lnlens_core.testing import ALL_CAPABILITIES, make_channel

HEIGHT = 800_000
NOW = 1_700_000_000.0
PEER = "02" + "ab" * 32
OTHER_PEER = "03" + "cd" * 32
DAY = 86_400


def reference_channel(**overrides: Any):
    channel = make_channel(
        "799000x5x1",
        capacity_msat=1_000_000_000,
        local_ratio=0.4,
        fee_ppm=100,
        base_fee_msat=1000,
        peer_id=PEER,
        initiator=True,
        commit_fee_msat=2_000_000,
        remote_reserve_msat=10_000_000,
        pending_htlcs=(
            PendingHtlc(incoming=False, amount_msat=10_000_000, expiry_height=800_100),
            PendingHtlc(incoming=True, amount_msat=5_000_000, expiry_height=800_050),
        ),
    )
    return replace(channel, **overrides)


def plain_channel(channel_id: str, local_sat: int, remote_sat: int, **overrides: Any):
    """A channel without pending HTLCs or commit fee, so local/remote are exactly the balances."""
    capacity = (local_sat + remote_sat) * 1000 or 1_000_000
    channel = make_channel(channel_id, capacity_msat=capacity, peer_id=PEER, initiator=False)
    return replace(channel, local_balance_msat=local_sat * 1000, remote_balance_msat=remote_sat * 1000, **overrides)


def reference_inputs(channel=None, **overrides: Any) -> PolicyInputs:
    channel = channel or reference_channel()
    shared = (
        channel,
        plain_channel("790000x1x0", 100_000, 100_000),
        plain_channel("790000x2x0", 50_000, 0, active=False),
    )
    base = PolicyInputs(
        channel=channel,
        peer_policy=ChannelPolicy(base_fee_msat=1500, fee_ppm=250),
        peer_channels=shared,
        peer_node_channels=20,
        peer_node_capacity_msat=50_000_000_000,
        activity={DAY: ActivityStats(htlcs_in=3, htlcs_out=1, in_msat=30_000_000, out_msat=10_000_000)},
        funding_fee_msat=5_000_000,
    )
    return replace(base, **overrides)


def reference_env(capabilities: frozenset[Capability] = ALL_CAPABILITIES, **overrides: Any) -> PolicyEnvironment:
    env = PolicyEnvironment(
        node=NodeInfo("02" + "11" * 32, "us", "regtest", HEIGHT, "test", "fake"),
        capabilities=capabilities,
        now=NOW,
        onchain_fee_rates={2: 20.0, 6: 10.0},
        synced_to_chain=True,
    )
    return replace(env, **overrides)


@dataclass
class Harness:
    """Writes policy files into a temporary directory and evaluates them."""

    dir: Path
    strategies: dict

    def write(self, text: str, name: str = "charge.ini") -> Path:
        path = self.dir / name
        path.write_text(text, encoding="utf-8")
        return path

    def load(self, text: str, name: str = "charge.ini"):
        return load_policy_file(self.write(text, name), self.strategies, base_dir=self.dir)

    def decide(
        self, text: str, inputs: PolicyInputs | None = None, env: PolicyEnvironment | None = None, explain=False
    ) -> PolicyDecision:
        evaluator = PolicyEvaluator(self.load(text), self.strategies)
        return evaluator.evaluate(inputs or reference_inputs(), env or reference_env(), explain=explain)


@pytest.fixture
def strategies() -> dict:
    return {cls.name: cls for cls in register_fee_strategies()}


@pytest.fixture
def harness(tmp_path, strategies) -> Harness:
    return Harness(tmp_path, strategies)


@pytest.fixture
def ref():
    """The reference fixtures as one namespace (test modules cannot import conftest under importlib mode)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        channel=reference_channel,
        plain=plain_channel,
        inputs=reference_inputs,
        env=reference_env,
        PEER=PEER,
        OTHER_PEER=OTHER_PEER,
        HEIGHT=HEIGHT,
        NOW=NOW,
        DAY=DAY,
    )


@pytest.fixture
def harness_factory(tmp_path_factory, strategies):
    """A fresh harness per call, for hypothesis tests (function-scoped fixtures are shared across examples)."""
    return lambda: Harness(tmp_path_factory.mktemp("policy"), strategies)
