"""Safety rails: no output ever leaves them, whatever a strategy (ours or a plugin's) proposes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lnlens_core.domain import ChannelPolicy, FeeUpdate
from lnlens_core.errors import ConfigError
from lnlens_core.fees.rails import Bounds, ChannelHistory, Rails, apply_rails, history_from_journal, rails_from_table
from lnlens_core.testing import make_channel

NOW = 1_800_000_000.0
fees = st.integers(min_value=-20_000, max_value=20_000)
maybe = lambda s: st.one_of(st.none(), s)  # noqa: E731


@st.composite
def bounds(draw):
    values = {}
    for name in ("fee_ppm", "base_fee_msat", "inbound_fee_ppm", "inbound_base_fee_msat"):
        lo, hi = draw(maybe(fees)), draw(maybe(fees))
        if lo is not None and hi is not None and lo > hi:
            lo, hi = hi, lo
        values[f"min_{name}"], values[f"max_{name}"] = lo, hi
    return Bounds(**values)


def _inside(value, lo, hi):
    return (lo is None or value >= lo) and (hi is None or value <= hi)


@settings(max_examples=150, deadline=None)
@given(
    old=st.builds(ChannelPolicy, base_fee_msat=fees, fee_ppm=fees, inbound_base_fee_msat=fees, inbound_fee_ppm=fees),
    update=st.builds(FeeUpdate, base_fee_msat=maybe(fees), fee_ppm=maybe(fees), inbound_base_fee_msat=maybe(fees),
                     inbound_fee_ppm=maybe(fees)),
    global_bounds=bounds(),
    channel_bounds=bounds(),
    step_ppm=st.integers(0, 500),
    share=st.floats(0, 1),
    step_base=st.integers(0, 5000),
    min_change=st.integers(0, 50),
    min_outbound=maybe(st.integers(0, 5000)),
    last_change=maybe(st.floats(0, 48 * 3600)),
    direction=st.sampled_from([-1, 0, 1]),
)  # fmt: skip
def test_no_output_ever_leaves_the_rails(
    old, update, global_bounds, channel_bounds, step_ppm, share, step_base, min_change, min_outbound, last_change,
    direction,
):  # fmt: skip
    channel = make_channel("800000x1x0")
    channel = type(channel)(**{**{f: getattr(channel, f) for f in channel.__slots__}, "local_policy": old})
    rails = Rails(bounds=global_bounds, channel_bounds={channel.channel_id: channel_bounds}, max_step_ppm=step_ppm,
                  max_step_share=share, max_step_base_msat=step_base, min_change_ppm=min_change,
                  cooldown_s=3600)  # fmt: skip
    history = ChannelHistory(None if last_change is None else NOW - last_change, direction)
    result = apply_rails(channel, update, rails, history, now=NOW, min_outbound_ppm=min_outbound)
    if last_change is not None and last_change < 3600 and not update.is_empty():
        assert result.update is None and "cooldown" in result.blocked
        return
    if result.update is None:
        return
    bounds_now = global_bounds.tighter(channel_bounds)
    if min_outbound is not None:
        bounds_now = bounds_now.tighter(Bounds(min_inbound_fee_ppm=-min_outbound))
    new = result.update.apply_to(old)
    for name, value in result.update.fields_set().items():
        lo, hi = bounds_now.limits(name)
        consistent = lo is None or hi is None or lo <= hi
        if consistent:
            assert _inside(value, lo, hi), (name, value, lo, hi)
        current = getattr(old, name)
        if consistent and _inside(current, lo, hi):
            limit = step_base if name.endswith("_msat") else max(step_ppm, int(share * abs(current)))
            assert abs(value - current) <= limit, (name, current, value, limit)
        assert value == getattr(new, name)
    assert set(result.update.fields_set()) <= set(update.fields_set()), "rails never invent a field"


def test_unmanaged_channels_are_never_touched():
    channel = make_channel("800000x1x0", peer_id="03" + "aa" * 32)
    for key in ("800000x1x0", "800000:1:0", "03" + "aa" * 32):
        rails = rails_from_table({"unmanaged": [key]})
        result = apply_rails(channel, FeeUpdate(fee_ppm=500), rails, ChannelHistory(), now=NOW)
        assert result.update is None and "unmanaged" in result.blocked


def test_cooldown_changes_per_day_and_rollback_cooldown():
    channel = make_channel(fee_ppm=100)
    rails = Rails(cooldown_s=3600, max_changes_per_day=2, rollback_cooldown_s=86_400)
    up = FeeUpdate(fee_ppm=120)
    assert apply_rails(channel, up, rails, ChannelHistory(NOW - 3599, 1), now=NOW).blocked.startswith("cooldown")
    assert apply_rails(channel, up, rails, ChannelHistory(NOW - 3601, 1), now=NOW).update == up
    assert "24 h" in apply_rails(channel, up, rails, ChannelHistory(NOW - 7200, 1, 2), now=NOW).blocked
    blocked = apply_rails(channel, up, rails, ChannelHistory(NOW - 7200, 1, 1, NOW - 7200), now=NOW).blocked
    assert "automatic rollback" in blocked


def test_hysteresis_drops_small_changes_and_flapping():
    channel = make_channel(fee_ppm=100)
    rails = Rails(min_change_ppm=5, cooldown_s=0, flap_window_s=86_400, max_changes_per_day=10)
    small = apply_rails(channel, FeeUpdate(fee_ppm=103), rails, ChannelHistory(), now=NOW)
    assert small.update is None and "min_change_ppm" in small.applied[0]
    went_up = ChannelHistory(NOW - 3600, 1)
    flap = apply_rails(channel, FeeUpdate(fee_ppm=80), rails, went_up, now=NOW)
    assert flap.update is None and "reverses" in flap.applied[0]
    assert apply_rails(channel, FeeUpdate(fee_ppm=120), rails, went_up, now=NOW).update == FeeUpdate(fee_ppm=120)
    later = ChannelHistory(NOW - 90_000, 1)
    assert apply_rails(channel, FeeUpdate(fee_ppm=80), rails, later, now=NOW).update == FeeUpdate(fee_ppm=80)


def test_inbound_discount_never_exceeds_cheapest_outbound():
    channel = make_channel(fee_ppm=100)
    rails = Rails(max_step_ppm=10_000, cooldown_s=0)
    result = apply_rails(channel, FeeUpdate(inbound_fee_ppm=-300), rails, ChannelHistory(), now=NOW,
                         min_outbound_ppm=40)  # fmt: skip
    assert result.update == FeeUpdate(inbound_fee_ppm=-40)
    assert any("clamped" in note for note in result.applied)


def test_rails_from_table_checks_everything():
    rails = rails_from_table({"max_fee_ppm": 900, "cooldown": "2h", "channels": {"800000x1x0": {"min_fee_ppm": 50}},
                              "auto_rollback": True, "rollback_window": "1d"})  # fmt: skip
    assert rails.bounds.max_fee_ppm == 900 and rails.cooldown_s == 7200 and rails.auto_rollback
    assert rails.bounds_for(make_channel("800000x1x0").channel_id).min_fee_ppm == 50
    assert rails.rollback_window_s == 86_400
    with pytest.raises(ConfigError) as info:
        rails_from_table({"max_fee": 1, "max_step_share": 3, "min_fee_ppm": 10, "max_fee_ppm": 5,
                          "channels": {"nope": {}, "800000x1x0": {"fee": 1}}})  # fmt: skip
    text = "\n".join(info.value.problems)
    assert "policy.max_fee: unknown setting (accepted:" in text and "max_step_share" in text
    assert "min_fee_ppm 10 is above max_fee_ppm 5" in text
    assert "policy.channels: not a channel id" in text and "unknown keys fee" in text


def test_history_from_journal_reads_direction_count_and_auto_rollbacks():
    def row(i, t, old, new, state="verified", rollback_of=None, detail=None):
        return {"id": i, "state": state, "applied_time": t, "planned_time": t, "rollback_of": rollback_of,
                "detail": detail, "old_policy": f'{{"fee_ppm": {old}}}',
                "new_policy": f'{{"fee_ppm": {new}}}'}  # fmt: skip

    rows = [row(1, NOW - 200_000, 100, 150), row(2, NOW - 5000, 150, 120, state="rolled_back"),
            row(3, NOW - 1000, 120, 150, rollback_of=2, detail="auto: revenue fell")]  # fmt: skip
    history = history_from_journal(rows, now=NOW)
    assert history.last_change_time == NOW - 1000 and history.last_fee_direction == 1
    assert history.changes_last_day == 2 and history.rolled_back_time == NOW - 1000
    assert history_from_journal([row(4, NOW, 1, 1, state="failed")], now=NOW) == ChannelHistory()


def test_policy_table_in_the_settings_file(tmp_path):
    from lnlens_core.config import load

    path = tmp_path / "lnlens.toml"
    path.write_text('[policy]\nfile = "/etc/policy.ini"\nmax_fee_ppm = 900\n')
    config = load(config_path=path, env={})
    assert str(config.policy_path) == "/etc/policy.ini"
    assert rails_from_table(config.backends["policy"]).bounds.max_fee_ppm == 900
    path.write_text('policy = "/etc/other.ini"\n')
    config = load(config_path=path, env={})
    assert str(config.policy_path) == "/etc/other.ini" and "policy" not in config.backends
