"""Digests of whole simulation runs: every attempt in the network, every forward, balances, counters.

The digests in ``sim_digests.json`` were recorded when the route searches became compiled (issue [M]: the
tie rule of lnlens_sim/kernels.py, channels too small for a bucket's midpoint unusable instead of NaN; before
that, from commit 104f873). Speed-ups must keep every run bit-identical per seed, because sweeps over seeds
and rollback rates measured by others depend on the exact stream; ``test_determinism.py`` checks it.

``python tests/sim/digest.py`` prints every scenario's digest (``--long`` adds the ``make demo`` day;
``--write`` records them into the JSON file, which only a deliberate change of the simulation's behaviour
may do).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
from pathlib import Path

from lnlens_sim.competitors import ReactiveFees
from lnlens_sim.graph import load_mainnet
from lnlens_sim.rebalance import AutoRecoveryRebalancer
from lnlens_sim.scenario import SIM_START, SimSettings, build

from lnlens_core.clock import ManualClock
from lnlens_core.domain import FeeUpdate

DIGESTS = Path(__file__).with_name("sim_digests.json")


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One run: settings, simulated seconds, and whether fees change during it."""

    name: str
    settings: SimSettings
    seconds: float
    fee_changes: bool = False  # ours by set_channel_policy (gossiped), our peers' by ReactiveFees
    rebalancer: bool = False
    long: bool = False  # only with --long / LNLENS_SIM_DIGEST_LONG=1: minutes of CPU


SCENARIOS = [
    Scenario("mainnet-s1-1h-rebalancer", SimSettings(network="mainnet", seed=1), 3600.0, rebalancer=True),
    Scenario("mainnet-s2-1h-fees", SimSettings(network="mainnet", seed=2), 3600.0, fee_changes=True),
    Scenario("mainnet200-s3-12h", SimSettings(network="mainnet", nodes=200, seed=3), 12 * 3600.0),
    Scenario("mainnet200-s4-12h-fees", SimSettings(network="mainnet", nodes=200, seed=4), 12 * 3600.0,
             fee_changes=True, rebalancer=True),  # fmt: skip
    Scenario("synthetic1000-s5-2h-fees", SimSettings(network="synthetic", nodes=1000, seed=5), 2 * 3600.0,
             fee_changes=True),  # fmt: skip
    Scenario("mainnet-s1-1d-demo", SimSettings(network="mainnet", seed=1), 86_400.0, rebalancer=True, long=True),
    Scenario("mainnet-s7-6h-fees", SimSettings(network="mainnet", seed=7), 6 * 3600.0, fee_changes=True,
             rebalancer=True, long=True),  # fmt: skip
]


class _Hasher:
    def __init__(self) -> None:
        self.h = hashlib.sha256()
        self.payments = 0

    def add(self, *parts: object) -> None:
        self.h.update(repr(parts).encode())

    def __call__(self, payment_id: int, t: float, result) -> None:
        """A payment observer: the payment and each of its HTLC attempts, whole."""
        self.payments += 1
        self.add("pay", payment_id, t, result.sender, result.receiver, result.amount_msat, result.settled,
                 result.fee_msat, result.no_route)  # fmt: skip
        for a in result.attempts:
            hop = a.our_hop
            self.add("try", a.route, a.amounts, a.failed_at, a.downstream_ok,
                     None if hop is None else dataclasses.astuple(hop))  # fmt: skip


def _fee_changes(node, hasher: _Hasher, seconds: float):
    """Our channels' policies change three times during the run; our peers reprice by liquidity."""
    reactive = ReactiveFees(node, period_s=seconds / 4)
    plan = {round(seconds * k / 5): k for k in (1, 2, 3)}
    done: set[int] = set()

    def on_tick(n, batch) -> None:
        reactive(n, batch)
        elapsed = n.clock.now() - SIM_START
        for at, k in plan.items():
            if elapsed >= at and at not in done:
                done.add(at)
                for i, ch in enumerate(n.list_channels()):
                    p = ch.local_policy
                    if p is None or i % 3 == k % 3:
                        continue
                    if k == 1:
                        update = FeeUpdate(fee_ppm=p.fee_ppm * 2 + 100, base_fee_msat=0)
                    elif k == 2:
                        update = FeeUpdate(inbound_fee_ppm=-50, cltv_delta=p.cltv_delta + 6 if i % 2 else None)
                    else:
                        update = FeeUpdate(fee_ppm=max(0, p.fee_ppm // 3), disabled=i % 7 == 0)
                    n.set_channel_policy(ch.channel_id, update)
                    hasher.add("policy", str(ch.channel_id), elapsed)

    return on_tick


def run(scenario: Scenario, graph=None) -> dict:
    """Run ``scenario`` and return its digest and a few counters (for a readable mismatch)."""
    node = build(scenario.settings, clock=ManualClock(SIM_START), graph=graph)
    hasher = _Hasher()
    node.payment_observers.append(hasher)
    ticks = []
    if scenario.fee_changes:
        ticks.append(_fee_changes(node, hasher, scenario.seconds))
    rebalancer = AutoRecoveryRebalancer() if scenario.rebalancer else None
    if rebalancer is not None:
        ticks.append(rebalancer)

    def on_tick(n, batch) -> None:
        hasher.add("tick", n.clock.now(), len(batch))
        for f in ticks:
            f(n, batch)

    node.run(scenario.seconds, on_tick=on_tick)
    for e in node.events:
        hasher.add("event", tuple(getattr(e, f.name) for f in dataclasses.fields(e)))
    for g in node.ground_truths():
        hasher.add("truth", dataclasses.astuple(g))
    hasher.add("balances", node.network.bal)
    st = node.stats
    hasher.add("stats", [(f.name, getattr(st, f.name)) for f in dataclasses.fields(st)])
    hasher.add("policies", sorted((e, dataclasses.astuple(p)) for e, p in node.network.policy.items()))
    if rebalancer is not None:
        hasher.add("rebalances", [dataclasses.astuple(a) for a in rebalancer.actions])
    return {
        "digest": hasher.h.hexdigest(),
        "payments": st.payments,
        "attempts": st.attempts,
        "settled": st.settled,
        "our_forwards": len(node.events),
        "revenue_msat": st.revenue_msat,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help="also the long scenarios (the make demo day)")
    parser.add_argument("--only", help="run only the scenario of this name")
    parser.add_argument("--write", action="store_true", help=f"record the digests into {DIGESTS.name}")
    args = parser.parse_args()
    recorded = json.loads(DIGESTS.read_text()) if DIGESTS.exists() else {}
    mainnet = load_mainnet()
    bad = 0
    for sc in SCENARIOS:
        if (sc.long and not args.long) or (args.only and sc.name != args.only):
            continue
        got = run(sc, mainnet if sc.settings.network == "mainnet" else None)
        want = recorded.get(sc.name)
        verdict = "new" if want is None else ("same" if want == got else "DIFFERENT")
        bad += verdict == "DIFFERENT"
        print(f"{sc.name}: {verdict} {json.dumps(got)}", flush=True)
        if args.write:
            recorded[sc.name] = got
    if args.write:
        DIGESTS.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()
