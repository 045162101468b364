"""Every hook is documented (docs/hooks.md) and tested here (a test_hook_<name> each)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pluggy
import pytest

from lnlens_core import hookspecs
from lnlens_core.domain import FeeUpdate, NodeInfo
from lnlens_core.errors import PluginError
from lnlens_core.events import ForwardRecorded
from lnlens_core.fees.strategy import FeeProposal, StrategyChoice
from lnlens_core.hookspecs import hookimpl
from lnlens_core.plugins import get_plugin_manager
from lnlens_core.testing import make_channel

DOCS = Path(__file__).resolve().parents[2] / "docs" / "hooks.md"
NODE = NodeInfo("02" + "11" * 32, "me", "regtest", 800_000, "test", "fake")


def hook_names() -> list[str]:
    return sorted(name for name, fn in vars(hookspecs).items() if hasattr(fn, "lnlens_spec"))


def test_every_hook_is_documented_with_its_signature():
    headings = re.findall(r"^## (\w+)\((.*)\)$", DOCS.read_text(), re.MULTILINE)
    documented = dict(headings)
    for name in hook_names():
        params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert documented.get(name) == params, f"docs/hooks.md needs a heading '## {name}({params})'"
    assert sorted(documented) == hook_names()


def test_every_hook_has_a_test():
    tested = {name[len("test_hook_") :] for name in globals() if name.startswith("test_hook_")}
    assert tested == set(hook_names())


def test_hook_startup(lens, register_plugin):
    started = []

    class P:
        @hookimpl
        def startup(self, lens):
            started.append(lens)

    register_plugin(P())
    lens.startup()
    assert started == [lens]

    class Broken:
        @hookimpl
        def startup(self):
            raise RuntimeError("no database for me")

    register_plugin(Broken(), name="broken")
    with pytest.raises(PluginError, match="plugin broken: startup failed"):
        lens.startup()


class Flat:
    name = "flat"

    def __init__(self, *, fee_ppm: int = 1):
        self.fee_ppm = fee_ppm

    def propose(self, channel, ctx):
        return FeeProposal(FeeUpdate(fee_ppm=self.fee_ppm), "flat")


def test_hook_register_fee_strategies(lens, register_plugin):
    class P:
        @hookimpl
        def register_fee_strategies(self):
            return [Flat]

    register_plugin(P(), name="flatter")
    assert lens.strategies["flat"] is Flat
    assert {"ignore", "static"} <= set(lens.strategies)


def test_duplicate_strategy_names_name_both_plugins(lens, register_plugin):
    class A:
        @hookimpl
        def register_fee_strategies(self):
            return [Flat]

    register_plugin(A(), name="first")
    register_plugin(A(), name="second")
    with pytest.raises(PluginError, match="registered twice: by (first|second) and by (first|second)"):
        _ = lens.strategies


def test_a_non_strategy_is_refused_naming_the_plugin(lens, register_plugin):
    class Bad:
        @hookimpl
        def register_fee_strategies(self):
            return ["not a class"]

    register_plugin(Bad(), name="bad")
    with pytest.raises(PluginError, match="plugin bad"):
        _ = lens.strategies


def test_hook_select_fee_strategy(lens, register_plugin):
    channel = make_channel("800000x1x0")
    assert lens.select_strategy(channel, NODE) is None

    class Late:
        @hookimpl(trylast=True)
        def select_fee_strategy(self, channel):
            return StrategyChoice("late", "static", {"fee_ppm": 1})

    class Early:
        @hookimpl
        def select_fee_strategy(self, channel, node):
            return StrategyChoice("early", "flat") if channel.channel_id.block == 800000 else None

    register_plugin(Late())
    register_plugin(Early())
    assert lens.select_strategy(channel, NODE).policy == "early"
    assert lens.select_strategy(make_channel("800001x1x0"), NODE).policy == "late"


def test_hook_check_fee_update(lens, register_plugin):
    channel = make_channel()

    class Cap:
        @hookimpl
        def check_fee_update(self, update):
            return "too high" if (update.fee_ppm or 0) > 1000 else None

    class Crashing:
        @hookimpl
        def check_fee_update(self, update, channel):
            raise ValueError("boom")

    register_plugin(Cap(), name="cap")
    assert lens.vetoes(FeeUpdate(fee_ppm=500), channel) == []
    assert lens.vetoes(FeeUpdate(fee_ppm=5000), channel) == [("cap", "too high")]
    register_plugin(Crashing(), name="crashing")
    reasons = dict(lens.vetoes(FeeUpdate(fee_ppm=500), channel))
    assert "boom" in reasons["crashing"], "a safety check that cannot run must veto"


def test_hook_track_event(lens, register_plugin, caplog):
    from lnlens_core.domain import ChannelId, ForwardStatus, HtlcEvent

    got = []

    class Failing:
        @hookimpl
        def track_event(self, events):
            raise RuntimeError("observer bug")

    class Counting:
        @hookimpl
        def track_event(self, lens, events):
            got.extend(events)

    register_plugin(Counting(), name="counting")
    register_plugin(Failing(), name="failing")
    event = HtlcEvent(ChannelId(1, 2, 3), 1000, ForwardStatus.SETTLED, 1.0, in_htlc_id=1, fee_msat=1)
    lens.monitor.record(event)
    lens.monitor.flush()
    assert got == [ForwardRecorded(event, "live")]
    assert "plugin failing: track_event failed" in caplog.text


def test_misspelt_hook_implementation_fails_at_startup():
    class Typo:
        @hookimpl
        def check_fee_udpate(self, update):
            return None

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Typo(), name="typo")
    from lnlens_core.plugins import check

    with pytest.raises(PluginError, match="typo"):
        check(pm)


def test_misspelt_hook_in_an_entry_point_plugin_fails_get_plugin_manager(monkeypatch):
    class Typo:
        @hookimpl
        def strat_up(self):
            return None

    def fake_load(self, group, name=None):
        self.register(Typo(), name="typo_plugin")
        return 1

    monkeypatch.setattr(pluggy.PluginManager, "load_setuptools_entrypoints", fake_load)
    with pytest.raises(PluginError, match="typo_plugin"):
        get_plugin_manager()
