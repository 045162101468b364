"""LND benchmark for issue [E]: HTLC events consumed from the fake lnd's stream into the store.

Both figures come from the same run, over TLS to the same in-process fake lnd:

- **emit**: the rate at which the server delivers SubscribeHtlcEvents messages to a
  client (lnlens's own allowlisted client) that discards them;
- **consume**: the rate at which :class:`lnlens_lnd.events.LiveForwards` takes the
  same number of messages off the stream, converts them and stores the resolved
  forwards (SQLite file, WAL) through ``HtlcMonitor.record``.

The ratio consume/emit says how much of the stream's capacity the ingest keeps up
with. The forwards are a simulated node's (lnlens_sim), repeated with fresh HTLC ids
until there are enough; each forward is 2-3 stream messages as lnd sends them.

- **memory** (issue [M]): ``lnlens lnd run`` (the sidecar, its own process) against the fake
  lnd with a database of 1,000,000 forwards over 1,000 channels: its RSS after three analyses
  (VmRSS) and its peak (VmHWM), beside a process that only imports its modules.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/bench_lnd.py --quick``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from lnlens_lnd.backend import LndBackend
from lnlens_lnd.events import LiveForwards
from lnlens_lnd.testing import FakeLnd, htlc_messages, minimal_ops, sim_node

from lnlens_core.clock import SystemClock
from lnlens_core.monitor import HtlcMonitor
from lnlens_core.storage import Store


def forwards(node, count: int, id_base: int) -> list:
    """``count`` forwards shaped like the simulator's, each with an HTLC id of its own."""
    base = node.events
    out = []
    for i in range(count):
        e = base[i % len(base)]
        out.append(dataclasses.replace(e, in_htlc_id=id_base + i))
    return out


def messages_for(events) -> int:
    return sum(len(htlc_messages(e, 0)) for e in events)


def wait_for(predicate, timeout: float = 300.0) -> None:
    pause = threading.Event()
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError("benchmark stalled")
        pause.wait(0.002)


def consume(backend, fake, node, db: Path, events, **kwargs) -> tuple[int, float]:
    """lnlens's feed taking ``events`` off the stream into ``db``: (messages consumed, seconds)."""
    stop = threading.Event()
    box: dict = {}

    def work() -> None:
        store = Store(db)
        monitor = HtlcMonitor(store, node.clock, lambda batch: None)
        box["feed"] = feed = LiveForwards(backend, monitor, SystemClock(), stop, resync_s=3600, **kwargs)
        feed.run()
        store.close()

    worker = threading.Thread(target=work)
    worker.start()
    wait_for(lambda: "feed" in box and box["feed"].connected.is_set())
    feed = box["feed"]
    start_msgs, start_recorded = feed.stats.messages, feed.stats.recorded
    t0 = time.perf_counter()
    fake.publish(events)
    wait_for(lambda: feed.stats.recorded - start_recorded >= len(events))
    seconds = time.perf_counter() - t0
    consumed = feed.stats.messages - start_msgs
    feed.close()
    worker.join(30)
    return consumed, seconds


def bench(count: int) -> dict[str, float]:
    node = sim_node(payments_per_hour=6000)
    with tempfile.TemporaryDirectory(prefix="lnlens-bench-lnd-") as tmp:
        folder = Path(tmp)
        fake = FakeLnd(node, folder / "lnd")
        fake.start()
        node.run(3600)
        mac = fake.write_macaroon("lnlens.macaroon", minimal_ops("read"))
        backend = LndBackend.connect(fake.settings(mac), clock=node.clock)
        try:
            emit_events = forwards(node, count, 10_000_000)
            consume_events = forwards(node, count, 20_000_000)
            n_msgs = messages_for(emit_events)

            # 1. The server's rate to a client that only counts what it receives.
            stream = backend.subscribe_htlc_events()
            received = [0]
            subscribed = threading.Event()

            def discard() -> None:
                for msg in stream:
                    if msg.WhichOneof("event") == "subscribed_event":
                        subscribed.set()
                        continue
                    received[0] += 1

            reader = threading.Thread(target=discard)
            reader.start()
            subscribed.wait(10)
            t0 = time.perf_counter()
            fake.publish(emit_events)
            wait_for(lambda: received[0] >= n_msgs)
            emit_s = time.perf_counter() - t0
            stream.cancel()
            reader.join(10)

            # 2. lnlens's feed: convert, store, count; then the same with each batch stored as soon as it is
            # queued (linger_s=0, the feed before issue 16), on fresh HTLC ids and a fresh database.
            consume_msgs, consume_s = consume(backend, fake, node, folder / "bench.sqlite3", consume_events)
            eager_events = forwards(node, count, 30_000_000)
            eager_msgs, eager_s = consume(backend, fake, node, folder / "eager.sqlite3", eager_events, linger_s=0)
        finally:
            backend.close()
            fake.stop()
    return {
        "forwards": count,
        "messages": n_msgs,
        "emit_msgs_per_s": n_msgs / emit_s,
        "consume_msgs_per_s": consume_msgs / consume_s,
        "consume_forwards_per_s": count / consume_s,
        "ratio": (consume_msgs / consume_s) / (n_msgs / emit_s),
        "eager_ratio": (eager_msgs / eager_s) / (n_msgs / emit_s),
    }


def bench_memory(forwards_n: int) -> dict[str, float]:
    """The sidecar's RSS over a big store: it rebuilds its windows from it, then analyses every second."""
    from bench_cln import bare_rss_mb, fill
    from bench_cln import node as big_node

    node = sim_node(payments_per_hour=600)
    with tempfile.TemporaryDirectory(prefix="lnlens-bench-lnd-") as tmp:
        folder = Path(tmp)
        db = folder / "db.sqlite3"
        fill(db, big_node(1000), forwards_n, now=SystemClock().now(), hot_pairs=20_000)
        fake = FakeLnd(node, folder / "lnd")
        fake.start()
        mac = fake.write_macaroon("lnlens.macaroon", minimal_ops("read"))
        config = folder / "lnlens.toml"
        config.write_text(f'interval = "1s"\n[lnd]\nhost = "{fake.host}"\nnetwork = "regtest"\n'
                          f'tlscert = "{fake.cert_path}"\nmacaroon = "{mac}"\n')  # fmt: skip
        shim = folder / "no-sklearn" / "sklearn"
        shim.mkdir(parents=True)
        (shim / "__init__.py").write_text('raise ImportError("No module named \'sklearn\' (simulated)")\n')
        try:
            rss, peak, t_first = _daemon_rss(config, db, {})
            # Without the train extra (scikit-learn), as most operators install it: no online learning.
            lean, lean_peak, _ = _daemon_rss(config, db, {"PYTHONPATH": str(shim.parent)})
        finally:
            fake.stop()
    return {"forwards": forwards_n, "rss": rss, "peak": peak, "lean": lean, "lean_peak": lean_peak,
            "bare": bare_rss_mb(), "first_s": t_first}


def _daemon_rss(config: Path, db: Path, env: dict[str, str]) -> tuple[float, float, float]:
    """``lnlens lnd run`` until its third analysis: (VmRSS MB, VmHWM MB, seconds to the first analysis)."""
    from bench_cln import rss_mb

    cmd = [sys.executable, "-c", "import sys; from lnlens_core.cli import main; sys.exit(main())", "-v",
           "--config", str(config), "--db", str(db), "lnd", "run"]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env={**os.environ, **env})  # fmt: skip
    try:
        assert proc.stderr is not None
        analyses, t_first = 0, 0.0
        for line in proc.stderr:
            if "analysis " in line and " opportunities " in line:
                analyses += 1
                t_first = t_first or time.perf_counter() - t0
                if analyses == 3:
                    break
        else:
            raise RuntimeError(f"lnlens lnd run ended (exit {proc.wait()}) before three analyses")
        return (*rss_mb(proc.pid), t_first)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer forwards (a smoke run)")
    parser.add_argument("--forwards", type=int, default=None)
    args = parser.parse_args()
    count = args.forwards or (5_000 if args.quick else 50_000)
    r = bench(count)
    print(f"lnd stream, {r['forwards']:,} forwards = {r['messages']:,} HTLC events (TLS, same fake lnd, same run)")
    print(f"  emit to a discarding client : {r['emit_msgs_per_s']:>10,.0f} events/s")
    print(f"  consumed into the store     : {r['consume_msgs_per_s']:>10,.0f} events/s "
          f"({r['consume_forwards_per_s']:,.0f} forwards/s)")  # fmt: skip
    print(f"  ratio consume/emit          : {r['ratio']:>10.2f} (each batch stored at once, linger_s=0, as before "
          f"issue 16: {r['eager_ratio']:.2f})")  # fmt: skip
    m = bench_memory(100_000 if args.quick else 1_000_000)
    print(f"lnd sidecar memory, {m['forwards']:,} stored forwards over 1,000 channels: RSS {m['rss']:.0f} MB after "
          f"three analyses, peak {m['peak']:.0f} MB with the train extra (scikit-learn, online learning); without it "
          f"{m['lean']:.0f} MB, peak {m['lean_peak']:.0f} MB (aim < 200 MB); a process that only imports the "
          f"plugin's modules {m['bare']:.0f} MB; first analysis {m['first_s']:.1f} s after start")  # fmt: skip


if __name__ == "__main__":
    main()
