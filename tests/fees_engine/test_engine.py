"""Planning: selection (plugins first, then the policy file), rails after any strategy, vetoes; a plan is pure."""

from __future__ import annotations

import dataclasses

import pytest

from lnlens_core.domain import FeeUpdate
from lnlens_core.errors import ConfigError
from lnlens_core.events import FeeUpdatePlanned, FeeUpdateVetoed, StrategyFailed
from lnlens_core.fees.chargelnd import load_policy_file
from lnlens_core.fees.engine import FeeEngine
from lnlens_core.fees.plan import emit_commands
from lnlens_core.fees.rails import Bounds, Rails, rails_from_table
from lnlens_core.fees.strategy import FeeProposal, StrategyChoice
from lnlens_core.hookspecs import hookimpl
from lnlens_core.testing import FakeNode, make_channel

STATIC = "[default]\nstrategy = static\nfee_ppm = 120\nbase_fee_msat = 0\n"


def by_id(plan):
    return {str(c.channel_id): c for c in plan.changes}


def test_plan_is_pure_and_describes_every_channel(make_engine, node, lens):
    plan = make_engine(STATIC).plan()
    assert [c.method for c in node.calls if c.method == "set_channel_policy"] == []
    assert lens.store.journal() == []
    rows = by_id(plan)
    assert rows["800000x1x0"].changes == {"base_fee_msat": (1000, 0), "fee_ppm": (100, 120)}
    assert rows["800000x1x0"].policy == "default" and rows["800000x1x0"].strategy == "static"
    assert rows["800000x1x0"].alias == "alpha" and rows["800000x1x0"].chosen_by == "policy-file"
    data = plan.to_json()
    assert data["summary"] == {"change": 3}
    assert data["channels"][0]["changes"]["fee_ppm"] == {"old": 100, "new": 120}


def test_rails_clamp_the_policy_file(make_engine):
    rails = Rails(cooldown_s=0, max_step_ppm=10, max_step_share=0.0, charge_lnd_rails=True)
    row = by_id(make_engine("[default]\nstrategy = static\nfee_ppm = 900\n", rails).plan())["800000x1x0"]
    assert row.proposed == FeeUpdate(fee_ppm=900) and row.update == FeeUpdate(fee_ppm=110)
    assert "step limited" in row.rails[0]


def test_charge_lnd_strategies_decide_as_charge_lnd_unless_rails_are_asked_for(make_engine):
    """A charge-lnd file makes charge-lnd's updates on the first run; lnlens's own strategies keep the rails."""
    rails = Rails(cooldown_s=0, max_step_ppm=10, max_step_share=0.0, bounds=Bounds(max_fee_ppm=500),
                  unmanaged=frozenset({"800001x2x1"}))  # fmt: skip
    plan = make_engine("[default]\nstrategy = static\nfee_ppm = 900\ninbound_fee_ppm = -2000\n", rails).plan()
    row = by_id(plan)["800000x1x0"]
    assert row.update == row.proposed == FeeUpdate(fee_ppm=900, inbound_fee_ppm=-2000) and row.rails == ()
    assert by_id(plan)["800001x2x1"].blocked == "unmanaged channel: never touched"  # the operator's list holds
    assert any("charge_lnd_rails = true" in n for n in plan.notes)
    own = make_engine("[default]\nstrategy = balance_based\nfee_ppm = 900\n", rails).plan()
    assert all(abs(c.new.fee_ppm - c.old.fee_ppm) <= 10 for c in own.changes if c.update is not None)
    assert not any("charge_lnd_rails" in n for n in own.notes)


def test_a_plugin_selection_overrides_the_file_and_is_railed_and_vetoed(make_engine, register_plugin, lens):
    class Wild:
        name = "wild"

        def __init__(self, *, fee_ppm: int):
            self.fee_ppm = fee_ppm

        def propose(self, channel, ctx):
            return FeeProposal(FeeUpdate(fee_ppm=self.fee_ppm, base_fee_msat=-5), "third-party")

    class Chooser:
        @hookimpl
        def register_fee_strategies(self):
            return [Wild]

        @hookimpl
        def select_fee_strategy(self, channel):
            return (
                StrategyChoice("mine", "wild", {"fee_ppm": 1_000_000}) if channel.channel_id.block == 800000 else None
            )

    class Veto:
        @hookimpl
        def check_fee_update(self, update, channel):
            return "no base fee changes" if update.base_fee_msat is not None else None

    register_plugin(Chooser(), name="chooser")
    lens.__dict__.pop("strategies", None)
    engine = make_engine(STATIC, rails_from_table({"max_fee_ppm": 2000, "cooldown": 0, "max_step_share": 1.0}))
    register_plugin(Veto(), name="veto")
    rows = by_id(engine.plan())
    mine = rows["800000x1x0"]
    assert mine.chosen_by == "select_fee_strategy" and mine.policy == "mine" and mine.strategy == "wild"
    assert mine.update.fee_ppm == 200 and mine.update.base_fee_msat == 0, "rails clamp third-party output"
    assert mine.vetoes == (("veto", "no base fee changes"),) and mine.status == "vetoed" and not mine.will_apply
    assert rows["800001x2x1"].chosen_by == "policy-file"


def test_events_for_planned_vetoed_and_failed(make_engine, register_plugin):
    got = []

    class Observer:
        @hookimpl
        def track_event(self, events):
            got.extend(events)

    class Veto:
        @hookimpl
        def check_fee_update(self, channel):
            return "not this one" if channel.channel_id.block == 800001 else None

    register_plugin(Observer(), name="observer")
    register_plugin(Veto(), name="veto")
    text = "[gamma]\nnode.id = " + "03" + "cc" * 32 + "\nstrategy = match_peer\n" + STATIC
    make_engine(text).plan()
    kinds = {(type(e).__name__, str(e.channel_id)) for e in got}
    assert ("FeeUpdatePlanned", "800000x1x0") in kinds
    assert ("FeeUpdateVetoed", "800001x2x1") in kinds
    failed = [e for e in got if isinstance(e, StrategyFailed)]
    assert [str(e.channel_id) for e in failed] == ["800002x3x0"] and failed[0].strategy == "match_peer"
    assert all(not e.applying for e in got if isinstance(e, FeeUpdatePlanned))
    assert not [e for e in got if isinstance(e, FeeUpdateVetoed) and e.channel_id.block != 800001]


def test_failing_strategy_keeps_the_channel(make_engine, node):
    plan = make_engine("[default]\nstrategy = flow_based\n").plan()
    assert all(c.status in ("keep", "change") for c in plan.changes)
    row = by_id(make_engine("[default]\nstrategy = inbound_fee\n").plan())["800001x2x1"]
    assert row.changes == {"inbound_fee_ppm": (0, -50)}  # drained: FakeNode has inbound fees
    node.capabilities = frozenset()
    row = by_id(make_engine("[default]\nstrategy = inbound_fee\n").plan())["800000x1x0"]
    assert row.status == "error" and "not supported" in row.error and row.update is None


def test_unmanaged_and_explain(make_engine):
    engine = make_engine(STATIC, rails_from_table({"unmanaged": ["800001x2x1"], "cooldown": 0}))
    plan = engine.plan(explain=True)
    rows = by_id(plan)
    assert rows["800001x2x1"].status == "blocked" and rows["800001x2x1"].update is None
    assert any("policy: default" in line for line in rows["800000x1x0"].explain)
    one = engine.plan(only=rows["800000x1x0"].channel_id, explain=True)
    assert len(one.changes) == 1
    with pytest.raises(ConfigError, match="not one of this node's channels"):
        engine.plan(only=type(rows["800000x1x0"].channel_id).parse("1x1x1"))


def test_no_policy_and_no_plugin_is_a_config_error(make_engine):
    with pytest.raises(ConfigError, match="no policy file"):
        make_engine(None).plan()


def test_emit_commands(make_engine):
    plan = make_engine(STATIC).plan()
    lnd = emit_commands(plan, "lncli")
    assert any("lncli updatechanpolicy --base_fee_msat 0 --fee_rate_ppm 120 --time_lock_delta 80" in x for x in lnd)
    assert any(f"getchaninfo --chan_id {plan.changes[0].channel_id.to_int()}" in x for x in lnd)
    cln = emit_commands(plan, "lightning-cli")
    assert "lightning-cli setchannel id=800000x1x0 feebase=0 feeppm=120" in cln
    with pytest.raises(ValueError):
        emit_commands(plan, "bash")


def test_without_a_policy_file_channels_no_plugin_chooses_are_kept(make_engine, register_plugin, node):
    class OnlyOne:
        @hookimpl
        def select_fee_strategy(self, channel):
            return StrategyChoice("mine", "static", {"fee_ppm": 42}) if channel.channel_id.block == 800000 else None

    register_plugin(OnlyOne())
    plan = make_engine(None).plan()
    by_choice = {c.chosen_by for c in plan.changes}
    assert by_choice == {"select_fee_strategy", "none"}
    kept = [c for c in plan.changes if c.chosen_by == "none"]
    assert kept and all(c.update is None and "no policy file" in c.reason for c in kept)


def test_plugin_and_file_strategies_read_the_same_context(make_engine, register_plugin, lens):
    """Both selection paths build the strategy's context with chargelnd.fee_context."""
    seen: dict[str, object] = {}

    class Spy:
        name = "spy"

        def __init__(self, *, tag: str):
            self.tag = tag

        def propose(self, channel, ctx):
            seen[self.tag] = ctx
            return None

    class Chooser:
        choose = True

        @hookimpl
        def register_fee_strategies(self):
            return [Spy]

        @hookimpl
        def select_fee_strategy(self, channel):
            return StrategyChoice("mine", "spy", {"tag": "plugin"}) if self.choose else None

    chooser = register_plugin(Chooser(), name="chooser")
    lens.__dict__.pop("strategies", None)
    engine = make_engine("[default]\nstrategy = spy\ntag = file\n")
    one = engine.plan().changes[1].channel_id
    assert engine.plan(only=one).changes[0].chosen_by == "select_fee_strategy"
    chooser.choose = False
    assert engine.plan(only=one).changes[0].chosen_by == "policy-file"
    assert seen["plugin"] == seen["file"]
    assert seen["file"].peer_channels[0].channel_id == one and seen["file"].node.alias


SYNCED = "[synced]\nonchain.synced_to_chain = true\nstrategy = static\nfee_ppm = 7\n\n[default]\nstrategy = ignore\n"


@pytest.mark.parametrize(("synced_after_s", "matches"), [(60, True), (None, False)])
def test_synced_to_chain_waits_as_charge_lnd_does(make_engine, node, lens, caplog, synced_after_s, matches):
    """charge-lnd polls once a second for up to 5 minutes: a node that syncs a minute later still counts as synced."""
    start, asked = lens.clock.now(), []

    def synced_to_chain():
        asked.append(lens.clock.now() - start)
        return synced_after_s is not None and lens.clock.now() - start >= synced_after_s

    node.synced_to_chain = synced_to_chain
    with caplog.at_level("WARNING"):
        plan = make_engine(SYNCED).plan()
    assert (by_id(plan)["800000x1x0"].policy == "synced") is matches
    assert asked == [float(s) for s in range(0, (synced_after_s or 300) + 1)]  # once a second, on the clock
    waited = synced_after_s or 300
    assert any(f"waited {waited} s for the node to sync" in n for n in plan.notes)
    assert "not synced to the chain: asking again every second" in caplog.text
    assert "still not synced to the chain after 30 s of 300 s" in caplog.text


def test_emit_lncli_keeps_a_cltv_lnd_never_had_and_re_enables(lens, tmp_path):
    """A channel the data shows with cltv_delta 0 and disabled: lncli must not get --time_lock_delta 0, and a
    plan that re-enables it says so (updatechanstatus); an alias cannot end the comment line."""
    channel = make_channel("800000x1x0", fee_ppm=100, peer_alias="evil\nrm -rf ~")
    channel = dataclasses.replace(
        channel, local_policy=dataclasses.replace(channel.local_policy, cltv_delta=0, disabled=True)
    )
    path = tmp_path / "policy.ini"
    path.write_text(STATIC)
    engine = FeeEngine(lens, FakeNode([channel]), policies=load_policy_file(path, lens.strategies),
                       rails=Rails(cooldown_s=0))  # fmt: skip
    plan = engine.plan()
    assert plan.changes[0].changes["disabled"] == (True, False)
    lines = emit_commands(plan, "lncli")
    assert not any("--time_lock_delta 0" in x for x in lines)
    policy = next(x for x in lines if x.startswith("lncli updatechanpolicy"))
    assert "--time_lock_delta \"$(lncli getchaninfo --chan_id 879609302220865536 |" in policy
    assert any(x.startswith("lncli updatechanstatus --chan_point") and x.endswith("--action enable") for x in lines)
    assert all(x.startswith(("#", "lncli ")) for x in lines)


def test_with_auto_rollback_the_plan_says_which_changes_will_not_be_judged(make_engine, lens):
    from lnlens_core.domain import ChannelId, ForwardStatus, HtlcEvent

    now = lens.clock.now()
    busy, quiet = ChannelId.parse("800000x1x0"), ChannelId.parse("800001x2x1")
    settled = [HtlcEvent(quiet, 10_100 + i, ForwardStatus.SETTLED, now - 60 * (i + 1), out_channel=busy,
                         out_msat=10_000, fee_msat=100) for i in range(12)]  # fmt: skip
    lens.store.ingest_forwards(settled, source="test")
    rows = by_id(make_engine(STATIC, Rails(cooldown_s=0, auto_rollback=True)).plan())
    assert not [n for n in rows["800000x1x0"].notes if "will not judge" in n]
    (note,) = [n for n in rows["800001x2x1"].notes if "will not judge" in n]
    assert "0 settled forward(s) in the last 48 h, fewer than rollback_min_forwards (10)" in note
    off = by_id(make_engine(STATIC, Rails(cooldown_s=0)).plan())
    assert not [n for c in off.values() for n in c.notes if "will not judge" in n], "only with auto_rollback on"


@pytest.mark.parametrize("text", [STATIC, "[default]\nstrategy = balance_based\nfee_ppm = 900\n",
                                  "[default]\nstrategy = disable\n"])  # fmt: skip
def test_a_channel_whose_policy_the_node_cannot_tell_is_kept_and_says_why(make_engine, node, lens, text):
    """No plan from invented zeros: the row keeps the channel and names the reason; the others are planned."""
    from dataclasses import replace

    from lnlens_core.domain import ChannelId
    from lnlens_core.fees.engine import UNKNOWN_POLICY

    cid = ChannelId.parse("800001x2x1")
    node.channels[cid] = replace(node.channels[cid], local_policy=None)
    plan = make_engine(text).plan()
    row = by_id(plan)["800001x2x1"]
    assert (row.status, row.changes, row.update, row.reason) == ("keep", {}, None, UNKNOWN_POLICY)
    assert row.to_json()["changes"] == {} and row not in plan.to_apply()
    assert any(c.update is not None for c in plan.changes if c.channel_id != cid)
    assert by_id(make_engine(text, Rails(cooldown_s=0, charge_lnd_rails=True)).plan())["800001x2x1"].reason == (
        UNKNOWN_POLICY
    )
