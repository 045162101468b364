"""A worked example of an lnlens plugin (see docs/writing-plugins.md).

It adds one fee strategy, ``peer_offset`` (charge what the peer charges us, plus
an offset), chooses it for the channels listed in its settings, and vetoes any
fee above a ceiling. Settings, in the lnlens TOML file::

    [plugins.fee_example]
    channels = ["812345x12x0"]   # where peer_offset applies
    offset_ppm = 50
    max_fee_ppm = 2500           # veto anything above
"""

from __future__ import annotations

from typing import Any, ClassVar

from lnlens_core import Channel, ChannelId, FeeUpdate, NodeInfo, StrategyError, hookimpl
from lnlens_core.fees.strategy import FeeContext, FeeProposal, StrategyChoice

PLUGIN_NAME = "fee_example"
DEFAULT_MAX_FEE_PPM = 5000


class PeerOffset:
    """Our fee rate = the peer's fee rate toward us + ``offset_ppm`` (never below 0)."""

    name: ClassVar[str] = "peer_offset"

    def __init__(self, *, offset_ppm: int = 0) -> None:
        self.offset_ppm = int(offset_ppm)

    def propose(self, channel: Channel, ctx: FeeContext) -> FeeProposal | None:
        if ctx.peer_policy is None:
            raise StrategyError(f"channel {channel.channel_id}: the peer has published no policy to follow")
        fee_ppm = max(0, ctx.peer_policy.fee_ppm + self.offset_ppm)
        reason = f"peer charges {ctx.peer_policy.fee_ppm} ppm; offset {self.offset_ppm:+d} ppm"
        return FeeProposal(FeeUpdate(fee_ppm=fee_ppm), reason)


def _settings(lens: Any) -> dict[str, Any]:
    return dict(lens.plugin_config(PLUGIN_NAME))


@hookimpl
def register_fee_strategies() -> list[type]:
    return [PeerOffset]


@hookimpl
def select_fee_strategy(lens: Any, channel: Channel, node: NodeInfo) -> StrategyChoice | None:
    settings = _settings(lens)
    listed = {ChannelId.parse(c) for c in settings.get("channels", [])}
    if channel.channel_id not in listed:
        return None  # defer to the next plugin (in the end, the policy file)
    return StrategyChoice(PLUGIN_NAME, PeerOffset.name, {"offset_ppm": settings.get("offset_ppm", 0)})


@hookimpl
def check_fee_update(lens: Any, update: FeeUpdate, channel: Channel) -> str | None:
    ceiling = int(_settings(lens).get("max_fee_ppm", DEFAULT_MAX_FEE_PPM))
    if update.fee_ppm is not None and update.fee_ppm > ceiling:
        return f"fee {update.fee_ppm} ppm is above the example plugin's ceiling of {ceiling} ppm"
    return None
