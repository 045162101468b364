"""Shared fixtures: a fresh plugin manager, an in-memory store, a manual clock, a FakeNode."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from lnlens_core.clock import ManualClock
from lnlens_core.config import LensConfig
from lnlens_core.lens import Lens
from lnlens_core.plugins import get_plugin_manager
from lnlens_core.storage import Store
from lnlens_core.testing import FakeNode, make_channel

# Speed is measured by benchmarks, never asserted in tests: hypothesis's per-example deadline (200 ms) is a timing
# assertion that fails on a loaded 2-core CI machine, so it is off for every property test; examples stay bounded.
settings.register_profile("lnlens", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("lnlens")


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store(None)
    yield s
    s.close()


@pytest.fixture
def pm():
    """A plugin manager with the built-ins only (no entry points): tests register what they need."""
    return get_plugin_manager(load_entrypoints=False)


@pytest.fixture
def config(tmp_path) -> LensConfig:
    return LensConfig(data_dir=tmp_path, db_path=tmp_path / "lnlens.sqlite3")


@pytest.fixture
def lens(config, store, manual_clock, pm) -> Lens:
    return Lens(config, store=store, clock=manual_clock, pm=pm)


@pytest.fixture
def register_plugin(pm):
    """Register a plugin object for one test, then unregister it."""
    registered = []

    def register(plugin, name=None):
        pm.register(plugin, name=name)
        registered.append(plugin)
        return plugin

    yield register
    for plugin in registered:
        pm.unregister(plugin)


@pytest.fixture
def fake_node() -> FakeNode:
    return FakeNode([make_channel("800000x1x0"), make_channel("800001x2x1", local_ratio=0.1, fee_ppm=500)])
