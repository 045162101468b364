"""The WebSocket stream: versioned messages, acks, slow clients dropped, the simulator's closed loop."""

from __future__ import annotations

import json
import threading

import pytest
from starlette.testclient import TestClient  # noqa: E402, I001

from lnlens_core.clock import ManualClock, SystemClock
from lnlens_core.config import LensConfig
from lnlens_core.domain import ChannelId, ForwardStatus, HtlcEvent
from lnlens_core.events import ForwardRecorded
from lnlens_core.lens import Lens
from lnlens_core.plugins import get_plugin_manager
from lnlens_core.storage import Store
from lnlens_core.testing import centring_model
from lnlens_core.web.driver import SimDriver
from lnlens_core.web.messages import SERVER_TYPES, STREAM_VERSION
from lnlens_core.web.server import STREAM_PATH, WebServer
from lnlens_core.web.stream import StreamObserver

from .conftest import build_backend


def _forward(i: int, t: float) -> HtlcEvent:
    return HtlcEvent(in_channel=ChannelId(800_000, 1, 0), in_htlc_id=i, out_channel=ChannelId(800_001, 2, 1),
                     in_msat=1_001_000, out_msat=1_000_000, fee_msat=1_000, status=ForwardStatus.SETTLED,
                     received_time=t, resolved_time=t + 1)  # fmt: skip


def _server(tmp_path, **kw) -> WebServer:
    config = LensConfig(data_dir=tmp_path / "data", db_path=tmp_path / "s.sqlite3", model_path=kw.pop("model", None))
    Store(config.db_path).close()
    return WebServer(config, kw.pop("clock", SystemClock()), port=0,
                     pm_factory=lambda: get_plugin_manager(load_entrypoints=False), **kw)  # fmt: skip


def _until(ws, kind: str, limit: int = 10_000) -> dict:
    for _ in range(limit):
        msg = json.loads(ws.receive_text())
        if msg["type"] == kind:
            return msg
    raise AssertionError(f"no {kind} message")


def test_hello_then_forwards_in_order_with_sequence_numbers(tmp_path):
    server = _server(tmp_path, clock=ManualClock(1_000.0))
    with TestClient(server.app) as client:
        with client.websocket_connect(f"{STREAM_PATH}?token={server.token}") as ws:
            hello = json.loads(ws.receive_text())
            assert (hello["v"], hello["type"], hello["seq"]) == (STREAM_VERSION, "hello", 1)
            assert hello["data"]["types"] == list(SERVER_TYPES) and hello["data"]["acks"] is False
            observer = StreamObserver(server.hub)
            batch = [ForwardRecorded(_forward(i, 1_000.0 + i), "live") for i in range(3)]
            thread = threading.Thread(target=observer.track_event, args=(batch,))
            thread.start()
            thread.join()
            got = [json.loads(ws.receive_text()) for _ in range(3)]
            assert [m["type"] for m in got] == ["forward"] * 3 and [m["seq"] for m in got] == [2, 3, 4]
            assert [m["data"]["key"] for m in got] == [_forward(i, 0).key for i in range(3)]
            assert got[0]["data"]["fee_msat"] == 1_000 and got[0]["time"] == 1_001.0


def test_client_messages_are_checked(tmp_path):
    server = _server(tmp_path)
    with TestClient(server.app) as client, client.websocket_connect(f"{STREAM_PATH}?token={server.token}") as ws:
        ws.receive_text()
        for sent, expected in (
            ("nonsense", "not a client message"),
            (json.dumps({"type": "ack", "suggestion_id": "1"}), "suggestion_id must be an integer"),
            (json.dumps({"type": "ack", "suggestion_id": 1}), "only lnlens serve --simulate does"),
        ):
            ws.send_text(sent)
            assert expected in _until(ws, "error")["data"]["message"]


def test_stream_needs_the_token(tmp_path):
    from starlette.testclient import WebSocketDenialResponse

    server = _server(tmp_path)
    with TestClient(server.app) as client:
        for url, problem in ((STREAM_PATH, "missing API token"), (f"{STREAM_PATH}?token=wrong", "wrong API token")):
            with pytest.raises(WebSocketDenialResponse) as exc_info, client.websocket_connect(url) as ws:
                ws.receive_text()
            assert exc_info.value.status_code == 401
            error = exc_info.value.json()["error"]
            assert problem in error and str(server.token_path) not in error


def test_heartbeats(tmp_path):
    server = _server(tmp_path, heartbeat_s=0.05)
    with TestClient(server.app) as client, client.websocket_connect(f"{STREAM_PATH}?token={server.token}") as ws:
        ws.receive_text()
        beat = _until(ws, "heartbeat", 5)
        assert beat["data"]["clients"] == 1 and beat["data"]["dropped"] == 0


def _ingest(lens: Lens, start: int, batches: int, size: int = 500, until=lambda: False) -> float:
    """Record up to ``batches`` batches through the monitor (fewer once ``until()``); returns forwards per second."""
    import time

    t0 = time.perf_counter()
    done = 0
    while done < batches and not until():
        base = start + done * size
        lens.monitor.record([_forward(base + i, 1_000.0 + base + i) for i in range(size)])
        lens.monitor.flush()
        done += 1
    return done * size / (time.perf_counter() - t0)


def _connect(server: WebServer, *, rcvbuf: int | None = None):
    import socket

    from websockets.sync.client import connect

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:  # a reader that stops reading fills its socket after a few frames
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", server.bound_port))
    url = f"ws://127.0.0.1:{server.bound_port}{STREAM_PATH}?token={server.token}"
    # no keepalive pings: a test's reader that is left open must not ping from its thread in a later test
    return connect(url, sock=sock, max_queue=1 if rcvbuf else None, open_timeout=10, ping_interval=None)


def _wait(predicate, seconds: float = 10.0) -> bool:
    done = threading.Event()
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return True
        done.wait(0.01)
    return predicate()


def test_a_slow_client_is_dropped_and_the_monitor_keeps_its_rate(tmp_path):
    server = _server(tmp_path, clock=ManualClock(1_000.0), queue_limit=200)
    server.start()
    store = Store(tmp_path / "m.sqlite3")
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(StreamObserver(server.hub))
    lens = Lens(server.config, store=store, clock=ManualClock(1_000.0), pm=pm)
    try:
        # Baseline: nobody listening.
        rate_alone = _ingest(lens, 0, 40)
        # A client that stops reading: its queue fills, it is dropped, the monitor never waits for it.
        slow = _connect(server, rcvbuf=4096)
        assert _wait(lambda: len(server.hub.clients) == 1)
        # Loopback socket buffers hold megabytes: keep going until the client has fallen behind.
        rate_slow = _ingest(lens, 10_000, 1_000, until=lambda: server.hub.dropped > 0)
        assert _wait(lambda: server.hub.dropped == 1) and not server.hub.clients
        # The loop shares the GIL while it writes, so some cost remains; a monitor waiting on the client would stall.
        assert rate_slow >= 0.3 * rate_alone, (rate_slow, rate_alone)
        slow.socket.close()
    finally:
        server.stop()
        store.close()


def test_simulator_executes_an_acknowledged_suggestion_and_reports_the_outcome(tmp_path):
    node = build_backend({"network": "synthetic", "nodes": 150, "seed": 5, "payments_per_hour": 4000})
    # A model that asks to move every channel to 50 %: the shipped one asks for moves only where they pay, which
    # this node's first hours do not offer. Only moves that pay for their quoted route are suggested (from the 7th h).
    model = tmp_path / "centre.onnx"
    model.write_bytes(centring_model(0.5))
    server = _server(tmp_path, clock=node.clock, live_clock=True, model=model)
    server.live.backend = node
    config = server.config

    def make_lens() -> Lens:
        store = Store(config.db_path)
        store.set_meta("clock", "simulated")
        return Lens(config, store=store, clock=node.clock, pm=get_plugin_manager(load_entrypoints=False), backend=node)

    driver = SimDriver(make_lens, server.hub, server.live, speed=1e7, interval_s=3600, max_steps=8)
    with TestClient(server.app) as client, client.websocket_connect(f"{STREAM_PATH}?token={server.token}") as ws:
        assert json.loads(ws.receive_text())["data"]["acks"] is True
        driver.start()
        driver._thread.join(300)  # it stops on its own after max_steps (each step also runs the model loop)
        assert driver.error is None and driver.steps == 8
        # The reply to this ack is queued after everything the driver published: it marks the end.
        ws.send_text(json.dumps({"type": "ack", "suggestion_id": -1}))
        kinds, suggestions = set(), []
        while (msg := json.loads(ws.receive_text()))["type"] != "error":
            kinds.add(msg["type"])
            if msg["type"] == "suggestion":
                suggestions.append(msg["data"])
        assert msg["data"]["message"] == "ack: no suggestion -1"
        assert kinds >= {"forward", "opportunities", "alerts", "suggestion"}
        api = client.get("/api/v1/recommendations", headers={"Authorization": f"Bearer {server.token}"}).json()
        offered = {s["id"]: s for s in api["suggestions"]}
        chosen = next(s for s in suggestions if s["id"] in offered)
        before = {c.channel_id: c.local_balance_msat for c in node.list_channels()}
        ws.send_text(json.dumps({"type": "ack", "suggestion_id": chosen["id"]}))
        result = _until(ws, "rebalance_result")["data"]
        assert result["suggestion_id"] == chosen["id"]
        assert (result["source_channel"], result["target_channel"]) == (
            chosen["source_channel"],
            chosen["target_channel"],
        )
        after = {str(c.channel_id): c.local_balance_msat for c in node.list_channels()}
        assert result["local_balance_after_msat"] == {k: after[k] for k in result["local_balance_after_msat"]}
        assert result["local_balance_before_msat"] == {str(k): v for k, v in before.items()
                                                       if str(k) in result["local_balance_before_msat"]}  # fmt: skip
        if result["ok"]:
            moved = after[chosen["target_channel"]] - result["local_balance_before_msat"][chosen["target_channel"]]
            assert moved == result["amount_msat"] > 0 and node.stats.rebalances_ok == 1
        else:
            assert result["reason"] and node.stats.rebalances == 1
        # The same suggestion cannot be carried out twice.
        ws.send_text(json.dumps({"type": "ack", "suggestion_id": chosen["id"]}))
        assert "not open" in _until(ws, "error")["data"]["message"]
    driver.stop()


def test_docs_list_every_message_type_and_endpoint():
    from pathlib import Path

    from lnlens_core.web.views import ROUTES

    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    assert all(f"| `{kind}` |" in text for kind in SERVER_TYPES)
    assert all(f"| `{path}` |" in text for path in ROUTES)


def test_plain_serve_streams_what_another_process_writes_to_the_store(tmp_path):
    from lnlens_core.web.watcher import StoreWatcher

    server = _server(tmp_path, clock=ManualClock(1_000.0))
    writer = Store(server.config.db_path)
    writer.ingest_forwards([_forward(0, 1_000.0)], source="live")  # before: never published
    watcher = StoreWatcher(server.config.db_path, server.hub, poll_s=0.02)
    with TestClient(server.app) as client, client.websocket_connect(f"{STREAM_PATH}?token={server.token}") as ws:
        ws.receive_text()
        watcher.start()
        assert _wait(lambda: watcher.polls >= 1)
        writer.ingest_forwards([_forward(i, 1_000.0 + i) for i in (1, 2)], source="live")
        got = [_until(ws, "forward")["data"]["key"] for _ in range(2)]
        assert got == [_forward(1, 0).key, _forward(2, 0).key]
        row = {"short_channel_id": "800001x2x1", "in_channel": None, "window_s": 3600, "urgency": 5,
               "missed_revenue_msat": 7_000, "recommendations": []}  # fmt: skip
        writer.save_opportunities([row, {**row, "in_channel": "800000x1x0"}], run_time=1_010.0)
        writer.save_alerts([{"type": "drain", "short_channel_id": "800001x2x1", "message": "m", "evidence": {}}],
                           run_time=1_010.0)  # fmt: skip
        opp = _until(ws, "opportunities")["data"]
        assert (opp["run_time"], opp["count"], opp["missed_revenue_msat"], opp["top"]) == (1_010.0, 1, 7_000, [row])
        alerts = _until(ws, "alerts")["data"]["alerts"]
        assert [a["kind"] for a in alerts] == ["drain"]
    watcher.stop()
    writer.close()
