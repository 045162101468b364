"""One pass of the differential suite: every config of the corpus on every node state, through charge-lnd,
lnlens's LND backend and lnlens's simulator backend (see harness.py for what is compared)."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lnlens_core.config import LensConfig
from lnlens_core.domain import Channel
from lnlens_core.errors import ConfigError
from lnlens_core.fees.api import plan_or_apply
from lnlens_core.fees.chargelnd import load_policy_file
from lnlens_core.fees.engine import FeeEngine
from lnlens_core.fees.rails import rails_from_table
from lnlens_core.lens import Lens
from lnlens_core.opportunities.monitor import HtlcMonitor
from lnlens_core.plugins import get_plugin_manager
from lnlens_core.storage import Store

from .harness import ClChannel, chargelnd_outcome, collect, lnlens_outcome, policy_fields, run_chargelnd
from .states import MARGIN_S, SPECS, StateSpec, build_state, simulate

CORPUS = Path(__file__).with_name("corpus")
CONFIGS = tuple(sorted(CORPUS.glob("*.conf")))
PATHS = ("lnd", "sim")
STRICT = "sim-strict"
"""The simulator path with the files loaded with ``compat = strict`` (charge-lnd's quirks 2, 4 and 5)."""


@dataclass
class Decision:
    """One channel under one config in one state: each tool's outcome and what it said."""

    state: str
    config: str
    channel: Channel
    charge_lnd: dict[str, Any]
    charge_lnd_info: ClChannel
    charge_lnd_exit: str
    current: dict[str, Any] = field(default_factory=dict)
    """The channel's policy before either tool ran."""
    facts: dict[str, Any] = field(default_factory=dict)
    """What the node state holds about the channel: ``in_graph``, ``peer_policy_known``, ``batch_outputs``
    (channels its funding transaction opened; 0 when the peer paid), ``age_blocks``."""
    lnlens: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per path (``lnd``, ``sim``): the outcome after the rails (what ``policy plan`` would send)."""
    proposed: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per path: the outcome before the rails."""
    rows: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    """Per path: lnlens's error when it refused the whole config."""

    @property
    def key(self) -> str:
        return f"{self.state}/{self.config}/{self.channel.channel_id}"


def _plans(backend, clock, folder: Path, *, strict: bool = False) -> dict[str, dict[str, Any] | str]:
    """lnlens's plan of every config (or why it refused it), as ``lnlens policy plan --json`` makes it
    (``strict``: the file loaded with ``compat = strict``, through the engine's own constructor)."""
    folder.mkdir(parents=True, exist_ok=True)
    store = Store(None)
    lens = Lens(LensConfig(data_dir=folder, db_path=folder / "lnlens.sqlite3"), store=store, clock=clock,
                pm=get_plugin_manager(load_entrypoints=False), backend=backend)  # fmt: skip
    HtlcMonitor(store, clock, lens.emit).backfill(backend)
    out: dict[str, dict[str, Any] | str] = {}
    for config in CONFIGS:
        try:
            if strict:
                policies = load_policy_file(config, lens.strategies, compat="strict")
                engine = FeeEngine(lens, backend, policies=policies, rails=rails_from_table(None))
                out[config.stem] = engine.plan(emit=False).to_json()
            else:
                out[config.stem] = plan_or_apply(lens, backend, apply=False, policy_path=config)["plan"]
        except ConfigError as exc:
            out[config.stem] = str(exc)
    store.close()
    return out


def run_state(base, spec: StateSpec, folder: Path) -> list[Decision]:
    from lnlens_lnd.backend import LndBackend
    from lnlens_lnd.rpc import OPTIONAL_METHODS
    from lnlens_testing.lnd import FakeLnd, minimal_ops

    name = f"seed{spec.seed}" + ("-young" if spec.young else "") + ("-fee-floor" if spec.fee_floor else "")
    node = build_state(base, spec)
    started = node.clock.now()
    fake = FakeLnd(node, folder / name, frozen=True)
    fake.publish(list(node.events))
    fake.start()
    try:
        jobs = [(c.stem, c) for c in CONFIGS]
        proc = run_chargelnd(fake, jobs, CORPUS)
        with _cwd(CORPUS):
            macaroon = fake.write_macaroon("lnlens.macaroon", minimal_ops("read", optional=OPTIONAL_METHODS))
            backend = LndBackend.connect(fake.settings(macaroon, mode="read"), clock=node.clock)
            try:
                plans = {"lnd": _plans(backend, node.clock, folder / name / "lnd")}
            finally:
                backend.close()
            plans["sim"] = _plans(node, node.clock, folder / name / "sim")
            plans[STRICT] = _plans(node, node.clock, folder / name / "strict", strict=True)
        runs = collect(proc, fake, jobs)
        late = time.time() - started
        assert late < MARGIN_S, f"charge-lnd ran {late:.0f} s after the state's now: activity windows may differ"
        # The policy each channel really has, also where the node's graph lacks it (its own_policy): the
        # outcomes start from it, whatever each tool could read.
        channels = [replace(c, local_policy=node.own_policy(c.channel_id)) for c in node.list_channels()]
        points = {c.channel_id: fake.chan_point(c.channel_id) for c in channels}
        facts = {c.channel_id: _facts(node, c) for c in channels}
    finally:
        fake.stop()
    out = []
    for tag, run in runs.items():
        for ch in channels:
            cid = str(ch.channel_id)
            d = Decision(name, tag, ch, chargelnd_outcome(ch, points[ch.channel_id], run.writes),
                         run.channels.get(cid, ClChannel()), run.exit, policy_fields(ch.local_policy),
                         facts[ch.channel_id])  # fmt: skip
            for path in (*PATHS, STRICT):
                plan = plans[path][tag]
                if isinstance(plan, str):
                    d.refused[path], row = plan, None
                else:
                    row = next(r for r in plan["channels"] if r["short_channel_id"] == cid)
                d.rows[path] = row
                d.lnlens[path] = lnlens_outcome(ch, row)
                d.proposed[path] = lnlens_outcome(ch, row, proposed=True)
            out.append(d)
    return out


def _facts(node, channel: Channel) -> dict[str, Any]:
    tx = node.chain.funding_tx(channel.channel_id)
    return {
        "in_graph": node.in_graph(channel.channel_id),
        "peer_policy_known": node.get_peer_policy(channel.channel_id) is not None,
        "batch_outputs": len(tx.outputs) if tx is not None else 0,
        "age_blocks": node.get_info().block_height - channel.channel_id.block,
    }


def run_all(folder: Path) -> list[Decision]:
    base = simulate()
    decisions: list[Decision] = []
    for spec in SPECS:
        decisions += run_state(base, spec, folder)
    return decisions


@contextlib.contextmanager
def _cwd(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)
