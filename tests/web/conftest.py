"""A simulated node's database (monitor run over the synthetic network) and the API over it."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("starlette")
pytest.importorskip("lnlens_sim")

from lnlens_sim import build_backend  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from lnlens_core.clock import SystemClock  # noqa: E402
from lnlens_core.config import LensConfig  # noqa: E402
from lnlens_core.domain import ChannelPolicy  # noqa: E402
from lnlens_core.lens import Lens  # noqa: E402
from lnlens_core.opportunities.run import run_analysis  # noqa: E402
from lnlens_core.plugins import get_plugin_manager  # noqa: E402
from lnlens_core.storage import Store  # noqa: E402
from lnlens_core.web.app import create_app  # noqa: E402
from lnlens_core.web.auth import ensure_token  # noqa: E402
from lnlens_core.web.readers import Readers  # noqa: E402


def simulate(db, *, hours: int = 4, interval_h: int = 2):
    """A monitor run over the synthetic network, as `lnlens monitor` does it; returns the node."""
    node = build_backend({"network": "synthetic", "nodes": 150, "seed": 5, "payments_per_hour": 4000})
    store = Store(db)
    store.set_meta("clock", "simulated")
    config = LensConfig(data_dir=db.parent, db_path=db)
    lens = Lens(config, store=store, clock=node.clock, pm=get_plugin_manager(load_entrypoints=False), backend=node)
    lens.monitor.observe_channels(node.list_channels())
    node.attach(lens.monitor)
    for _ in range(hours // interval_h):
        node.run(interval_h * 3600)
        lens.monitor.observe_channels(node.list_channels())
        run_analysis(lens, since_s=86_400, from_monitor=True)
    store.close()
    return node


@pytest.fixture(scope="session")
def sim_db(tmp_path_factory):
    """A 4-hour monitor run, plus one applied fee change and a model prediction run."""
    db = tmp_path_factory.mktemp("websim") / "sim.sqlite3"
    simulate(db)
    store = Store(db)
    when, channels = store.latest_channels()
    first = channels[0]
    new = ChannelPolicy(**{**{f: getattr(first.local_policy, f) for f in first.local_policy.__slots__},
                           "fee_ppm": first.local_policy.fee_ppm + 100})  # fmt: skip
    jid = store.journal_plan(channel_id=first.channel_id, old_policy=first.local_policy, new_policy=new,
                             reason="test change", now=when - 3600, policy="p", strategy="static")  # fmt: skip
    store.journal_mark(jid, "applied", now=when - 3600)
    store.save_predictions([(str(c.channel_id), c.balance_ratio, 0.5) for c in channels], time=when, model="m-1")
    store.close()
    return db


@pytest.fixture
def db_copy(sim_db, tmp_path):
    path = tmp_path / "db.sqlite3"
    shutil.copy(sim_db, path)
    return path


@pytest.fixture
def web(db_copy, tmp_path):
    """(client, token, token_path, db path) for the API over a copy of the simulated database."""
    config = LensConfig(data_dir=tmp_path / "data", db_path=db_copy)
    token_path, token = ensure_token(config.data_dir)
    readers = Readers(config, SystemClock(), pm_factory=lambda: get_plugin_manager(load_entrypoints=False))
    app = create_app(readers, token=token)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client, token, token_path, db_copy
