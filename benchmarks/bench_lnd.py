"""LND benchmark for issue [E]: HTLC events consumed from the fake lnd's stream into the store.

The fake lnd runs in a process of its own, as lnd does (in the client's process it would share the GIL with it,
and every microsecond lnlens spends would slow the server down). Each round sends the same messages, over TLS, to
two subscribers at once, so the machine's load weighs on both alike:

- **emit**: a client in a third process (lnlens's own allowlisted client) that discards them: the rate the
  server delivers the stream at;
- **consume**: :class:`lnlens_lnd.events.LiveForwards`, which takes them off the stream, converts them and
  stores the resolved forwards (SQLite file, WAL) through ``HtlcMonitor.record``.

A round's messages are built in the server before its clock starts (``FakeLnd.stage``) and sent at once
(``FakeLnd.release``); it ends for each side when the discarding client has counted, and the feed has stored,
the last of them. The ratio of the two rates (consume/emit) says whether the ingest keeps up with the stream.
Rounds alternate between the feed as it runs and the feed with ``linger_s=0`` (each batch stored as soon as it
is queued, as before issue 16). The forwards are a simulated node's (lnlens_sim), repeated with fresh HTLC ids;
each forward is 2-3 stream messages as lnd sends them.

The sidecar's memory over stores of 100,000 to 1,000,000 forwards is ``bench_memory.py``'s (:func:`sidecar_rss`).

Run with ``make bench`` (or ``.venv/bin/python benchmarks/bench_lnd.py --quick``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from lnlens_lnd.backend import LndBackend
from lnlens_lnd.connection import LndSettings
from lnlens_lnd.events import LiveForwards
from lnlens_testing.lnd import FakeLnd, htlc_messages, minimal_ops, sim_node

from lnlens_core.clock import SystemClock
from lnlens_core.opportunities.monitor import HtlcMonitor
from lnlens_core.storage import Store


def forwards(node, count: int, id_base: int) -> list:
    """``count`` forwards shaped like the simulator's, each with an HTLC id and a time of its own.

    The simulated hour is repeated as many times as it takes, each repetition an hour (its span) after the one
    before, and each round (``id_base``: ``k << 24`` for the k-th) after the previous round's: a stream never
    brings the same channel's forwards at the same instants over and over. (The hour holds ~230 forwards. Repeated
    with their times, each instant came ~86 times in a round and ~520 times by the sixth, so a forward had hundreds
    of times as many neighbours within the payment-matching gap as on a real node, and the ingest's marking of them
    (schema.MARK_NEAR) was slower each round.)
    """
    base = node.events
    start = min(e.received_time for e in base)
    span = max(e.resolved_time or e.received_time for e in base) - start + 1.0
    repeats = -(-count // len(base))
    out = []
    for i in range(count):
        e = base[i % len(base)]
        shift = ((id_base >> 24) * repeats + i // len(base)) * span
        out.append(dataclasses.replace(e, in_htlc_id=id_base + i, received_time=e.received_time + shift,
                                       resolved_time=e.resolved_time + shift if e.resolved_time else None))  # fmt: skip
    return out


def messages_for(events) -> int:
    return sum(len(htlc_messages(e, 0)) for e in events)


def wait_for(predicate, timeout: float = 600.0) -> None:
    pause = threading.Event()
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError("benchmark stalled")
        pause.wait(0.002)


def serve(folder: Path) -> None:
    """The fake lnd's process (``bench_lnd.py --serve DIR``): its address on stdout, then one command per stdin line
    (``stage COUNT ID_BASE``: build a round's messages, answer their number; ``release``: send them)."""
    node = sim_node(payments_per_hour=6000)
    fake = FakeLnd(node, folder)
    fake.start()
    node.run(3600)
    mac = fake.write_macaroon("lnlens.macaroon", minimal_ops("read"))
    print(json.dumps({"host": fake.host, "tlscert": str(fake.cert_path), "macaroon": str(mac)}), flush=True)
    staged = None
    try:
        for line in sys.stdin:
            cmd, *args = line.split()
            if cmd == "stage":
                staged = fake.stage(forwards(node, int(args[0]), int(args[1])))
                print(len(staged[1]), flush=True)
            elif cmd == "release" and staged is not None:
                fake.release(staged)
                print("released", flush=True)
    finally:
        fake.stop()


def discard(settings_json: str) -> None:
    """The discarding client's process (``bench_lnd.py --discard SETTINGS``): subscribes, says ``ready``; then for
    each stdin line ``count N`` counts N messages and answers the ``perf_counter`` (system-wide) of the last."""
    where = json.loads(settings_json)
    backend = LndBackend.connect(_settings(where), clock=SystemClock())
    stream = backend.subscribe_htlc_events()
    messages = iter(stream)
    assert next(messages).WhichOneof("event") == "subscribed_event"
    print("ready", flush=True)
    try:
        for line in sys.stdin:
            for _ in range(int(line.split()[1])):
                next(messages)
            print(time.perf_counter(), flush=True)
    finally:
        stream.cancel()
        backend.close()


def _settings(where: dict) -> LndSettings:
    return LndSettings(host=where["host"], tlscert=Path(where["tlscert"]), macaroon=Path(where["macaroon"]),
                       network="regtest", mode="read", timeout_s=30.0)  # fmt: skip


class Child:
    """This script in a child process, one command per line on its stdin, one answer per line on its stdout."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)  # fmt: skip

    def read(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.proc.args[2:]}: the process ended (exit {self.proc.wait()})")
        return line.strip()

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Feed:
    """LiveForwards on its own thread with its own Store (as in ``lnlens lnd run``), connected and caught up."""

    def __init__(self, backend, db: Path, **kwargs) -> None:
        self.stop = threading.Event()
        box: dict = {}
        clock = SystemClock()

        def work() -> None:
            store = Store(db)
            monitor = HtlcMonitor(store, clock, lambda batch: None)
            box["feed"] = feed = LiveForwards(backend, monitor, clock, self.stop, resync_s=3600, **kwargs)
            feed.run()
            store.close()

        self.worker = threading.Thread(target=work)
        self.worker.start()
        wait_for(lambda: "feed" in box and box["feed"].connected.is_set())
        self.live: LiveForwards = box["feed"]

    def close(self) -> None:
        self.live.close()
        self.worker.join(30)


def one_round(backend, server: Child, client: Child, db: Path, count: int, id_base: int, **kwargs) -> float:
    """``count`` fresh forwards to the discarding client and to a feed at once: the feed's rate / the client's."""
    feed = Feed(backend, db, **kwargs)
    try:
        server.send(f"stage {count} {id_base}")
        n_msgs = int(server.read())
        client.send(f"count {n_msgs}")
        start = feed.live.stats.recorded
        t0 = time.perf_counter()
        server.send("release")
        wait_for(lambda: feed.live.stats.recorded - start >= count)
        consume_s = time.perf_counter() - t0
        emit_s = float(client.read()) - t0
        assert server.read() == "released"
    finally:
        feed.close()
    return emit_s / consume_s, n_msgs / emit_s


def bench(count: int, rounds: int = 3) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="lnlens-bench-lnd-") as tmp:
        folder = Path(tmp)
        server = Child("--serve", str(folder / "lnd"))
        client = None
        try:
            where = server.read()
            backend = LndBackend.connect(_settings(json.loads(where)), clock=SystemClock())
            client = Child("--discard", where)
            assert client.read() == "ready"
            ratios, eager, emits = [], [], []
            try:
                for r in range(rounds):
                    ratio, rate = one_round(backend, server, client, folder / "bench.sqlite3", count, (2 * r + 1) << 24)
                    ratios.append(ratio)
                    emits.append(rate)
                    ratio, rate = one_round(backend, server, client, folder / "eager.sqlite3", count, (2 * r + 2) << 24,
                                            linger_s=0)  # fmt: skip
                    eager.append(ratio)
                    emits.append(rate)
            finally:
                backend.close()
        finally:
            if client is not None:
                client.close()
            server.close()
    return {
        "forwards": count,
        "rounds": rounds,
        "emit_msgs_per_s": statistics.median(emits),
        "ratio": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "eager_ratio": statistics.median(eager),
        "eager_min": min(eager),
        "eager_max": max(eager),
    }


def sidecar_rss(db: Path, folder: Path, env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """``lnlens lnd run`` over the store ``db`` against a fake lnd, analysing every second, until its third
    analysis: (VmRSS MB, VmHWM MB, seconds to the first analysis)."""
    fake = FakeLnd(sim_node(payments_per_hour=600), folder / "lnd")
    fake.start()
    try:
        mac = fake.write_macaroon("lnlens.macaroon", minimal_ops("read"))
        config = folder / "lnlens.toml"
        config.write_text(f'interval = "1s"\n[lnd]\nhost = "{fake.host}"\nnetwork = "regtest"\n'
                          f'tlscert = "{fake.cert_path}"\nmacaroon = "{mac}"\n')  # fmt: skip
        return _daemon_rss(config, db, env or {})
    finally:
        fake.stop()


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
    parser.add_argument("--forwards", type=int, default=None, help="forwards per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--discard", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return
    if args.discard is not None:
        discard(args.discard)
        return
    count = args.forwards or (5_000 if args.quick else 20_000)
    r = bench(count, args.rounds)
    print(f"lnd stream, {r['rounds']} x 2 rounds of {r['forwards']:,} forwards each, to a discarding client and the "
          "feed at once (TLS, the fake lnd and the client each in a process of their own)")  # fmt: skip
    print(f"  emit to a discarding client : {r['emit_msgs_per_s']:>10,.0f} events/s (median)")
    print(f"  ratio consume/emit          : {r['ratio']:>10.2f} median (rounds {r['ratio_min']:.2f}-"
          f"{r['ratio_max']:.2f}); each batch stored at once (linger_s=0, as before issue 16): "
          f"{r['eager_ratio']:.2f} ({r['eager_min']:.2f}-{r['eager_max']:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
