"""Built-in fee strategies, registered through the same hook third parties use."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from ..domain import Channel
from ..hookspecs import hookimpl
from .chargelnd.strategies import STRATEGIES as CHARGE_LND_STRATEGIES
from .lnlens_strategies import LNLENS_STRATEGIES
from .strategy import FeeContext, FeeProposal, FeeStrategy, FixedFees


class Ignore:
    """charge-lnd ``ignore``: change nothing on the channel."""

    name: ClassVar[str] = "ignore"

    def propose(self, channel: Channel, ctx: FeeContext) -> FeeProposal | None:
        return None


class Static(FixedFees):
    """charge-lnd ``static``: set the fees given; parameters left out are kept."""

    name: ClassVar[str] = "static"
    uses_inbound_level_ppm: ClassVar[bool] = True

    def propose(self, channel: Channel, ctx: FeeContext) -> FeeProposal | None:
        return FeeProposal(self.fee_update(), "static fees from the policy")


CHARGE_LND_STRATEGY_NAMES = frozenset(cls.name for cls in (Ignore, Static, *CHARGE_LND_STRATEGIES))
"""charge-lnd 0.3.1's nine strategies: the engine applies no rails to them unless ``charge_lnd_rails = true``."""


@hookimpl
def register_fee_strategies() -> Sequence[type[FeeStrategy]]:
    return [Ignore, Static, *CHARGE_LND_STRATEGIES, *LNLENS_STRATEGIES]
