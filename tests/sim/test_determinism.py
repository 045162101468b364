"""Every simulated run stays bit-identical per seed to the runs recorded by another process (digest.py --write).

The digests (``sim_digests.json``, made by ``tests/sim/digest.py`` when the route searches became compiled,
docs/SIMULATOR.md#performance) cover every HTLC
attempt in the network (route, amounts, where it failed, our hop), every forward event and its ground
truth, the final balances, the counters, our policies and the rebalancer's actions, on the whole mainnet
graph, a 200-node neighbourhood and a synthetic graph, with and without fee changes during the run.
``LNLENS_SIM_DIGEST_LONG=1`` adds the long scenarios (the ``make demo`` day: minutes of CPU).
"""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from . import digest

RECORDED = json.loads(digest.DIGESTS.read_text())
LONG = os.environ.get("LNLENS_SIM_DIGEST_LONG") == "1"
CASES = [sc for sc in digest.SCENARIOS if LONG or not sc.long]


@pytest.fixture(scope="module")
def mainnet():
    from lnlens_sim.graph import load_mainnet

    return load_mainnet()


@pytest.mark.parametrize("scenario", CASES, ids=[sc.name for sc in CASES])
def test_runs_are_identical_to_the_recorded_ones(scenario, mainnet):
    got = digest.run(scenario, mainnet if scenario.settings.network == "mainnet" else None)
    assert got == RECORDED[scenario.name]



def test_a_run_does_not_depend_on_what_the_route_cache_holds(mainnet):
    # Trees are grown only as far as senders need and evicted when the cache is full: with room for three
    # trees (each one grown again from nothing, to other extents) the run is the recorded one.
    scenario = next(sc for sc in digest.SCENARIOS if sc.name == "mainnet200-s3-12h")
    small = dataclasses.replace(scenario, settings=dataclasses.replace(scenario.settings, max_trees=3))
    assert digest.run(small, mainnet) == RECORDED[scenario.name]
