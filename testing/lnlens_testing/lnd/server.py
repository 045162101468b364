"""FakeLnd: the fake lnd's gRPC server, its streams, restarts and injected errors."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent import futures
from pathlib import Path
from typing import Any

from lnlens_lnd.connection import LndSettings
from lnlens_lnd.rpc import METHODS, grpc

from lnlens_core.domain import ForwardStatus, HtlcEvent

from .auth import make_tls_cert
from .interceptor import _Auth
from .onchain import WalletKit
from .servicers import _END, _Lightning, _ns, _Router, htlc_messages
from .state import FakeLndState


class FakeLnd(FakeLndState):
    """An lnd on 127.0.0.1 over a SimNode (see the module docstring).

    :param node: the simulated node; its sink is taken over to feed the log and streams.
    :param folder: where ``tls.cert`` and macaroons are written.
    :param version: what GetInfo reports (see :class:`~.state.FakeLndState`).
    """

    def __init__(
        self,
        node,
        folder: Path,
        *,
        version: str = "0.21.2-beta commit=v0.21.2",
        network: str = "regtest",
        accept_positive_inbound_fees: bool = False,
        workers: int = 8,
        frozen: bool = False,
    ) -> None:
        super().__init__(
            node,
            version=version,
            network=network,
            accept_positive_inbound_fees=accept_positive_inbound_fees,
            frozen=frozen,
        )
        self.folder = Path(folder)
        self.workers = workers
        self._server: Any = None
        self.port = 0
        cert, key = make_tls_cert()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.cert_path = self.folder / "tls.cert"
        self.cert_path.write_bytes(cert)
        self._key = key
        node.set_sink(self.publish)

    # -- lifecycle --------------------------------------------------------------------

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> str:
        """Serve (again, on the same port after :meth:`stop`); returns ``host:port``."""
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=self.workers), interceptors=[_Auth(self)])
        handlers = {
            "lnrpc.Lightning": _Lightning(self),
            "routerrpc.Router": _Router(self),
            "walletrpc.WalletKit": WalletKit(self),
        }
        for service, impl in handlers.items():
            methods = {}
            for m in METHODS.values():
                if not m.path.startswith(f"/{service}/"):
                    continue
                name = m.path.rsplit("/", 1)[1]
                make = grpc.unary_stream_rpc_method_handler if m.streaming else grpc.unary_unary_rpc_method_handler
                methods[name] = make(
                    getattr(impl, name),
                    request_deserializer=m.request.FromString,
                    response_serializer=m.response.SerializeToString,
                )
            server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, methods),))
        creds = grpc.ssl_server_credentials([(self._key, self.cert_path.read_bytes())])
        self.port = server.add_secure_port(f"127.0.0.1:{self.port}", creds)
        server.start()
        self._server = server
        return self.host

    def stop(self) -> None:
        """Stop like a crashed or restarting lnd: every stream ends, calls fail UNAVAILABLE."""
        self.drop_streams()
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None

    def drop_streams(self) -> None:
        """End every open SubscribeHtlcEvents stream (the server keeps running)."""
        with self.lock:
            subs, self._subscribers = self._subscribers, []
        for q in subs:
            q.put(_END)

    @property
    def backlog(self) -> int:
        """Messages queued for subscribers and not yet handed to gRPC."""
        with self.lock:
            return sum(q.qsize() for q in self._subscribers)

    @property
    def subscribers(self) -> int:
        with self.lock:
            return len(self._subscribers)

    def fail_next(self, path: str, code: Any, details: str) -> None:
        """Answer the next call to ``path`` with this gRPC status (queued; before the macaroon check)."""
        with self.lock:
            self._failures.append((path, code, details))

    def write_macaroon(self, name: str, ops: Iterable[str], **kwargs: Any) -> Path:
        path = self.folder / name
        path.write_bytes(self.macaroons.bake(ops, **kwargs))
        return path

    def settings(self, macaroon: Path, *, mode: str = "read", **kwargs: Any) -> LndSettings:
        """Settings that reach this server as lnlens reaches lnd."""
        return LndSettings(
            host=self.host,
            tlscert=self.cert_path,
            macaroon=macaroon,
            network=self.network,
            mode=mode,
            timeout_s=10.0,
            **kwargs,
        )

    # -- the simulator's side ---------------------------------------------------------

    def publish(self, batch: list[HtlcEvent]) -> None:
        """The SimNode's sink: log settled forwards, stream every forward to subscribers."""
        self.release(self.stage(batch))

    def stage(self, batch: list[HtlcEvent]) -> tuple[list[HtlcEvent], list[Any]]:
        """:meth:`publish`'s first half: log the settled forwards and build the stream's messages, in lnd's order;
        :meth:`release` sends them (the benchmark times the sending only)."""
        with self.lock:
            msgs: list[tuple[int, int, Any]] = []
            for n, event in enumerate(batch):
                if event.status is ForwardStatus.SETTLED:
                    ts = _ns(event.resolved_time or event.received_time)
                    if self.log and ts <= self.log[-1][0]:
                        ts = self.log[-1][0] + 1  # lnd's forwarding log keys are unique, increasing timestamps
                    self.log.append((ts, event))
                out_id = 0
                if event.out_channel is not None and event.status is not ForwardStatus.LOCAL_FAILED:
                    out_id = self._out_htlc.get(event.out_channel, 0)
                    self._out_htlc[event.out_channel] = out_id + 1
                msgs.extend((ts, n, msg) for ts, msg in htlc_messages(event, out_id))
            msgs.sort(key=lambda item: (item[0], item[1]))
            return batch, [msg for _, _, msg in msgs]

    def release(self, staged: tuple[list[HtlcEvent], list[Any]]) -> None:
        """Queue :meth:`stage`'s messages for every current subscriber."""
        batch, msgs = staged
        with self.lock:
            if self._subscribers:
                self.emitted.extend(batch)
            for q in self._subscribers:
                for msg in msgs:
                    q.put(msg)
