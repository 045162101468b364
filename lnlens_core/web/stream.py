"""The WebSocket stream: a hub that fans lnlens events out to clients without ever waiting for one.

:meth:`Hub.publish` is called from any thread (the monitor's, through the ``track_event``
observer) and only hands the batch to the event loop (``call_soon_threadsafe``). On the loop,
each client has a bounded queue; a client that would go over its bound has fallen behind and is
dropped (closed with code 4008 and the reason), so a slow reader can cost the monitor nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from .. import hookimpl
from ..clock import Clock
from ..events import LensEvent
from .messages import CLIENT_TYPES, SERVER_TYPES, STREAM_VERSION, from_events

__all__ = ["Hub", "StreamObserver", "SLOW_CLIENT_CODE"]

log = logging.getLogger(__name__)

SLOW_CLIENT_CODE = 4008
Message = tuple[str, float, dict[str, Any]]


@dataclass(eq=False)
class _Client:
    ws: WebSocket
    queue: asyncio.Queue[list[Message]]
    pending: int = 0
    """Messages queued and not yet written to the socket."""
    seq: int = 0
    dropped: bool = False
    sender: asyncio.Future[None] | None = None


@dataclass
class Hub:
    """Fan-out of stream messages to every connected client.

    :param queue_limit: messages a client may have waiting: a client that still has messages waiting
        when a batch would take it over the limit is dropped.
    :param heartbeat_s: real seconds between heartbeats (the stream's "I am alive").
    :param on_ack: called (on a thread-pool thread) with a suggestion id a client acknowledged; None
        when this server cannot act (then an ``ack`` is answered with an error message).
    """

    clock: Clock
    queue_limit: int = 1000
    heartbeat_s: float = 5.0
    on_ack: Callable[[int], str | None] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    clients: set[_Client] = field(default_factory=set)
    dropped: int = 0
    published: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- any thread -------------------------------------------------------------------

    def publish(self, messages: Sequence[Message]) -> None:
        """Queue messages for every client; never blocks (no loop or no client: they are discarded)."""
        loop = self.loop
        if not messages or loop is None or not self.clients:
            return
        try:
            loop.call_soon_threadsafe(self._fanout, list(messages))
        except RuntimeError:  # the loop has closed: the server is stopping
            pass

    def publish_one(self, kind: str, data: dict[str, Any], *, time: float | None = None) -> None:
        self.publish([(kind, self.clock.now() if time is None else time, data)])

    # -- the event loop ---------------------------------------------------------------

    def _fanout(self, messages: list[Message]) -> None:
        self.published += len(messages)
        for client in list(self.clients):
            self._enqueue(client, messages)

    def _enqueue(self, client: _Client, messages: list[Message]) -> None:
        # A batch bigger than the limit still goes to a client that has caught up; a client that
        # still has messages waiting and would go over the limit has fallen behind.
        if client.pending and client.pending + len(messages) > self.queue_limit:
            self._drop(client)
            return
        client.pending += len(messages)
        client.queue.put_nowait(messages)

    def _drop(self, client: _Client) -> None:
        if client.dropped:
            return
        client.dropped = True
        self.clients.discard(client)
        self.dropped += 1
        log.warning("stream client dropped: %d messages waiting (limit %d)", client.pending, self.queue_limit)
        while not client.queue.empty():  # free what it will never read
            client.queue.get_nowait()
        if client.sender is not None:  # it may be stuck writing to a full socket
            client.sender.cancel()
        reason = f"too slow: {self.queue_limit} messages waiting"
        asyncio.ensure_future(_close(client.ws, SLOW_CLIENT_CODE, reason))

    def _envelope(self, client: _Client, message: Message) -> str:
        kind, when, data = message
        client.seq += 1
        return json.dumps({"v": STREAM_VERSION, "type": kind, "seq": client.seq, "time": when, "data": data})

    async def serve(self, ws: WebSocket) -> None:
        """One client's connection: hello, then messages and heartbeats until it leaves or is dropped."""
        self.loop = asyncio.get_running_loop()
        await ws.accept()
        client = _Client(ws, asyncio.Queue())
        hello = {"stream_version": STREAM_VERSION, "types": list(SERVER_TYPES), "client_types": list(CLIENT_TYPES),
                 "queue_limit": self.queue_limit, "heartbeat_s": self.heartbeat_s,
                 "acks": self.on_ack is not None}  # fmt: skip
        await ws.send_text(self._envelope(client, ("hello", self.clock.now(), hello)))
        self.clients.add(client)
        tasks = [asyncio.ensure_future(c) for c in (self._send(client), self._receive(client), self._beat(client))]
        client.sender = tasks[0]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # No await here: when the server cancels this connection, the cancellation must go on up.
            for task in tasks:
                task.cancel()
            self.clients.discard(client)

    async def _send(self, client: _Client) -> None:
        while not client.dropped:
            batch = await client.queue.get()
            for message in batch:
                await client.ws.send_text(self._envelope(client, message))
                client.pending -= 1

    async def _beat(self, client: _Client) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            data = {"clients": len(self.clients), "dropped": self.dropped, "queued": client.pending}
            self._enqueue(client, [("heartbeat", self.clock.now(), data)])
            if client.dropped:
                return

    async def _receive(self, client: _Client) -> None:
        try:
            while True:
                text = await client.ws.receive_text()
                reply = await self._handle(text)
                if reply is not None:
                    self._enqueue(client, [reply])
                    if client.dropped:
                        return
        except (WebSocketDisconnect, RuntimeError):
            return

    async def _handle(self, text: str) -> Message | None:
        try:
            msg = json.loads(text)
        except ValueError:
            msg = None
        if not isinstance(msg, dict) or msg.get("type") not in CLIENT_TYPES:
            return _error(f"not a client message: expected JSON with type one of {', '.join(CLIENT_TYPES)}", self)
        sid = msg.get("suggestion_id")
        if not isinstance(sid, int) or isinstance(sid, bool):
            return _error("ack: suggestion_id must be an integer (from a suggestion message)", self)
        if self.on_ack is None:
            return _error("ack: this server does not act on suggestions (only lnlens serve --simulate does)", self)
        problem = await asyncio.get_running_loop().run_in_executor(None, self.on_ack, sid)
        return _error(f"ack: {problem}", self) if problem else None


def _error(text: str, hub: Hub) -> Message:
    return ("error", hub.clock.now(), {"message": text})


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    try:
        await ws.close(code=code, reason=reason)
    except (RuntimeError, OSError):  # already closed, or the peer is gone
        pass


class StreamObserver:
    """A ``track_event`` implementation that publishes every batch to a :class:`Hub`.

    Register it on the plugin manager of the Lens whose monitor records the forwards.
    """

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    @hookimpl
    def track_event(self, events: Sequence[LensEvent]) -> None:
        if self.hub.clients:  # nobody listening: skip even the conversion
            self.hub.publish(from_events(events))
