"""Which lnd methods lnlens may call, with lnd's default permission for each.

Three groups: what each mode needs (:data:`MODE_METHODS`: the start check refuses a
macaroon that lacks one), the start check itself (CheckMacaroonPermissions), and the
:data:`OPTIONAL_METHODS` only some policy keys need (the fee engine's optional inputs).
A missing optional permission never stops lnlens: the policy run that needs it says
which ``uri:`` to add to the macaroon. :data:`EXCESS_PROBES` are methods lnlens never
calls, asked about only to warn when a macaroon could do more than lnlens needs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from lnlens_core.extras import require

# gRPC core logs connection churn (GOAWAY on an lnd restart) to stderr unless told otherwise; lnlens reports it.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
grpc = require("grpc", extra="lnd", what="the LND sidecar")
require("google.protobuf", extra="lnd", what="the LND sidecar")

from .._proto import lightning_pb2 as ln  # noqa: E402 - after the extra check, so a missing extra says how to fix it
from .._proto import router_pb2 as router  # noqa: E402
from .._proto import walletkit_pb2 as wallet  # noqa: E402

__all__ = [
    "Method", "METHODS", "MODE_METHODS", "OPTIONAL_METHODS", "OPTIONAL_WRITE_METHODS", "EXCESS_PROBES", "grpc", "ln",
    "router", "wallet",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Method:
    path: str
    request: Any
    response: Any
    permission: str
    """lnd's default permission for it (entity:action), for messages and the docs."""
    streaming: bool = False
    needed_by: str = ""
    """For an optional method: the policy keys that call it (named in messages and the docs)."""


_L, _R, _W = "/lnrpc.Lightning/", "/routerrpc.Router/", "/walletrpc.WalletKit/"
METHODS: dict[str, Method] = {
    "GetInfo": Method(_L + "GetInfo", ln.GetInfoRequest, ln.GetInfoResponse, "info:read"),
    "ListChannels": Method(_L + "ListChannels", ln.ListChannelsRequest, ln.ListChannelsResponse, "offchain:read"),
    "FeeReport": Method(_L + "FeeReport", ln.FeeReportRequest, ln.FeeReportResponse, "offchain:read"),
    "ForwardingHistory": Method(
        _L + "ForwardingHistory", ln.ForwardingHistoryRequest, ln.ForwardingHistoryResponse, "offchain:read"
    ),
    "GetChanInfo": Method(_L + "GetChanInfo", ln.ChanInfoRequest, ln.ChannelEdge, "info:read"),
    "UpdateChannelPolicy": Method(
        _L + "UpdateChannelPolicy", ln.PolicyUpdateRequest, ln.PolicyUpdateResponse, "offchain:write"
    ),
    "CheckMacaroonPermissions": Method(
        _L + "CheckMacaroonPermissions", ln.CheckMacPermRequest, ln.CheckMacPermResponse, "macaroon:read"
    ),
    "SubscribeHtlcEvents": Method(
        _R + "SubscribeHtlcEvents", router.SubscribeHtlcEventsRequest, router.HtlcEvent, "offchain:read", streaming=True
    ),
    "GetNodeInfo": Method(
        _L + "GetNodeInfo", ln.NodeInfoRequest, ln.NodeInfo, "info:read",
        needed_by="node.min_channels, node.max_channels, node.min_capacity, node.max_capacity",
    ),  # fmt: skip
    # WalletKit's estimate, not lnrpc.Lightning/EstimateFee: that one prices a real transaction from the wallet's
    # coins to given addresses, so it needs a destination address and fails on an empty wallet.
    "EstimateFee": Method(
        _W + "EstimateFee", wallet.EstimateFeeRequest, wallet.EstimateFeeResponse, "onchain:read",
        needed_by="onchain.min_fee_rate, onchain.max_fee_rate, strategy = onchain_fee",
    ),  # fmt: skip
    # It also shows the wallet's whole transaction history: bake it in only for the cost strategy.
    "GetTransactions": Method(
        _L + "GetTransactions", ln.GetTransactionsRequest, ln.TransactionDetails, "onchain:read",
        needed_by="strategy = cost",
    ),  # fmt: skip
    # charge-lnd's channel status: `strategy = disable`, and every other strategy re-enables a disabled channel.
    "UpdateChanStatus": Method(
        _R + "UpdateChanStatus", router.UpdateChanStatusRequest, router.UpdateChanStatusResponse, "offchain:write",
        needed_by="strategy = disable, and re-enabling a disabled channel (every strategy but ignore)",
    ),  # fmt: skip
}

_READ = ("GetInfo", "ListChannels", "FeeReport", "ForwardingHistory", "GetChanInfo", "SubscribeHtlcEvents")
MODE_METHODS: dict[str, tuple[str, ...]] = {"read": _READ, "apply": (*_READ, "UpdateChannelPolicy")}
"""What each mode needs the macaroon to allow. CheckMacaroonPermissions is also callable (the start check)."""

OPTIONAL_METHODS: tuple[str, ...] = ("GetNodeInfo", "EstimateFee", "GetTransactions")
"""Read-only calls only some policy keys need (``Method.needed_by``); always on the client's allowlist."""

OPTIONAL_WRITE_METHODS: tuple[str, ...] = ("UpdateChanStatus",)
"""Writes only some policy files need; on the allowlist in ``apply`` mode only, never a reason to stop."""

# Methods lnlens never calls; if the macaroon could, it holds more than lnlens needs.
# (method, lnd's default permissions for it, what it would let a thief do, is it a write)
EXCESS_PROBES: tuple[tuple[str, tuple[str, ...], str, bool], ...] = (
    ("/routerrpc.Router/SendPaymentV2", ("offchain:write",), "send payments", True),
    ("/lnrpc.Lightning/SendCoins", ("onchain:write",), "spend on-chain funds", True),
    ("/lnrpc.Lightning/OpenChannelSync", ("onchain:write", "offchain:write"), "open channels", True),
    ("/lnrpc.Lightning/CloseChannel", ("onchain:write", "offchain:write"), "close channels", True),
    ("/lnrpc.Lightning/BakeMacaroon", ("macaroon:generate",), "bake new macaroons", True),
    ("/lnrpc.Lightning/AddInvoice", ("invoices:write",), "create invoices", True),
    ("/lnrpc.Lightning/WalletBalance", ("onchain:read",), "read the wallet balance", False),
    ("/lnrpc.Lightning/ListInvoices", ("invoices:read",), "read invoices", False),
)
