"""LndRpc: the allowlisted gRPC client, and an open HTLC event stream.

The channel is held privately and a callable is built only for the methods on the
allowlist: what the mode needs, the start check and the optional read-only inputs of
the fee engine; ``UpdateChannelPolicy`` only in ``apply`` mode. Anything else
(payments, channel opens or closes, spending) is refused before a byte reaches the
wire. Every call carries exactly one ``macaroon`` metadata entry (hex of the file's
bytes) and a deadline.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..connection import Credentials
from .errors import MethodRefused, translate
from .methods import METHODS, MODE_METHODS, OPTIONAL_METHODS, OPTIONAL_WRITE_METHODS, grpc

__all__ = ["LndRpc", "HtlcStream"]


def _allowlist(mode: str) -> frozenset[str]:
    writes = OPTIONAL_WRITE_METHODS if mode == "apply" else ()
    return frozenset((*MODE_METHODS[mode], "CheckMacaroonPermissions", *OPTIONAL_METHODS, *writes))


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
        self.allowed: frozenset[str] = _allowlist(mode)
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
        narrower = _allowlist(mode)
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
