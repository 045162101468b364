"""A lightningd stand-in for tests, examples and benchmarks: the real plugin, a simulated node.

:class:`StandIn` puts together a lightning-dir, the RPC socket answered from a SimNode
(:mod:`.rpc`), lightningd's forwards table (:mod:`.ledger`) and the plugin process
(:mod:`.lightningd`). :meth:`StandIn.advance` runs the simulation and delivers what
happened at our node as lightningd would: rows in ``listforwards`` and
``forward_event`` notifications to a running plugin.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lnlens_core.clock import ManualClock, SystemClock
from lnlens_core.domain import HtlcEvent

from .ledger import ForwardLedger
from .lightningd import PluginError, PluginProcess, ProtocolViolation, cli_params
from .rpc import RpcSocketServer, SimLightningRpc

__all__ = ["StandIn", "plugin_command", "sim_node", "liquidity_seed", "PluginError", "ProtocolViolation", "cli_params",
           "ForwardLedger", "SimLightningRpc", "RpcSocketServer", "PluginProcess"]  # fmt: skip


def plugin_command() -> list[str]:
    """The installed ``lnlens-cln`` script (next to this Python), else the module."""
    script = Path(sys.executable).with_name("lnlens-cln")
    if script.exists():
        return [str(script)]
    found = shutil.which("lnlens-cln")
    return [found] if found else [sys.executable, "-m", "lnlens_cln.plugin"]


def sim_node(*, history_s: float, nodes: int = 30, seed: int = 3, payments_per_hour: float = 3000.0,
             balances: str = "uniform", start_s: float | None = None) -> Any:  # fmt: skip
    """A small synthetic network whose clock starts ``history_s`` before the real now (or at ``start_s``).

    The plugin runs on the wall clock, so simulated forwards must lie in its past.
    """
    from lnlens_sim.scenario import SimSettings, build

    settings = SimSettings(network="synthetic", nodes=nodes, seed=seed, payments_per_hour=payments_per_hour,
                           balances=balances)  # fmt: skip
    return build(settings, clock=ManualClock(SystemClock().now() - history_s if start_s is None else start_s))


def liquidity_seed(history_s: float, *, start_s: float, minimum: int = 5) -> int:
    """The first seed whose first ``history_s`` from ``start_s`` fail ``minimum`` forwards on one channel for
    liquidity, as lightningd would classify them, with that channel still below 20 % local at the end.

    Found by running the simulator rather than fixed, so tests and examples keep their
    premise while the simulator's traffic model evolves. The traffic follows the time of day, so
    the search runs from the very start time the caller then uses: deterministic for that start.
    """
    from collections import Counter

    from lnlens_core.domain import FailureReason
    from lnlens_core.opportunities.failures import classify_cln

    for seed in range(1, 40):
        node = sim_node(history_s=history_s, seed=seed, start_s=start_s)
        node.run(history_s)
        failed = Counter(
            e.out_channel for e in node.events
            if classify_cln(e.status, e.failcode, e.failreason) is FailureReason.INSUFFICIENT_BALANCE
        )  # fmt: skip
        ratio = {c.channel_id: c.balance_ratio for c in node.list_channels()}
        top = failed.most_common(1)[0] if failed else (None, 0)
        if top[0] is not None and top[1] >= minimum and (ratio.get(top[0]) or 0.0) < 0.2:
            return seed
    raise ValueError("no seed gives liquidity failures: the simulator's traffic model changed")


class StandIn:
    """lightningd around a real ``lnlens-cln`` process, backed by ``node`` (a SimNode)."""

    def __init__(self, lightning_dir: str | Path, node: Any, *, command: list[str] | None = None) -> None:
        self.lightning_dir = Path(lightning_dir).resolve()
        self.lightning_dir.mkdir(parents=True, exist_ok=True)
        self.node = node
        self.ledger = ForwardLedger()
        self.rpc = SimLightningRpc(node, self.ledger, lightning_dir=str(self.lightning_dir))
        self.server = RpcSocketServer(self.lightning_dir / "lightning-rpc", self.rpc.handle)
        self.command = command or plugin_command()
        self.plugin: PluginProcess | None = None
        self.sent = 0

    def start_plugin(self, options: Mapping[str, Any] | None = None, *, startup: bool = True) -> Any:
        """Start (or restart) the plugin; returns init's result."""
        self.plugin = PluginProcess(self.command, str(self.lightning_dir))
        return self.plugin.start(options, startup=startup)

    def stop_plugin(self) -> int:
        assert self.plugin is not None
        return self.plugin.stop()

    def _deliver(self, payloads: list[dict[str, Any]]) -> None:
        plugin = self.plugin
        if plugin is None or not plugin.alive or not plugin.subscribed("forward_event"):
            return  # notifications are never replayed: a stopped plugin misses them
        for payload in payloads:
            plugin.notify("forward_event", payload)
            self.sent += 1

    def advance(self, seconds: float, *, hold: int = 0) -> list[HtlcEvent]:
        """Simulate ``seconds``; our forwards become ledger rows and notifications.

        :param hold: leave this many forwards ``offered`` (resolve them with :meth:`resolve_held`).
        """
        with self.rpc.lock:
            before = len(self.node.events)
            self.node.run(seconds)
            new = self.node.events[before:]
            payloads = self.ledger.add(new, hold=hold)
        self._deliver(payloads)
        return new

    def resolve_held(self) -> None:
        with self.rpc.lock:
            payloads = self.ledger.resolve()
        self._deliver(payloads)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
        """Poll ``predicate`` until it is truthy; its value. Raises TimeoutError naming it."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            time.sleep(interval)

    def backend(self) -> Any:
        """A ClnBackend on this stand-in's socket, through pyln's ``LightningRpc`` like the plugin's."""
        from lnlens_cln.backend import ClnBackend
        from pyln.client import LightningRpc

        return ClnBackend(LightningRpc(str(self.lightning_dir / "lightning-rpc")))

    def advance_forwards(self, n: int, *, hold: int = 0, step_s: float = 300.0) -> list[HtlcEvent]:
        """Simulate in steps of ``step_s`` until at least ``n`` more forwards happened at our node.

        :param hold: as in :meth:`advance`: the last ``hold`` forwards stay offered at the end.
        """
        made: list[HtlcEvent] = []
        while len(made) < n:
            made += self.advance(step_s, hold=hold)
        return made

    def make_forwards(self, n: int) -> None:
        """Simulate until at least ``n`` more forwards at our node are in lightningd's history, all resolved."""
        self.advance_forwards(n)

    def wait_backfill(self, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until the plugin reports its backfill done; returns that lens-status.

        :raises AssertionError: the plugin's worker failed (with its error).
        """
        assert self.plugin is not None

        def done() -> dict[str, Any] | None:
            assert self.plugin is not None
            status = self.plugin.call("lens-status")
            assert status["worker"] != "failed", status["error"]
            return status if status["backfill"]["state"] == "done" else None

        return self.wait_for(done, timeout=timeout)

    def settled(self) -> bool:
        """True once the plugin has received every notification sent and recorded them all."""
        assert self.plugin is not None
        events = self.plugin.call("lens-status")["events"]
        return events["live"] == self.sent and events["queued"] == 0

    def close(self) -> None:
        if self.plugin is not None and self.plugin.alive:
            self.plugin.kill()
        self.server.close()
