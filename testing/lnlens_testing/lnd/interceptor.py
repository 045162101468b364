"""The fake lnd's auth check: a gRPC interceptor that records every call and checks its macaroon."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lnlens_lnd.rpc import grpc

from .auth import _AuthFailure

if TYPE_CHECKING:
    from .state import FakeLndState


class _Auth(grpc.ServerInterceptor):  # type: ignore[name-defined,misc]
    """Records every call and checks its macaroon, as lnd's interceptor chain does."""

    def __init__(self, fake: FakeLndState) -> None:
        self.fake = fake

    def intercept_service(self, continuation, details):
        fake, path = self.fake, details.method
        with fake.lock:
            fake.calls.append(path)
            injected = next((f for f in fake._failures if f[0] == path), None)
            if injected is not None:
                fake._failures.remove(injected)
        handler = continuation(details)
        macs = [v for k, v in details.invocation_metadata if k == "macaroon"]
        problem, code = None, grpc.StatusCode.UNKNOWN
        if injected is not None:
            _, code, problem = injected
        elif len(macs) != 1:
            problem = f"expected 1 macaroon, got {len(macs)}"
        else:
            try:
                raw = bytes.fromhex(macs[0] if isinstance(macs[0], str) else macs[0].decode())
                ops = fake.macaroons.verify(raw, fake.node.clock.now())
                if not fake.macaroons.allows(ops, path):
                    problem = "permission denied"
            except ValueError:
                problem = "cannot get macaroon: macaroon is not hex"
            except _AuthFailure as exc:
                problem = str(exc)
        if problem is None or handler is None:
            return handler

        def deny(request, context):
            context.abort(code, problem)

        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(deny)
        return grpc.unary_unary_rpc_method_handler(deny)
