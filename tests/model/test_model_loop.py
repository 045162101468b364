"""A daemon's model interval in-process: learn, decide, record, predict, suggest, measure drift, publish."""

from __future__ import annotations

import logging
import shutil

import pytest

from lnlens_core import hookimpl
from lnlens_core.clock import ManualClock
from lnlens_core.config import LensConfig
from lnlens_core.events import ModelCandidateDecided, ModelDriftMeasured, ModelSuggested
from lnlens_core.lens import Lens
from lnlens_core.model.loop import ModelLoop
from lnlens_core.model.registry import Gate, ModelRegistry
from lnlens_core.plugins import get_plugin_manager
from lnlens_core.storage import Store
from lnlens_core.web.messages import from_events

# the fixture's node learns from 150 samples at 10 sample times before its first candidate: a gate sized for it
SMALL_GATE = Gate(min_train_samples=100, min_train_times=10)


class Collect:
    """A track_event plugin keeping every batch (what the web stream observer receives)."""

    def __init__(self) -> None:
        self.events: list = []

    @hookimpl
    def track_event(self, events) -> None:
        self.events.extend(events)


@pytest.fixture
def node_lens(grown, tmp_path):
    """A Lens on a copy of the grown store, its clock a minute after the newest data, with a collector."""
    db = tmp_path / "node.sqlite3"
    shutil.copy(grown[0], db)
    store = Store(db)
    clock = ManualClock(store.latest_data_time() + 60)
    lens = Lens(LensConfig(data_dir=tmp_path, db_path=db), store=store, clock=clock,
                pm=get_plugin_manager(load_entrypoints=False))  # fmt: skip
    collect = Collect()
    lens.pm.register(collect, name="collect")
    yield lens, collect
    store.close()


def test_a_run_learns_records_the_decision_and_publishes_it(node_lens, tmp_path, monkeypatch):
    monkeypatch.setattr("lnlens_core.model.registry.default_model_path", lambda: None)
    lens, collect = node_lens
    registry = ModelRegistry(lens.store, tmp_path / "models")
    loop = ModelLoop(lens, registry, max_times=100, budget_s=None, gate=SMALL_GATE)
    status = loop.run()
    online = status["online_learning"]
    assert online["enabled"] and online["reason"] is None
    decided = [e for e in collect.events if isinstance(e, ModelCandidateDecided)]
    assert len(decided) == 1 and decided[0].promoted and decided[0].reason == "no model in use"
    row = registry.active()
    assert row["id"] == decided[0].model_id and row["metrics"]["decision"]["promoted"] is True
    assert online["last_decision"]["model_id"] == row["id"] and online["last_tick"]["learned"] > 0
    # The promoted model serves at once: predictions stored, suggestions and drift published.
    assert status["last_run"]["model"] == f"{row['name']}-{row['version']}"
    assert status["last_run"]["predictions"] == len(lens.store.latest_channels()[1])
    assert {r["model"] for r in lens.store.predictions()} == {status["last_run"]["model"]}
    suggested = [e for e in collect.events if isinstance(e, ModelSuggested)]
    assert len(suggested) == 1 and len(suggested[0].suggestions) == status["last_run"]["suggestions"]
    # Kept for readers between runs (web): its predictions and suggestions, not the day of forwards (issue 16).
    assert len(loop.view.channels) == status["last_run"]["predictions"] and loop.view.recent == []
    assert tuple(loop.view.suggestions) == suggested[0].suggestions
    drift = [e for e in collect.events if isinstance(e, ModelDriftMeasured)]
    assert len(drift) == 1 and drift[0].summary == status["drift"]
    # Trained with feature statistics: the input drift has numbers (the window is its own held-out day).
    assert status["drift"]["inputs"]["status"] in ("stable", "moderate", "shifted")
    assert status["drift"]["error"]["live_mae"] is not None
    serving = status["last_run"]["model"]
    stored = lens.store.latest_drift()
    assert set(stored) == {serving} and stored[serving]["time"] == lens.clock.now()
    # The stream carries them: a decision and a drift `model` message, one `suggestion` per suggestion.
    kinds = [(kind, data.get("kind")) for kind, _, data in from_events(collect.events)]
    assert ("model", "decision") in kinds and ("model", "drift") in kinds
    assert kinds.count(("suggestion", None)) == len(suggested[0].suggestions)


def test_an_unchanged_window_is_not_stored_again(node_lens, tmp_path, monkeypatch):
    monkeypatch.setattr("lnlens_core.model.registry.default_model_path", lambda: None)
    lens, _ = node_lens
    loop = ModelLoop(lens, ModelRegistry(lens.store, tmp_path / "models"), max_times=100, budget_s=None,
                     gate=SMALL_GATE)  # fmt: skip
    loop.run()
    lens.clock.advance(600)
    second = loop.run()
    assert second["online_learning"]["last_tick"]["built"] == 0
    assert lens.store.db.execute("SELECT count(*) FROM model_drift").fetchone()[0] == 1


def test_without_the_train_extra_it_says_why_once_and_goes_on(node_lens, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr("lnlens_core.model.loop.find_spec", lambda module: None)  # not installed
    lens, collect = node_lens
    with caplog.at_level(logging.WARNING, logger="lnlens_core.model.loop"):
        loop = ModelLoop(lens, ModelRegistry(lens.store, tmp_path / "models"), max_times=100, budget_s=None)
        first = loop.run()
        lens.clock.advance(600)
        loop.run()
    warnings = [r.getMessage() for r in caplog.records if "online learning is off" in r.getMessage()]
    assert len(warnings) == 1 and "pip install 'lnlens[train]'" in warnings[0]
    online = first["online_learning"]
    assert not online["enabled"] and "lnlens[train]" in online["reason"] and online["last_decision"] is None
    assert not any(isinstance(e, ModelCandidateDecided) for e in collect.events)
    assert lens.store.model_runs() == []
    # The rest goes on: the shipped model predicts and suggests, its drift is measured on the matured window.
    assert first["last_run"]["predictions"] > 0 and first["last_run"]["model"].startswith("liquidity-default")
    assert first["drift"]["error"]["live_mae"] is not None
    # The shipped model carries its training statistics; this small synthetic network is not mainnet-like.
    inputs = first["drift"]["inputs"]
    assert inputs["status"] in ("stable", "moderate", "shifted") and inputs["max_psi"] is not None, inputs


def test_model_messages_on_the_stream_have_their_documented_fields():
    from lnlens_core.domain import ChannelId, Recommendation, RecommendationKind

    rec = Recommendation(RecommendationKind.REBALANCE_OUTBOUND, ChannelId(1, 2, 3), "needs outbound",
                         source_channel=ChannelId(4, 5, 6), target_channel=ChannelId(1, 2, 3), amount_msat=5_000,
                         evidence={"max_fee_msat": 7}, origin="liquidity-model")  # fmt: skip
    out = from_events([ModelCandidateDecided(5.0, 3, "online", "1-1", False, "held-out MAE worse", 0.2, 0.1, 40),
                       ModelSuggested(6.0, "online-1-1", (rec,))])  # fmt: skip
    assert out[0] == ("model", 5.0, {"kind": "decision", "model_id": 3, "name": "online", "version": "1-1",
                                     "promoted": False, "reason": "held-out MAE worse", "candidate_mae": 0.2,
                                     "current_mae": 0.1, "holdout_samples": 40})  # fmt: skip
    kind, when, data = out[1]
    assert (kind, when, data["id"], data["status"], data["model_version"]) == ("suggestion", 6.0, None, "open",
                                                                               "online-1-1")  # fmt: skip
    assert data["source_channel"] == "4x5x6" and data["amount_msat"] == 5_000 and data["max_fee_msat"] == 7


_DAEMON = """
import json, shutil, sys
from pathlib import Path
from lnlens_core.clock import ManualClock
from lnlens_core.config import LensConfig
from lnlens_core.lens import Lens
from lnlens_core.model import registry as model_registry
from lnlens_core.model.loop import ModelLoop
from lnlens_core.model.registry import Gate, ModelRegistry
from lnlens_core.plugins import get_plugin_manager
from lnlens_core.storage import Store

model_registry.default_model_path = lambda: None
tmp = Path(sys.argv[2])
store = Store(sys.argv[1])
lens = Lens(LensConfig(data_dir=tmp, db_path=Path(sys.argv[1])), store=store,
            clock=ManualClock(store.latest_data_time() + 60), pm=get_plugin_manager(load_entrypoints=False))
loop = ModelLoop(lens, ModelRegistry(store, tmp / "models"), max_times=100, budget_s=None,
                 gate=Gate(min_train_samples=100, min_train_times=10))
status = loop.run()
print(json.dumps({"decision": status["online_learning"]["last_decision"], "model": status["last_run"]["model"],
                  "modules": sorted(m for m in ("sklearn", "skl2onnx", "onnx") if m in sys.modules)}))
"""


def test_the_daemon_never_imports_scikit_learn_its_training_runs_in_a_child(grown, tmp_path):
    """A fresh process (as the plugin or the sidecar is) learns, offers and serves a candidate, and has
    imported none of the train extra's packages: they live only in the short-lived training child."""
    import json
    import subprocess
    import sys

    db = tmp_path / "node.sqlite3"
    shutil.copy(grown[0], db)
    done = subprocess.run([sys.executable, "-c", _DAEMON, str(db), str(tmp_path)], capture_output=True, text=True,
                          check=True)  # fmt: skip
    out = json.loads(done.stdout)
    assert out["decision"]["promoted"] and out["model"] == out["decision"]["model"]
    assert out["modules"] == []


@pytest.mark.parametrize("child, message", [
    ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "exit status -9"),
    ("import time; time.sleep(60)", "ran past 2 s"),
])  # fmt: skip
def test_a_failed_or_killed_training_child_is_logged_and_the_daemon_goes_on(node_lens, tmp_path, monkeypatch, caplog,
                                                                           child, message):  # fmt: skip
    import os
    import sys

    pid_file = tmp_path / "child.pid"
    script = f"import os; open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n{child}"
    monkeypatch.setattr("lnlens_core.model.learning.child._command", lambda: [sys.executable, "-c", script])
    lens, collect = node_lens
    loop = ModelLoop(lens, ModelRegistry(lens.store, tmp_path / "models"), max_times=100, budget_s=None,
                     gate=SMALL_GATE)  # fmt: skip
    loop.trainer.learner.timeout_s = 2.0
    with caplog.at_level(logging.WARNING, logger="lnlens_core.model.loop"):
        status = loop.run()
    failed = [r.getMessage() for r in caplog.records if "online learning failed" in r.getMessage()]
    assert len(failed) == 1 and message in failed[0] and message in status["online_learning"]["last_tick"]["error"]
    assert lens.store.model_runs() == [] and status["online_learning"]["last_decision"] is None
    assert loop.trainer.learner.seen == 0 and loop.trainer.learner.pending == []  # that step's batches forgotten
    # The rest of the interval went on with the shipped model.
    assert status["last_run"]["model"].startswith("liquidity-default") and status["last_run"]["predictions"] > 0
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):  # the child is gone and reaped, not a zombie
        os.kill(pid, 0)


def test_prepare_opens_the_model_and_its_tables_only_for_a_batch_that_uses_them(tmp_path, monkeypatch):
    """A daemon opens the model at start (issue 16: the tables' transient ~60 MB then comes before its history,
    not on top of it); the lookup tables only when the newest snapshot holds enough channels for a batch to use
    them, and nothing is raised when no model can serve."""
    from lnlens_core.model.inference import OnnxModel
    from lnlens_core.testing import make_channel

    pytest.importorskip("onnxruntime")
    opened: list[int] = []
    real = OnnxModel.tables_session
    monkeypatch.setattr(OnnxModel, "tables_session", lambda self: opened.append(self.tables_from) or real(self))
    store = Store(tmp_path / "db.sqlite3")
    lens = Lens(LensConfig(data_dir=tmp_path, db_path=tmp_path / "db.sqlite3"), store=store, clock=ManualClock(),
                pm=get_plugin_manager(load_entrypoints=False))  # fmt: skip
    registry = ModelRegistry(store, tmp_path / "models")
    loop = ModelLoop(lens, registry)
    loop.prepare()  # no snapshot yet: the model only
    served = registry.load_active()
    assert served.tables_graph is not None and served.tables_from > 1, "the premise: the shipped model has tables"
    assert opened == [] and served is registry.load_active()
    store.add_snapshots([make_channel(f"800000x{i}x0") for i in range(served.tables_from - 1)], time=1.0)
    loop.prepare()
    assert opened == []
    store.add_snapshots([make_channel(f"800000x{i}x0") for i in range(served.tables_from)], time=2.0)
    loop.prepare()
    assert opened == [served.tables_from] and served.tables_session() is not None
    monkeypatch.setattr("lnlens_core.model.registry.default_model_path", lambda: None)
    ModelLoop(lens, ModelRegistry(store, tmp_path / "none")).prepare()  # no model to serve: said by run, later
    broken = ModelLoop(lens, ModelRegistry(store, tmp_path / "none"))
    monkeypatch.setattr(broken.registry, "load_active", lambda: (_ for _ in ()).throw(OSError("disk")))
    broken.prepare()  # nor anything else: the daemon starts, and its runs report it
    store.close()


def test_the_lnd_sidecar_opens_the_model_before_it_rebuilds_the_history(tmp_path, monkeypatch):
    """Issue 16: first one heap for every thread (lnlens_core.memory), then the model, then the history."""
    from types import SimpleNamespace

    import lnlens_lnd.sidecar as sidecar_module
    from lnlens_lnd.sidecar import Sidecar

    from lnlens_core.opportunities.monitor import HtlcMonitor

    order: list[str] = []
    monkeypatch.setattr(sidecar_module, "share_one_heap", lambda: order.append("one heap"))
    monkeypatch.setattr(ModelLoop, "prepare", lambda self: order.append("model"))
    monkeypatch.setattr(HtlcMonitor, "load_history", lambda self: order.append("history"))
    store = Store(tmp_path / "db.sqlite3")
    lens = Lens(LensConfig(data_dir=tmp_path, db_path=tmp_path / "db.sqlite3"), store=store, clock=ManualClock(),
                pm=get_plugin_manager(load_entrypoints=False))  # fmt: skip
    sidecar = Sidecar(lens, backend=None, clock=lens.clock, models=ModelRegistry(store, tmp_path / "models"))  # type: ignore[arg-type]
    sidecar.feed = SimpleNamespace(run=lambda: order.append("feed"), stats=None)  # type: ignore[assignment]
    sidecar.run()
    assert order == ["one heap", "model", "history", "feed"]
    store.close()
