"""Model versions in the store: atomic swap, gated promotion, restore, online updates."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from lnlens_core.errors import ModelError
from lnlens_core.model.inference import OnnxModel
from lnlens_core.model.learning import Dataset, OnlineSession, export_onnx, time_split
from lnlens_core.model.registry import Gate, ModelRegistry, paired_test
from lnlens_core.storage import Store

from .conftest import tiny_model


@pytest.fixture
def registry(tmp_path, monkeypatch):
    # Without an active model the shipped default serves; these tests compare against their own models only.
    monkeypatch.setattr("lnlens_core.model.registry.default_model_path", lambda: None)
    store = Store(None)
    yield ModelRegistry(store, tmp_path / "models")
    store.close()


def test_use_and_restore_previous(registry, tiny):
    a = registry.register(tiny[1], name="m", version="a", metrics={}, now=1.0)
    b = registry.register(tiny[1], name="m", version="b", metrics={}, now=1.0)
    c = registry.register(tiny[1], name="m", version="c", metrics={}, now=1.0)
    assert registry.active() is None
    for model_id in (c, b, a):  # same clock time for all: the order still counts
        registry.use(model_id, now=5.0)
    assert registry.active()["id"] == a
    assert registry.restore_previous(now=6.0)["id"] == b
    assert [r["id"] for r in registry.list() if r["active"]] == [b]  # exactly one active
    assert OnnxModel.load(registry.active()["path"]).version == "t"


def test_without_any_model_loading_fails_with_model_error(registry):
    with pytest.raises(ModelError, match="no active model"):
        registry.load_active()


def test_restore_without_history_and_unknown_id(registry, tiny):
    with pytest.raises(ModelError, match="no previously active"):
        registry.restore_previous(now=1.0)
    with pytest.raises(ModelError, match="no model with id 42"):
        registry.use(42, now=1.0)


def test_a_model_that_does_not_match_the_schema_is_never_stored(registry, tiny):
    import onnx

    model = onnx.load_from_string(tiny[1])
    for entry in model.metadata_props:
        if entry.key == "feature_version":
            entry.value = "0"
    with pytest.raises(ModelError):
        registry.register(model.SerializeToString(), name="m", version="x", metrics={}, now=1.0)
    assert registry.list() == [] and not list(registry.dir.glob("*.onnx"))


def test_candidate_replaces_current_only_when_it_wins_on_held_out_window(registry, sim_data):
    older, recent = time_split(sim_data)
    good = tiny_model(older, version="good")[1]
    rng = np.random.default_rng(0)
    scrambled = Dataset(older.x, rng.permutation(older.y), older.current, older.curves, older.groups, older.times)
    bad = tiny_model(scrambled, version="bad")[1]
    assert len(set(recent.times)) == 4
    gate = Gate(min_holdout_times=4)  # the fixture's held-out window has 4 sample times
    first = registry.consider(good, recent, name="m", version="1", metrics={}, now=1.0, gate=gate)
    assert first.promoted and first.current_mae is None
    worse = registry.consider(bad, recent, name="m", version="2", metrics={}, now=2.0, gate=gate)
    assert not worse.promoted and worse.candidate_mae > worse.current_mae
    assert registry.active()["id"] == first.candidate_id
    again = registry.consider(good, recent, name="m", version="3", metrics={}, now=3.0, gate=gate)
    assert not again.promoted and "standard error" in again.reason  # equal is not better
    few = registry.consider(good, recent.select(np.arange(len(recent)) < 3), name="m", version="4", metrics={},
                            now=4.0, gate=gate)  # fmt: skip
    assert not few.promoted and "fewer than" in few.reason
    # the default gate wants 6 distinct held-out sample times, and enough training
    thin = registry.consider(bad, recent, name="m", version="5", metrics={}, now=5.0)
    assert not thin.promoted and thin.reason == "held-out window has 4 distinct sample times, fewer than 6"
    for training, why in (((15, 1), "trained on 15 samples, fewer than 200"),
                          ((900, 1), "trained on 1 distinct sample times, fewer than 12")):  # fmt: skip
        d = registry.consider(good, recent, name="m", version="6", metrics={}, now=6.0, training=training, gate=gate)
        assert not d.promoted and d.reason == why
    assert registry.refusal(worse.candidate_id).startswith("held-out MAE")
    assert registry.refusal(first.candidate_id) is None


def test_promotion_needs_a_margin_the_clustered_noise_justifies():
    rng = np.random.default_rng(3)
    times = np.repeat(np.arange(12), 40)  # 12 sample times of 40 channels each
    shared = rng.normal(0, 0.05, 12)[times]  # what a moment does to every channel's error at once
    cur = np.abs(rng.normal(0.2, 0.05, len(times)))
    clusters = [float(t) for t in times]
    tiny_gain = paired_test(cur - 0.004 + shared, cur, clusters)  # 0.19 vs 0.20 style: within the noise
    naive_se = float(np.std(cur - 0.004 + shared - cur) / np.sqrt(len(times)))
    assert tiny_gain["se"] > 3 * naive_se, "samples of one moment are not independent"
    assert not tiny_gain["diff"] < -Gate().z * tiny_gain["se"]
    real_gain = paired_test(cur - 0.06 + shared, cur, clusters)
    assert real_gain["diff"] < -Gate().z * real_gain["se"] and real_gain["clusters"] == 12


def test_a_pin_holds_the_operators_choice_until_unpinned(registry, sim_data):
    older, recent = time_split(sim_data)
    gate = Gate(min_holdout_times=4)
    rng = np.random.default_rng(0)
    scrambled = Dataset(older.x, rng.permutation(older.y), older.current, older.curves, older.groups, older.times)
    bad = registry.register(tiny_model(scrambled, version="bad")[1], name="m", version="bad", metrics={}, now=1.0)
    registry.use(bad, now=1.0)
    registry.pin(bad, now=1.0)
    good = tiny_model(older, version="good")[1]
    held = registry.consider(good, recent, name="m", version="2", metrics={}, now=2.0, gate=gate)
    assert not held.promoted and "pinned model" in held.reason and "would have passed" in held.reason
    assert registry.active()["id"] == bad
    assert registry.unpin() == {"model": bad, "time": 1.0} and registry.pinned() is None
    assert registry.consider(good, recent, name="m", version="3", metrics={}, now=3.0, gate=gate).promoted


def test_online_session_learns_each_matured_sample_once(sim_db, sim_data):
    store = Store(sim_db)
    try:
        session = OnlineSession()
        first = session.step(store)
        assert first > 0 and session.learner.seen == first
        assert session.step(store) == 0  # nothing new matured
        payload = export_onnx(session.learner.pipeline, name="online", version="1", trained_at=0.0, metrics={})
        model = OnnxModel.load(payload)
        x = sim_data.x
        assert np.nanmax(np.abs(model.predict(x) - session.learner.predict(x))) < 1e-5
    finally:
        store.close()


def test_prediction_history_is_kept_and_prunable():
    store = Store(None)
    try:
        store.save_predictions([("1x1x0", 0.1, 0.2), ("2x1x0", None, None)], time=10.0, model="m-1")
        store.save_predictions([("1x1x0", 0.1, 0.3)], time=1_000.0, model="m-2")
        assert [r["model"] for r in store.predictions()] == ["m-1", "m-1", "m-2"]
        assert store.prune("predictions", 500.0) == 2
        assert [(r["time"], r["predicted_ratio"]) for r in store.predictions()] == [(1_000.0, 0.3)]
    finally:
        store.close()


def test_online_trainer_offers_candidates_on_schedule(sim_db, tmp_path, monkeypatch):
    import shutil

    from lnlens_core.model.learning import OnlineTrainer

    monkeypatch.setattr("lnlens_core.model.registry.default_model_path", lambda: None)
    db = tmp_path / "node.sqlite3"
    shutil.copy(sim_db, db)  # the session database stays without model versions
    store = Store(db)
    try:
        registry = ModelRegistry(store, tmp_path / "models")
        # the fixture's node has a few hours of history: a gate sized for it
        gate = Gate(min_train_samples=100, min_train_times=4, min_holdout_times=4)
        trainer = OnlineTrainer(registry, every_s=3_600, holdout_s=4 * 3_600, max_times=100, gate=gate)
        now = store.latest_data_time()
        first = trainer.tick(now)
        assert first.decision is not None and first.decision.promoted  # nothing served before it
        assert first.learned == first.seen > 0 and first.holdout > 0 and first.waiting is None
        assert first.built == first.learned + first.holdout  # every matured sample: learned or held out
        again = trainer.tick(now + 60)
        assert again.decision is None and again.built == 0 and "no new sample" in again.waiting
        assert [r["name"] for r in registry.list()] == ["online"]
        row = registry.active()
        decision = row["metrics"]["decision"]
        assert (decision["promoted"], decision["reason"], decision["holdout_samples"]) == (True, "no model in use",
                                                                                           first.holdout)  # fmt: skip
        assert decision["training"] == {"samples": first.seen, "times": len(trainer.train_times)}
        model = OnnxModel.load(row["path"])
        assert model.metadata["model_kind"] == "SGDRegressor"
        assert model.json_meta("feature_stats")["rows"] == first.seen  # for the drift indicators
    finally:
        store.close()


def test_online_trainer_warm_start_catches_up_a_few_sample_times_per_tick(sim_db, tmp_path, monkeypatch):
    import shutil

    from lnlens_core.model.learning import OnlineTrainer

    monkeypatch.setattr("lnlens_core.model.registry.default_model_path", lambda: None)
    db = tmp_path / "node.sqlite3"
    shutil.copy(sim_db, db)
    store = Store(db)
    try:
        trainer = OnlineTrainer(ModelRegistry(store, tmp_path / "models"), holdout_s=4 * 3_600, max_times=3)
        now = store.latest_data_time()
        ticks = [trainer.tick(now + i) for i in range(10)]
    finally:
        store.close()
    catching = [t for t in ticks if t.waiting and "catching up" in t.waiting]
    assert len(catching) >= 3 and all(t.decision is None for t in catching)
    offered = [t for t in ticks if t.decision is not None]
    assert len(offered) == 1 and offered[0].seen == sum(t.learned for t in ticks[: ticks.index(offered[0]) + 1])


def test_prune_forgets_old_inactive_models_and_their_files_only(registry, tiny, tmp_path):
    old = registry.register(tiny[1], name="m", version="old", metrics={}, now=1.0)
    serving = registry.register(tiny[1], name="m", version="serving", metrics={}, now=2.0)
    registry.use(serving, now=3.0)
    recent = registry.register(tiny[1], name="m", version="recent", metrics={}, now=500.0)
    # A row whose file lies outside the registry's directory (say, copied in by hand) keeps its file.
    outside = tmp_path / "mine.onnx"
    outside.write_bytes(tiny[1])
    registry.store.add_model_run(time=4.0, name="m", version="outside", path=str(outside), metrics={})
    paths = {r["id"]: r["path"] for r in registry.list()}
    assert registry.prune(100.0) == (2, 1)  # the old one and the outside row; only the old one's file
    assert {r["id"] for r in registry.list()} == {serving, recent}
    assert not (tmp_path / "models" / "m-old.onnx").exists() and outside.exists()
    assert all(Path(paths[i]).exists() for i in (serving, recent)) and old not in {r["id"] for r in registry.list()}


def test_the_serving_model_is_loaded_once_while_its_file_and_the_choice_stay_the_same(registry, tiny):
    """A daemon asks every interval; a session (and for batches the lookup tables) is not rebuilt each time."""
    a = registry.register(tiny[1], name="m", version="a", metrics={}, now=1.0)
    b = registry.register(tiny[1], name="m", version="b", metrics={}, now=1.0)
    registry.use(a, now=2.0)
    first = registry.load_active()
    assert registry.load_active() is first
    registry.use(b, now=3.0)
    second = registry.load_active()
    assert second is not first and registry.load_active() is second
    path = Path(registry.active()["path"])
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))  # the file replaced
    assert registry.load_active() is not second
