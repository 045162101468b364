"""Fixtures for the liquidity model's tests: a small simulated node's store, tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest

from lnlens_core.clock import ManualClock
from lnlens_core.config import LensConfig
from lnlens_core.domain import FeeUpdate
from lnlens_core.lens import Lens
from lnlens_core.model.learning import Dataset, SampleStream, build_pipeline, export_onnx, fit
from lnlens_core.plugins import get_plugin_manager
from lnlens_core.storage import Store

pytest.importorskip("sklearn")
pytest.importorskip("onnxruntime")


def simulate_into(store: Store, *, seed: int, hours: int, nodes: int = 60) -> None:
    """A small synthetic simulation recorded into ``store`` as a node would: forwards and hourly snapshots."""
    from lnlens_sim.scenario import SimSettings, build

    node = build(SimSettings(network="synthetic", nodes=nodes, seed=seed, payments_per_hour=1500))
    clock = node.clock
    lens = Lens(
        LensConfig(data_dir=Path("."), db_path=Path(":memory:")),
        store=store,
        clock=clock,
        pm=get_plugin_manager(load_entrypoints=False),
    )
    node.attach(lens.monitor)
    for _ in range(hours):
        store.add_snapshots(node.list_channels(), time=clock.now())
        node.run(3_600)
    store.add_snapshots(node.list_channels(), time=clock.now())
    store.set_meta("clock", "simulated")


@pytest.fixture(scope="session")
def sim_db(tmp_path_factory) -> Path:
    """A database file holding 20 simulated hours of a small synthetic node."""
    path = tmp_path_factory.mktemp("sim") / "lnlens.sqlite3"
    store = Store(path)
    simulate_into(store, seed=3, hours=20)
    store.close()
    return path


@pytest.fixture(scope="session")
def sim_data(sim_db) -> Dataset:
    from lnlens_core.model.learning import dataset_from_store

    store = Store(sim_db)
    try:
        return dataset_from_store(store)
    finally:
        store.close()


def tiny_model(data: Dataset, *, kind: str = "gbr", version: str = "t") -> tuple[object, bytes]:
    pipe = build_pipeline(kind, seed=0)
    if kind == "gbr":
        pipe.set_params(gradientboostingregressor__n_estimators=20)
    fit(pipe, data)
    payload = export_onnx(pipe, name="tiny", version=version, trained_at=0.0, metrics={"model": {"mae": 0.0}})
    return pipe, payload


@pytest.fixture(scope="session")
def tiny(sim_data):
    return tiny_model(sim_data)


@pytest.fixture
def manual_clock_at():
    return ManualClock(1_770_076_800.0)


GROWN_HOURS = 40
SNAPSHOT_S = 1_200  # three snapshots an hour: the hourly sample chain must pick among them


def _record(store: Store, node, seconds: float, step: int) -> None:
    """Run the node ``seconds`` more, a snapshot every SNAPSHOT_S, and change our fees now and then (as an
    operator would) so that the policy history has changes before and inside every window."""
    for i in range(int(seconds // SNAPSHOT_S)):
        k = step + i
        channels = node.list_channels()
        if k % 7 == 3:  # a fee change on one channel, a different one each time
            ch = channels[k % len(channels)]
            node.set_channel_policy(ch.channel_id, FeeUpdate(fee_ppm=ch.local_policy.fee_ppm + 37 * (k % 5 + 1)))
        store.add_snapshots(node.list_channels(), time=node.clock.now())
        node.run(SNAPSHOT_S)


@pytest.fixture(scope="session")
def grown(tmp_path_factory):
    """40 simulated hours stored hour by hour while a SampleStream (6 h window) advanced after every hour.

    :returns: (database path, every sample the stream built, the stream).
    """
    from lnlens_sim.scenario import SimSettings, build

    path = tmp_path_factory.mktemp("grown") / "node.sqlite3"
    store = Store(path)
    node = build(SimSettings(network="synthetic", nodes=40, seed=5, payments_per_hour=400))
    lens = Lens(LensConfig(data_dir=Path("."), db_path=Path(":memory:")), store=store, clock=node.clock,
                pm=get_plugin_manager(load_entrypoints=False))  # fmt: skip
    node.attach(lens.monitor)
    stream = SampleStream(window_s=6 * 3_600, lookback_s=1e9)
    built = []
    for hour in range(GROWN_HOURS):
        _record(store, node, 3_600, hour * 3)
        while len(new := stream.advance(store, limit=2)):
            built.append(new)
    store.add_snapshots(node.list_channels(), time=node.clock.now())
    built.append(stream.advance(store, limit=100))
    store.close()
    return path, Dataset.concat(built), stream
