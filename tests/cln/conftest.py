"""The lightningd stand-in around the real ``lnlens-cln`` executable, backed by a SimNode."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lnlens_testing.cln import StandIn, liquidity_seed, sim_node

from lnlens_core.clock import SystemClock

HISTORY_S = 2 * 3600.0


@pytest.fixture
def make_standin(tmp_path: Path) -> Iterator[Callable[..., StandIn]]:
    """Build stand-ins whose simulated network starts ``history_s`` before now; all closed at the end."""
    made: list[StandIn] = []

    def make(*, history_s: float = HISTORY_S + 3600.0, name: str = "regtest") -> StandIn:
        standin = StandIn(tmp_path / name, sim_node(history_s=history_s))
        made.append(standin)
        return standin

    yield make
    for standin in made:
        standin.close()


@pytest.fixture
def standin(make_standin) -> StandIn:
    """A stand-in with two simulated hours of forwards in lightningd's history, plugin not started."""
    s = make_standin()
    s.advance(HISTORY_S)
    return s


@pytest.fixture(scope="module")
def running(tmp_path_factory) -> Iterator[StandIn]:
    """One plugin, backfilled, shared by the tests of a module that only read from it.

    Its history has a channel that fails forwards for lack of liquidity.
    """
    start_s = SystemClock().now() - HISTORY_S - 3600.0
    node = sim_node(history_s=HISTORY_S, start_s=start_s, seed=liquidity_seed(HISTORY_S, start_s=start_s))
    s = StandIn(tmp_path_factory.mktemp("cln") / "regtest", node)
    s.advance(HISTORY_S)
    s.start_plugin()
    s.wait_backfill()
    yield s
    s.close()
