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


def test_a_lens_is_what_the_hooks_promise_and_the_docs_say_so(lens):
    """A Lens satisfies HookLens, whose members are exactly the ``lens.<name>`` docs/hooks.md gives plugins."""
    assert isinstance(lens, hookspecs.HookLens)
    members = {name for name in vars(hookspecs.HookLens) if not name.startswith("_")}
    assert members == {"clock", "store", "backend", "plugin_config"}
    intro = DOCS.read_text().split("\n## ", 1)[0]
    assert set(re.findall(r"`lens\.(\w+)", intro)) == members
    assert lens.plugin_config("nobody") == {}


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


def _starved_store(lens):
    """A channel that failed 12 forwards for liquidity, and one with local balance to spare."""
    from lnlens_core.domain import ChannelId, FailureReason, ForwardStatus, HtlcEvent

    a, b = ChannelId.parse("800000x1x0"), ChannelId.parse("800001x1x0")
    channels = [make_channel(a, local_ratio=0.9), make_channel(b, local_ratio=0.02)]
    now = lens.clock.now()
    events = [
        HtlcEvent(a, 1_001_100, ForwardStatus.LOCAL_FAILED, now - 100 - i, in_htlc_id=i, out_channel=b,
                  out_msat=1_000_000, resolved_time=now - 99 - i, failure_reason=FailureReason.INSUFFICIENT_BALANCE)
        for i in range(12)
    ]  # fmt: skip
    lens.store.ingest_forwards(events, source="live")
    return channels, b


def test_hook_check_recommendation(lens, register_plugin):
    from lnlens_core.opportunities.run import run_analysis

    channels, starved = _starved_store(lens)

    class NoRebalance:
        @hookimpl
        def check_recommendation(self, recommendation, opportunity):
            assert opportunity.channel_id == recommendation.channel_id
            return "rebalances are off" if recommendation.kind == "rebalance_outbound" else None

    before = run_analysis(lens, since_s=3600, channels=channels, save=False)
    assert [r.kind for r in before.opportunities[0].recommendations] == ["rebalance_outbound"]
    register_plugin(NoRebalance(), name="no_rebalance")
    after = run_analysis(lens, since_s=3600, channels=channels, save=False)
    assert after.opportunities[0].recommendations == ()
    assert [(p, reason) for p, _, reason in after.vetoed] == [("no_rebalance", "rebalances are off")]


def test_hook_add_recommendations(lens, register_plugin):
    from lnlens_core.domain import Recommendation, RecommendationKind
    from lnlens_core.opportunities.run import run_analysis

    channels, starved = _starved_store(lens)

    class Adder:
        @hookimpl
        def add_recommendations(self, opportunity):
            return [Recommendation(RecommendationKind.INVESTIGATE, opportunity.channel_id, "look at the peer")]

    class VetoInvestigate:
        @hookimpl
        def check_recommendation(self, recommendation):
            return "no" if recommendation.reason == "look at the peer" and recommendation.origin != "adder" else None

    register_plugin(Adder(), name="adder")
    register_plugin(VetoInvestigate(), name="veto")
    (opp,) = run_analysis(lens, since_s=3600, channels=channels, save=False).opportunities
    added = [r for r in opp.recommendations if r.kind == "investigate"]
    assert len(added) == 1 and added[0].origin == "adder", "origin is the plugin's name, and vetoes see it"
