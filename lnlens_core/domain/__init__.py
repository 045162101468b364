"""The domain model: frozen, slotted records that cross every boundary in lnlens.

Every amount is an integer millisatoshi (``*_msat``), every fee rate is parts per
million (``*_ppm``), times are float epoch seconds (``*_time``, CLN's convention)
and channels are identified by :class:`ChannelId` (``BLOCKxTXxOUT``). No protobuf,
pyln ``Millisatoshi`` or other wire type ever appears here: adapters convert.
"""

from .advice import Opportunity, Recommendation, RecommendationKind
from .channels import Channel, ChannelPolicy, NodeInfo, PendingHtlc
from .forwards import FailureCategory, FailureReason, Forward, ForwardPage, ForwardStatus, HtlcEvent
from .ids import ChannelId
from .updates import FeeUpdate

__all__ = [
    "ChannelId",
    "ChannelPolicy",
    "PendingHtlc",
    "Channel",
    "NodeInfo",
    "ForwardStatus",
    "FailureCategory",
    "FailureReason",
    "HtlcEvent",
    "Forward",
    "ForwardPage",
    "FeeUpdate",
    "RecommendationKind",
    "Recommendation",
    "Opportunity",
]
