"""A SimNode for the fake lnd, and the harness that connects an LndBackend to it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .auth import minimal_ops
from .server import FakeLnd


def sim_node(
    *, nodes: int = 60, seed: int = 1, payments_per_hour: float = 3000.0, balances: str | None = None, clock=None
):
    """A small synthetic SimNode (fast to build) with enough forwards through it.

    :param balances: the simulator's balance rule (``opener`` leaves channels lopsided: many liquidity failures).
    :param clock: a ManualClock to start from (default: the simulator's start date).
    """
    from lnlens_sim.scenario import SimSettings, build

    settings = SimSettings(
        network="synthetic", nodes=nodes, seed=seed, payments_per_hour=payments_per_hour, balances=balances
    )
    return build(settings, clock=clock)


class LndHarness:
    """A FakeLnd over a fresh SimNode and an LndBackend connected to it (the contract suite's and the docs')."""

    def __init__(
        self,
        folder: Path,
        *,
        mode: str = "apply",
        version: str = "0.21.2-beta commit=v0.21.2",
        ops: Iterable[str] | None = None,
        node=None,
        **settings: Any,
    ) -> None:
        from lnlens_lnd.backend import LndBackend

        self.node = node if node is not None else sim_node()
        self.fake = FakeLnd(self.node, folder, version=version)
        self.fake.start()
        self.macaroon = self.fake.write_macaroon("lnlens.macaroon", ops if ops is not None else minimal_ops(mode))
        self.settings = self.fake.settings(self.macaroon, mode=mode, **settings)
        self.backend = LndBackend.connect(self.settings, clock=self.node.clock)

    def make_forwards(self, n: int) -> None:
        """Run the simulation until at least ``n`` more settled forwards are in lnd's log."""
        want = len(self.fake.log) + n
        for _ in range(10_000):
            if len(self.fake.log) >= want:
                return
            self.node.run(600)
        raise RuntimeError(f"the simulation made fewer than {n} settled forwards")

    def close(self) -> None:
        self.backend.close()
        self.fake.stop()
