"""One contract every NodeBackend must honour: FakeNode, SimNode, ClnBackend, LndBackend.

Each backend contributes a factory to BACKENDS that returns a ``Harness``: the backend
under test plus a way to make forwards happen on it, so history paging is checked
against events the test itself caused. Add a backend by adding a factory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from lnlens_core.backend import Capability, NodeBackend, unsupported_fields
from lnlens_core.domain import ChannelId, FeeUpdate, ForwardStatus, HtlcEvent
from lnlens_core.errors import BackendRejected
from lnlens_core.testing import FakeNode, make_channel


@dataclass
class Harness:
    backend: NodeBackend
    make_forwards: Callable[[int], None]
    """Cause at least ``n`` more resolved forwards on the node."""
    close: Callable[[], None] | None = None
    """Release what the harness started (servers, connections), if anything."""


def fake_harness(capabilities: frozenset[Capability] = frozenset(Capability)) -> Harness:
    channels = [make_channel(f"80000{i}x{i}x0", local_ratio=0.2 * (i + 1)) for i in range(3)]
    node = FakeNode(channels, capabilities=capabilities)
    count = [0]

    def make_forwards(n: int) -> None:
        a, b = channels[0].channel_id, channels[1].channel_id
        node.add_forwards(
            HtlcEvent(a, 10_010, ForwardStatus.SETTLED, 1000.0 + count[0] + i, in_htlc_id=count[0] + i,
                      out_channel=b, out_msat=10_000, fee_msat=10, resolved_time=1001.0 + count[0] + i)
            for i in range(n)
        )  # fmt: skip
        count[0] += n

    return Harness(node, make_forwards)


def lnd_harness() -> Harness:
    """LndBackend over gRPC+TLS to the fake lnd (lnlens_testing.lnd), which runs a SimNode."""
    pytest.importorskip("grpc", reason="the lnd extra is not installed")
    import shutil
    import tempfile
    from pathlib import Path

    from lnlens_testing.lnd import LndHarness

    folder = Path(tempfile.mkdtemp(prefix="lnlens-lnd-contract-"))
    h = LndHarness(folder, mode="apply")

    def close() -> None:
        h.close()
        shutil.rmtree(folder, ignore_errors=True)

    return Harness(h.backend, h.make_forwards, close)


def cln_harness() -> Harness:
    """ClnBackend over pyln's LightningRpc to the lightningd stand-in's socket (lnlens_testing.cln), on a SimNode."""
    pytest.importorskip("pyln.client", reason="the cln extra is not installed")
    import shutil
    import tempfile

    from lnlens_testing.cln import StandIn, sim_node

    folder = tempfile.mkdtemp(prefix="lnlens-cln-contract-")
    standin = StandIn(folder, sim_node(history_s=86_400))

    def close() -> None:
        standin.close()
        shutil.rmtree(folder, ignore_errors=True)

    return Harness(standin.backend(), standin.make_forwards, close)


def sim_harness() -> Harness:
    """SimNode on the LightningLens preset: each make_forwards runs simulated time until enough forwards happened."""
    from lnlens_sim.scenario import SimSettings, build

    node = build(SimSettings(network="lightninglens", seed=5))

    def make_forwards(n: int) -> None:
        target = len(node.events) + n
        for _ in range(1000):
            if len(node.events) >= target:
                return
            node.run(3600)
        raise AssertionError(f"the simulation made fewer than {n} forwards in 1000 simulated hours")

    return Harness(node, make_forwards)


BACKENDS: dict[str, Callable[[], Harness]] = {
    "fake": fake_harness,
    "sim": sim_harness,
    "cln": cln_harness,
    "lnd": lnd_harness,
    # Shaped like CLN: no inbound fees, no per-channel CLTV delta.
    "fake-limited": lambda: fake_harness(frozenset(Capability) - {Capability.INBOUND_FEES, Capability.CLTV_DELTA}),
}


@pytest.fixture(params=sorted(BACKENDS))
def harness(request) -> Harness:
    h = BACKENDS[request.param]()
    yield h
    if h.close is not None:
        h.close()


def test_is_a_node_backend(harness):
    backend = harness.backend
    assert isinstance(backend, NodeBackend)
    assert isinstance(backend.capabilities, frozenset)
    assert all(isinstance(c, Capability) for c in backend.capabilities)
    info = backend.get_info()
    assert len(info.pubkey) == 66 and info.backend == backend.name


def test_channels_are_consistent(harness):
    channels = harness.backend.list_channels()
    assert channels, "a contract test node needs channels"
    for ch in channels:
        assert isinstance(ch.channel_id, ChannelId)
        assert ch.local_balance_msat >= 0 and ch.remote_balance_msat >= 0
        assert ch.local_balance_msat + ch.remote_balance_msat <= ch.capacity_msat
        assert ch.local_policy.fee_ppm >= 0


def test_history_pages_without_gap_or_duplicate(harness):
    harness.make_forwards(25)
    seen, cursor = [], None
    for _ in range(1000):
        page = harness.backend.list_forwards(cursor, limit=7)
        assert len(page.events) <= 7
        seen.extend(page.events)
        cursor = page.next_cursor
        if page.done:
            break
    keys = [e.key for e in seen]
    assert len(keys) == len(set(keys)) and len(keys) >= 25
    harness.make_forwards(5)
    later = harness.backend.list_forwards(cursor, limit=1000)
    assert {e.key for e in later.events}.isdisjoint(keys) and len(later.events) >= 5


def test_set_policy_changes_only_the_fields_given(harness):
    backend = harness.backend
    channel = backend.list_channels()[0]
    before = channel.local_policy
    after = backend.set_channel_policy(channel.channel_id, FeeUpdate(fee_ppm=before.fee_ppm + 17))
    assert after.fee_ppm == before.fee_ppm + 17 and after.base_fee_msat == before.base_fee_msat
    again = next(c for c in backend.list_channels() if c.channel_id == channel.channel_id)
    assert again.local_policy == after


def test_unknown_channel_is_rejected(harness):
    with pytest.raises(BackendRejected):
        harness.backend.set_channel_policy(ChannelId(1, 1, 1), FeeUpdate(fee_ppm=1))
    with pytest.raises(BackendRejected):
        harness.backend.get_peer_policy(ChannelId(1, 1, 1))


def test_unsupported_fields_are_rejected_not_dropped(harness):
    backend = harness.backend
    channel = backend.list_channels()[0]
    update = FeeUpdate(inbound_fee_ppm=-10, cltv_delta=60, disabled=False)
    missing = unsupported_fields(update, backend.capabilities)
    if not missing:
        pytest.skip(f"{backend.name} supports every field")
    with pytest.raises(BackendRejected):
        backend.set_channel_policy(channel.channel_id, update)
