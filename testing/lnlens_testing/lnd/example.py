"""The README's LND example, produced by running the commands against the fake lnd.

``python -m lnlens_testing.lnd.example`` prints it; ``--write README.md`` replaces the block
between the ``lnd-example`` markers. Everything is deterministic (a seeded simulator
on a ManualClock), so ``tests/lnd/test_example.py`` regenerates the block and fails if
the README's copy differs: the output shown is real, never typed.

The run: a simulated node forwards for half an hour before lnlens starts (lnd keeps
the settled ones in its history), then the sidecar's live feed runs for two
simulated hours, then ``lnlens lnd status`` and ``lnlens lnd opportunities`` run.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import tempfile
import threading
from pathlib import Path

from lnlens_lnd.backend import LndBackend
from lnlens_lnd.events import LiveForwards

from lnlens_core.cli import build_parser
from lnlens_core.cli.context import CliContext
from lnlens_core.clock import ManualClock, SystemClock
from lnlens_core.opportunities.monitor import HtlcMonitor
from lnlens_core.storage import Store
from lnlens_core.untrusted import SafeConsole

from . import FakeLnd, minimal_ops, sim_node

__all__ = ["generate", "write"]

START = re.compile(r"<!-- lnd-example:start -->\n.*?<!-- lnd-example:end -->", re.DOTALL)


def _command(argv: list[str], clock: ManualClock) -> str:
    args = build_parser().parse_args(argv)
    ctx = CliContext(args)
    # Any Clock will do: the example runs at the simulated time.
    ctx.clock = ManualClock(clock.now())  # type: ignore[assignment]
    out = io.StringIO()
    ctx.console = SafeConsole(file=out, width=120, color_system=None, legacy_windows=False)
    try:
        with contextlib.redirect_stdout(out):
            code = args.handler(args, ctx)
    finally:
        ctx.close()
    if code:
        raise RuntimeError(f"{' '.join(argv)} exited {code}")
    return out.getvalue().rstrip()


def generate() -> str:
    """The markdown block: commands and their output."""
    with tempfile.TemporaryDirectory(prefix="lnlens-lnd-example-") as tmp:
        folder = Path(tmp)
        node = sim_node(balances="opener", payments_per_hour=800, clock=ManualClock(1_770_076_800.0))
        fake = FakeLnd(node, folder / "lnd")
        fake.start()
        try:
            node.run(1800)
            mac = fake.write_macaroon("lnlens.macaroon", minimal_ops("read"))
            config = folder / "lnlens.toml"
            db = folder / "lnlens.sqlite3"
            config.write_text(
                f'db = "{db}"\n[lnd]\nhost = "{fake.host}"\nnetwork = "regtest"\ntlscert = "{fake.cert_path}"\n'
                f'macaroon = "{mac}"\n'
            )
            backend = LndBackend.connect(fake.settings(mac), clock=node.clock)
            stop, ready = threading.Event(), threading.Event()
            box: dict = {}

            def sidecar() -> None:
                store = Store(db)
                box["feed"] = LiveForwards(backend, HtlcMonitor(store, node.clock, lambda b: None), SystemClock(),
                                           stop, backoff_s=(0.05, 0.2))  # fmt: skip
                ready.set()
                box["feed"].run()
                store.close()

            worker = threading.Thread(target=sidecar)
            worker.start()
            ready.wait(10)
            feed = box["feed"]
            _until(lambda: feed.connected.is_set())
            node.run(7200)
            drops = feed.stats.drops
            fake.drop_streams()  # the feed has stored all it was sent once it sees the stream end
            _until(lambda: feed.stats.drops > drops)
            _until(lambda: feed.stats.connects == 2 and feed.connected.is_set())  # and has re-read the history
            feed.close()
            worker.join(10)
            backend.close()
            common = ["--config", str(config)]
            status = _command([*common, "lnd", "status"], node.clock)
            table = _command([*common, "lnd", "opportunities", "--limit", "5"], node.clock)
            as_json = _command([*common, "lnd", "opportunities", "--json", "--limit", "1"], node.clock)
            blocks = [
                ("lnlens lnd status", status),
                ("lnlens lnd opportunities --limit 5", table),
                ("lnlens lnd opportunities --json --limit 1 | head -n 30", "\n".join(as_json.splitlines()[:30])),
            ]
        finally:
            fake.stop()
    body = "\n\n".join(f"```console\n$ {cmd}\n{out}\n```" for cmd, out in blocks)
    return f"<!-- lnd-example:start -->\n{body}\n<!-- lnd-example:end -->"


def _until(predicate, timeout: float = 30.0) -> None:
    pause = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        pause.wait(0.01)
    raise TimeoutError("the example's sidecar did not keep up")


def write(readme: Path) -> bool:
    """Replace the README's block; returns whether it changed."""
    text = readme.read_text(encoding="utf-8")
    if not START.search(text):
        raise ValueError(f"{readme} has no <!-- lnd-example:start --> ... <!-- lnd-example:end --> block")
    new = START.sub(lambda _: generate(), text, count=1)
    readme.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--write":
        print("updated" if write(Path(sys.argv[2])) else "unchanged")
    else:
        print(generate())
