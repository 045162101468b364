"""lnlens core: backend-agnostic monitoring, analysis, liquidity model and fee policy.

Adapters (``lnlens_cln``, ``lnlens_lnd``, ``lnlens_sim``) depend on this package;
it never imports them.
"""

from __future__ import annotations

from .backend import Capability, NodeBackend
from .domain import (
    Channel,
    ChannelId,
    ChannelPolicy,
    FailureCategory,
    FailureReason,
    FeeUpdate,
    Forward,
    ForwardPage,
    ForwardStatus,
    HtlcEvent,
    NodeInfo,
    Opportunity,
    Recommendation,
    RecommendationKind,
)
from .errors import (
    BackendRejected,
    BackendUnavailable,
    ConfigError,
    LnlensError,
    ModelError,
    PluginError,
    StrategyError,
)
from .hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "hookimpl",
    "Capability",
    "NodeBackend",
    "Channel",
    "ChannelId",
    "ChannelPolicy",
    "FailureCategory",
    "FailureReason",
    "FeeUpdate",
    "Forward",
    "ForwardPage",
    "ForwardStatus",
    "HtlcEvent",
    "NodeInfo",
    "Opportunity",
    "Recommendation",
    "RecommendationKind",
    "LnlensError",
    "ConfigError",
    "BackendRejected",
    "BackendUnavailable",
    "PluginError",
    "StrategyError",
    "ModelError",
]
