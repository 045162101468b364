"""Live API benchmark for issue [H]: latency of /api/v1/opportunities and /api/v1/channels over a node with
1,000 channels and 1,000,000 stored forwards, and stream throughput to one client against the monitor's ingest.

Requests go over loopback HTTP to the real server (uvicorn, as `lnlens serve` runs it), one at a time. The same-run
baseline for latency is the OpenAPI document (a route that reads nothing); for the stream it is the monitor's ingest
rate with nobody listening. Run with ``make bench`` (or ``--forwards 100000`` for a quick look).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from lnlens_core.clock import ManualClock
from lnlens_core.config import LensConfig
from lnlens_core.domain import ChannelId, FailureReason, ForwardStatus, HtlcEvent
from lnlens_core.lens import Lens
from lnlens_core.opportunities.run import run_analysis
from lnlens_core.plugins import get_plugin_manager
from lnlens_core.storage import Store
from lnlens_core.testing import make_channel
from lnlens_core.web.server import STREAM_PATH, WebServer
from lnlens_core.web.stream import StreamObserver

NOW = 1_767_225_600.0 + 30 * 86_400


def forwards(channels: list[ChannelId], n: int, rng: random.Random, *, start: int = 0) -> list[HtlcEvent]:
    out = []
    for i in range(start, start + n):
        a, b = rng.sample(channels, 2)
        t = NOW - rng.random() * 30 * 86_400
        roll = rng.random()
        if roll < 0.7:
            status, reason = ForwardStatus.SETTLED, None
        elif roll < 0.9:
            status, reason = ForwardStatus.LOCAL_FAILED, FailureReason.INSUFFICIENT_BALANCE
        else:
            status, reason = ForwardStatus.FAILED, FailureReason.DOWNSTREAM
        amount = rng.randrange(10_000, 5_000_000_000)
        fee = 1_000 + amount // 10_000
        out.append(HtlcEvent(in_channel=a, in_htlc_id=i, out_channel=b, in_msat=amount + fee, out_msat=amount,
                             fee_msat=fee, status=status, failure_reason=reason, received_time=t,
                             resolved_time=t + 1))  # fmt: skip
    return out


def build(db: Path, n_channels: int, n_forwards: int) -> tuple[LensConfig, float]:
    rng = random.Random(1)
    config = LensConfig(data_dir=db.parent, db_path=db)
    store = Store(db)
    ids = [ChannelId(700_000 + i, i % 50, 0) for i in range(n_channels)]
    channels = [make_channel(cid, local_ratio=rng.random(), fee_ppm=rng.randrange(1, 2000)) for cid in ids]
    store.add_snapshots(channels, time=NOW - 3600)
    t0 = time.perf_counter()
    for start in range(0, n_forwards, 50_000):
        store.ingest_forwards(forwards(ids, min(50_000, n_forwards - start), rng, start=start), source="backfill")
    ingest_s = time.perf_counter() - t0
    lens = Lens(config, store=store, clock=ManualClock(NOW), pm=get_plugin_manager(load_entrypoints=False))
    run_analysis(lens, since_s=7 * 86_400, channels=channels)
    store.close()
    return config, ingest_s


def latency(client: httpx.Client, url: str, n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(url)
        times.append(time.perf_counter() - t0)
        r.raise_for_status()
    times.sort()
    return statistics.median(times) * 1000, times[min(len(times) - 1, int(0.99 * len(times)))] * 1000


def stream_throughput(config: LensConfig, n: int) -> dict[str, float]:
    from websockets.sync.client import connect

    server = WebServer(config, ManualClock(NOW), port=0, queue_limit=10 * n,
                       pm_factory=lambda: get_plugin_manager(load_entrypoints=False))  # fmt: skip
    server.start()
    rng = random.Random(2)
    ids = [ChannelId(800_000 + i, 1, 0) for i in range(100)]
    batches = [forwards(ids, 1_000, rng, start=10_000_000 + k * 1_000) for k in range(n // 1_000)]
    results = {}
    stack = contextlib.ExitStack()
    for listening in (False, True):
        store = Store(config.db_path.parent / f"stream-{listening}.sqlite3")
        pm = get_plugin_manager(load_entrypoints=False)
        pm.register(StreamObserver(server.hub))
        lens = Lens(config, store=store, clock=ManualClock(NOW), pm=pm)
        got, done = [0], threading.Event()
        if listening:
            ws = stack.enter_context(
                connect(f"ws://127.0.0.1:{server.bound_port}{STREAM_PATH}?token={server.token}", max_queue=None)
            )
            ws.recv()  # hello

            def read(ws=ws, got=got, done=done) -> None:
                while got[0] < n:
                    if '"forward"' in ws.recv():
                        got[0] += 1
                done.set()

            threading.Thread(target=read, daemon=True).start()
        t0 = time.perf_counter()
        for batch in batches:
            lens.monitor.record(batch)
            lens.monitor.flush()
        ingest_s = time.perf_counter() - t0
        results["ingest_alone" if not listening else "ingest_listened"] = n / ingest_s
        if listening:
            done.wait(300)
            results["delivered"] = got[0] / (time.perf_counter() - t0)
            results["dropped"] = server.hub.dropped
            stack.close()
        store.close()
    server.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--channels", type=int, default=1_000)
    p.add_argument("--forwards", type=int, default=1_000_000)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--stream", type=int, default=100_000, help="forwards through the stream test")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        config, ingest_s = build(Path(tmp) / "bench.sqlite3", args.channels, args.forwards)
        print(f"store: {args.channels:,} channels, {args.forwards:,} forwards (built in {ingest_s:.1f} s)")
        server = WebServer(config, ManualClock(NOW), port=0,
                           pm_factory=lambda: get_plugin_manager(load_entrypoints=False))  # fmt: skip
        server.start()
        try:
            with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}) as client:
                for path in ("/api/v1/openapi.json", "/api/v1/opportunities", "/api/v1/channels"):
                    latency(client, path, 10)  # warm up the thread's store and caches
                base = latency(client, "/api/v1/openapi.json", args.requests)
                print(f"GET /api/v1/openapi.json   p50 {base[0]:6.2f} ms  p99 {base[1]:6.2f} ms  (baseline)")
                for path in ("/api/v1/opportunities", "/api/v1/channels"):
                    p50, p99 = latency(client, path, args.requests)
                    print(f"GET {path:<23} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  = {p99 / base[1]:.1f} x baseline p99")
        finally:
            server.stop()
        s = stream_throughput(config, args.stream)
        print(f"monitor ingest, nobody listening: {s['ingest_alone']:10,.0f} forwards/s  (baseline)")
        print(f"monitor ingest, one client:       {s['ingest_listened']:10,.0f} forwards/s  "
              f"= {s['ingest_listened'] / s['ingest_alone']:.2f} x baseline")  # fmt: skip
        ratio = s["delivered"] / s["ingest_listened"]
        print(f"stream delivered to that client:  {s['delivered']:10,.0f} messages/s  "
              f"= {ratio:.2f} x the monitor's ingest rate (dropped: {s['dropped']:.0f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
