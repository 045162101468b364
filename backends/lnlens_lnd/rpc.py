"""The one chokepoint every lnd call goes through, and what the macaroon allows.

:class:`LndRpc` holds the gRPC channel privately and builds a callable only for
the methods on its allowlist: the few lnlens uses, and ``UpdateChannelPolicy``
only in ``apply`` mode. Anything else (payments, channel opens or closes, the
wallet) is refused before a byte reaches the wire. No stub is exposed: callers
name a method and pass a request.

Every call carries exactly one ``macaroon`` metadata entry (hex of the file's
bytes) and a deadline. gRPC errors become lnlens errors with a message an operator
can act on: lnd reports macaroon problems as ``UNKNOWN`` with text, not as
``PERMISSION_DENIED``, so the text decides.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lnlens_core.errors import BackendError, BackendRejected, BackendUnavailable
from lnlens_core.extras import require

from .connection import Credentials

# gRPC core logs connection churn (GOAWAY on an lnd restart) to stderr unless told otherwise; lnlens reports it.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
grpc = require("grpc", extra="lnd", what="the LND sidecar")
require("google.protobuf", extra="lnd", what="the LND sidecar")

from ._proto import lightning_pb2 as ln  # noqa: E402 - after the extra check, so a missing extra says how to fix it
from ._proto import router_pb2 as router  # noqa: E402

__all__ = [
    "LndRpc",
    "Method",
    "METHODS",
    "MODE_METHODS",
    "MethodRefused",
    "LndAuthError",
    "PermissionReport",
    "check_permissions",
    "translate",
    "EXCESS_PROBES",
    "ln",
    "router",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Method:
    path: str
    request: Any
    response: Any
    permission: str
    """lnd's default permission for it (entity:action), for messages and the docs."""
    streaming: bool = False


_L, _R = "/lnrpc.Lightning/", "/routerrpc.Router/"
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
}

_READ = ("GetInfo", "ListChannels", "FeeReport", "ForwardingHistory", "GetChanInfo", "SubscribeHtlcEvents")
MODE_METHODS: dict[str, tuple[str, ...]] = {"read": _READ, "apply": (*_READ, "UpdateChannelPolicy")}
"""What each mode needs the macaroon to allow. CheckMacaroonPermissions is also callable (the start check)."""

# Methods lnlens never calls; if the macaroon could, it holds more than lnlens needs.
# (method, what it would let a thief do, is it a write)
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


class MethodRefused(BackendRejected):
    """lnlens refused to send this call: it is not on the allowlist (nothing reached lnd)."""


class LndAuthError(BackendRejected):
    """lnd refused the macaroon (wrong node, expired, revoked, or lacking a permission)."""


_AUTH_CODES = (grpc.StatusCode.UNKNOWN, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)
_NOT_READY = (
    "wallet locked",
    "wallet is locked",
    "starting up",
    "not yet ready",
    "waiting to start",
    "in the process of starting",
    "server is still",
)


def translate(exc: Exception, method: str, creds: Credentials, timeout_s: float) -> BackendError:
    """A gRPC error as the lnlens error an operator can act on."""
    code = exc.code() if hasattr(exc, "code") else None
    details = (exc.details() if hasattr(exc, "details") else None) or str(exc)
    low = details.lower()
    name = method.rsplit("/", 1)[-1]
    if code is grpc.StatusCode.UNAVAILABLE:
        if any(s in low for s in ("certificate", "handshake", "ssl", "tls")):
            return BackendUnavailable(
                f"TLS with lnd at {creds.target} failed ({details}): the certificate in {creds.tls_source} does not "
                "match the one lnd serves (lnd regenerates tls.cert when it expires or its hosts change)"
            )
        return BackendUnavailable(
            f"cannot reach lnd at {creds.target} ({details}): is lnd running, and is this its rpclisten address?"
        )
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return BackendUnavailable(f"lnd at {creds.target} did not answer {name} within {timeout_s:g} s")
    if code is grpc.StatusCode.UNIMPLEMENTED:
        return BackendRejected(f"lnd at {creds.target} does not implement {name} (too old a version?)")
    if any(s in low for s in _NOT_READY):
        return BackendUnavailable(f"lnd at {creds.target} is not ready: {details}")
    if code is not None and code not in _AUTH_CODES:
        # lnd's macaroon checks answer UNKNOWN; any other code is the method's own answer.
        return BackendRejected(f"lnd refused {name}: {code.name}: {details}")
    mac = f"the macaroon from {creds.macaroon_source}"
    if "permission denied" in low:
        return LndAuthError(
            f"{mac} does not allow {name} (needs {_permission(method)}); bake one with "
            "`lncli bakemacaroon` as in the lnlens docs (LND section)"
        )
    if "expired" in low:
        return LndAuthError(f"{mac} has expired ({details}); bake a new one")
    if "signature mismatch" in low or "verification failed" in low or "cannot get macaroon" in low:
        return LndAuthError(
            f"{mac} was not issued by the lnd at {creds.target} (another node, or its macaroon "
            f"database was reset): {details}"
        )
    if "root key with id" in low or "deletemacaroonid" in low:
        return LndAuthError(f"{mac} was revoked (lncli deletemacaroonid): {details}")
    if "macaroon" in low:
        return LndAuthError(f"lnd refused {mac}: {details}")
    code_name = code.name if code is not None else "ERROR"
    return BackendRejected(f"lnd refused {name}: {code_name}: {details}")


def _permission(path: str) -> str:
    for m in METHODS.values():
        if m.path == path:
            return f"uri:{m.path} or {m.permission}"
    return f"uri:{path}"


class HtlcStream:
    """An open SubscribeHtlcEvents call: iterate for messages, ``cancel()`` from another thread."""

    def __init__(self, call: Any, translate_error: Any) -> None:
        self._call = call
        self._translate = translate_error

    def __iter__(self) -> Iterator[Any]:
        try:
            yield from self._call
        except grpc.RpcError as exc:
            if exc.code() is grpc.StatusCode.CANCELLED and self._call.cancelled():
                return
            raise self._translate(exc) from None

    def cancel(self) -> None:
        self._call.cancel()


class LndRpc:
    """The allowlisted client. The channel and the callables are private; there is no stub.

    :param mode: ``read`` or ``apply`` (adds UpdateChannelPolicy).
    """

    def __init__(
        self, creds: Credentials, *, mode: str = "read", timeout_s: float = 30.0, tls_server_name: str | None = None
    ) -> None:
        if mode not in MODE_METHODS:
            raise ValueError(f"mode must be one of {', '.join(MODE_METHODS)}")
        self.mode = mode
        self.creds = creds
        self.timeout_s = timeout_s
        self.allowed: frozenset[str] = frozenset((*MODE_METHODS[mode], "CheckMacaroonPermissions"))
        self._metadata = (("macaroon", creds.macaroon.hex()),)
        # lnd's Python guide also sets GRPC_SSL_CIPHER_SUITES=HIGH+ECDSA; current gRPC offers ECDSA suites by
        # default, and forcing them would break an lnd behind an RSA certificate, so lnlens leaves it alone.
        options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            # A silent stream over a dead TCP connection (lnd's host vanished) must end, not hang: ping it.
            # lnd allows pings every 5 s or more; 30 s keeps well inside that.
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 20_000),
            # After an lnd restart, reconnect within seconds, not gRPC's default of up to two minutes.
            ("grpc.initial_reconnect_backoff_ms", 500),
            ("grpc.max_reconnect_backoff_ms", 5_000),
        ]
        if tls_server_name:
            options.append(("grpc.ssl_target_name_override", tls_server_name))
        credentials = grpc.ssl_channel_credentials(root_certificates=creds.root_pem)
        channel = grpc.secure_channel(creds.target, credentials, options=options)
        callables: dict[str, Any] = {}
        for name in sorted(self.allowed):
            m = METHODS[name]
            make = channel.unary_stream if m.streaming else channel.unary_unary
            callables[name] = make(
                m.path, request_serializer=m.request.SerializeToString, response_deserializer=m.response.FromString
            )

        # The channel and its callables live only in these closures: no attribute of this object is a
        # channel or a stub that could call a method outside the allowlist.
        def invoke(name: str, request: Any, **kwargs: Any) -> Any:
            return callables[name](request, metadata=self._metadata, **kwargs)

        def close() -> None:
            channel.close()

        self._invoke = invoke
        self._close = close

    def _check(self, method: str) -> str:
        name = method.rsplit("/", 1)[-1] if method.startswith("/") else method
        known = METHODS.get(name)
        if known is None or (method.startswith("/") and known.path != method):
            raise MethodRefused(f"lnlens never calls {method}: it is not on the allowlist (refused before sending)")
        if name not in self.allowed:
            raise MethodRefused(
                f"{name} is not allowed in {self.mode} mode (refused before sending): lnlens applies fees only when "
                "dry_run = false"
            )
        return name

    def restrict(self, mode: str) -> None:
        """Narrow the allowlist to ``mode`` (never widen it)."""
        narrower = frozenset((*MODE_METHODS[mode], "CheckMacaroonPermissions"))
        if not narrower <= self.allowed:
            raise ValueError(f"cannot widen a {self.mode} client to {mode}")
        self.mode, self.allowed = mode, narrower

    def allows(self, method: str) -> bool:
        """Whether ``method`` (a name) is on this client's allowlist."""
        return method in self.allowed

    def call(self, method: str, request: Any = None, *, timeout_s: float | None = None) -> Any:
        """One unary call by method name (``GetInfo``) or path (``/lnrpc.Lightning/GetInfo``).

        :raises MethodRefused: not on the allowlist; nothing was sent.
        :raises BackendUnavailable | BackendRejected: as :func:`translate` maps lnd's answer.
        """
        name = self._check(method)
        m = METHODS[name]
        if m.streaming:
            raise MethodRefused(f"{name} is a stream: use stream()")
        request = request if request is not None else m.request()
        if not isinstance(request, m.request):
            raise TypeError(f"{name} takes {m.request.__name__}, not {type(request).__name__}")
        timeout = timeout_s if timeout_s is not None else self.timeout_s
        try:
            return self._invoke(name, request, timeout=timeout)
        except grpc.RpcError as exc:
            raise translate(exc, m.path, self.creds, timeout) from None

    def stream(self, method: str, request: Any = None) -> HtlcStream:
        """Open a server stream (no deadline: it lives until cancelled or dropped)."""
        name = self._check(method)
        m = METHODS[name]
        if not m.streaming:
            raise MethodRefused(f"{name} is not a stream: use call()")
        call = self._invoke(name, request if request is not None else m.request())
        return HtlcStream(call, lambda exc: translate(exc, m.path, self.creds, self.timeout_s))

    def close(self) -> None:
        self._close()


@dataclass(frozen=True, slots=True)
class PermissionReport:
    """What the macaroon allows, as far as lnlens cares.

    ``checked`` is False when lnd would not answer CheckMacaroonPermissions for this
    macaroon (it lacks ``uri:/lnrpc.Lightning/CheckMacaroonPermissions``): then
    each call finds out for itself.
    """

    mode: str
    checked: bool
    missing: tuple[str, ...] = ()
    excess: tuple[str, ...] = ()
    """What the macaroon could do beyond lnlens's needs (``send payments``, ...)."""
    excess_write: bool = False
    note: str = ""
    methods: dict[str, bool] = field(default_factory=dict)

    @property
    def scope(self) -> str:
        if not self.checked:
            return "unchecked"
        if self.missing:
            return "insufficient"
        if self.excess_write:
            return "broad (can write)"
        return "broader than needed (read)" if self.excess else "minimal"


def _allows(rpc: LndRpc, path: str, permissions: tuple[str, ...]) -> bool:
    """Whether the macaroon grants ``permissions`` (lnd's default ones for ``path``) or ``uri:path``.

    The permissions are sent explicitly rather than with ``check_default_perms_from_full_method``: an lnd
    that predates that field ignores it and would then check an empty list, which every macaroon passes.
    """
    perms = [ln.MacaroonPermission(entity=e, action=a) for e, a in (p.split(":") for p in permissions)]
    request = ln.CheckMacPermRequest(macaroon=rpc.creds.macaroon, permissions=perms, fullMethod=path)
    try:
        return bool(rpc.call("CheckMacaroonPermissions", request).valid)
    except LndAuthError:
        raise
    except BackendRejected:
        return False  # lnd answers InvalidArgument when the macaroon lacks the permission


def check_permissions(rpc: LndRpc) -> PermissionReport:
    """Ask lnd (CheckMacaroonPermissions) which methods the macaroon allows.

    :raises BackendUnavailable: lnd cannot be reached.
    :raises LndAuthError: lnd does not accept the macaroon at all (wrong node, expired).
    """
    needed = MODE_METHODS[rpc.mode]
    methods: dict[str, bool] = {}
    try:
        for name in needed:
            methods[METHODS[name].path] = _allows(rpc, METHODS[name].path, (METHODS[name].permission,))
    except LndAuthError as exc:
        if "does not allow CheckMacaroonPermissions" not in str(exc):
            raise
        return PermissionReport(
            rpc.mode,
            False,
            note=(
                "cannot check the macaroon's permissions: it lacks uri:/lnrpc.Lightning/CheckMacaroonPermissions "
                "(add it when baking, see the docs)"
            ),
        )
    missing = tuple(name for name in needed if not methods[METHODS[name].path])
    excess, write = [], False
    probes = list(EXCESS_PROBES)
    if rpc.mode == "read":
        update = METHODS["UpdateChannelPolicy"]
        probes.insert(0, (update.path, (update.permission,), "change fees while lnlens runs read-only", True))
    for path, permissions, what, is_write in probes:
        if _allows(rpc, path, permissions):
            methods[path] = True
            excess.append(what)
            write = write or is_write
    return PermissionReport(rpc.mode, True, missing, tuple(excess), write, methods=methods)
