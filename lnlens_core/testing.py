"""Public test helpers for lnlens and for plugin authors.

:class:`FakeNode` is a NodeBackend with real behaviour — stateful channels, a
forwarding history that pages by cursor, recorded calls and injectable failures —
so tests use it instead of mocks. The contract suite (tests/contract) holds it to
the same rules as the real adapters.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from .backend import Capability, unsupported_fields
from .clock import ManualClock
from .domain import Channel, ChannelId, ChannelPolicy, FeeUpdate, ForwardPage, HtlcEvent, NodeInfo
from .errors import BackendError, BackendRejected

__all__ = ["FakeNode", "make_channel", "Call", "ManualClock", "ALL_CAPABILITIES", "centring_model"]

ALL_CAPABILITIES = frozenset(Capability)
FAKE_PUBKEY = "02" + "11" * 32


def make_channel(
    channel_id: str | ChannelId = "800000x1x0",
    *,
    capacity_msat: int = 2_000_000_000,
    local_ratio: float = 0.5,
    fee_ppm: int = 100,
    base_fee_msat: int = 1000,
    peer_id: str = "03" + "22" * 32,
    **kwargs: object,
) -> Channel:
    """A plausible channel; every field can be overridden by keyword."""
    local = int(capacity_msat * local_ratio)
    return Channel(
        channel_id=ChannelId.parse(channel_id),
        peer_id=peer_id,
        capacity_msat=capacity_msat,
        local_balance_msat=local,
        remote_balance_msat=capacity_msat - local,
        local_policy=ChannelPolicy(base_fee_msat=base_fee_msat, fee_ppm=fee_ppm, max_htlc_msat=capacity_msat),
        **kwargs,  # type: ignore[arg-type]
    )


@dataclass(frozen=True, slots=True)
class Call:
    """One call made to the fake: method name and arguments."""

    method: str
    args: tuple[object, ...]


class FakeNode:
    """An in-memory node.

    :param channels: our channels; ``set_channel_policy`` updates them.
    :param forwards: the history ``list_forwards`` pages through (append with :meth:`add_forwards`).
    :param peer_policies: the peers' policies by channel.
    """

    name = "fake"

    def __init__(
        self,
        channels: Iterable[Channel] = (),
        *,
        forwards: Iterable[HtlcEvent] = (),
        peer_policies: dict[ChannelId, ChannelPolicy] | None = None,
        capabilities: frozenset[Capability] = ALL_CAPABILITIES,
        info: NodeInfo | None = None,
    ) -> None:
        self.channels: dict[ChannelId, Channel] = {c.channel_id: c for c in channels}
        self.forwards: list[HtlcEvent] = list(forwards)
        self.peer_policies = dict(peer_policies or {})
        self.capabilities = capabilities
        self.info = info or NodeInfo(FAKE_PUBKEY, "fake", "regtest", 800_000, "fake-1", self.name)
        self.calls: list[Call] = []
        self._failures: list[BackendError] = []

    def fail_next(self, error: BackendError) -> None:
        """Make the next call raise ``error`` (queued: several calls, several errors)."""
        self._failures.append(error)

    def add_forwards(self, events: Iterable[HtlcEvent]) -> None:
        self.forwards.extend(events)

    def _call(self, method: str, *args: object) -> None:
        self.calls.append(Call(method, args))
        if self._failures:
            raise self._failures.pop(0)

    def _channel(self, channel_id: ChannelId) -> Channel:
        try:
            return self.channels[channel_id]
        except KeyError:
            raise BackendRejected(f"channel {channel_id} is not one of ours") from None

    def get_info(self) -> NodeInfo:
        self._call("get_info")
        return self.info

    def list_channels(self) -> Sequence[Channel]:
        self._call("list_channels")
        return sorted(self.channels.values(), key=lambda c: c.channel_id)

    def get_peer_policy(self, channel_id: ChannelId) -> ChannelPolicy | None:
        self._call("get_peer_policy", channel_id)
        self._channel(channel_id)
        return self.peer_policies.get(channel_id)

    def list_forwards(self, cursor: str | None, *, limit: int = 1000) -> ForwardPage:
        # The cursor is the index of the next event; the history only grows.
        self._call("list_forwards", cursor, limit)
        start = int(cursor) if cursor else 0
        events = tuple(self.forwards[start : start + limit])
        end = start + len(events)
        return ForwardPage(events, str(end), end >= len(self.forwards))

    def set_channel_policy(self, channel_id: ChannelId, update: FeeUpdate) -> ChannelPolicy:
        self._call("set_channel_policy", channel_id, update)
        channel = self._channel(channel_id)
        missing = unsupported_fields(update, self.capabilities)
        if missing:
            raise BackendRejected(f"channel {channel_id}: this node cannot set {', '.join(missing)}")
        policy = update.apply_to(channel.local_policy)
        self.channels[channel_id] = replace(channel, local_policy=policy)
        return policy


def centring_model(optimum: float) -> bytes:
    """A liquidity model (ONNX bytes) that puts every channel's best ratio at ``optimum``, whatever the data:
    it learns the move ``optimum − current ratio`` (feature 0), which is what a served model outputs. For tests
    that need the model to ask for moves (the shipped one rarely does). Needs the ``train`` extra."""
    import numpy as np
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline

    from .model.features import FEATURE_NAMES
    from .model.learning import export_onnx

    x = np.random.default_rng(0).uniform(size=(200, len(FEATURE_NAMES)))
    pipe = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), LinearRegression())
    pipe.fit(x, optimum - x[:, 0])
    return export_onnx(pipe, name="centre", version=str(optimum), trained_at=0.0, metrics={})
