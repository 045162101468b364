"""Fixtures for the liquidity model's tests: a small simulated node's store, tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest

from lnlens_core.clock import ManualClock
from lnlens_core.config import LensConfig
from lnlens_core.learning import Dataset, build_pipeline, export_onnx, fit
from lnlens_core.lens import Lens
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
    from lnlens_core.learning import dataset_from_store

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
