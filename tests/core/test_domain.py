import pytest
from hypothesis import given
from hypothesis import strategies as st

from lnlens_core.domain import ChannelId, ChannelPolicy, FeeUpdate, ForwardStatus, HtlcEvent


@given(st.integers(0, 2**24 - 1), st.integers(0, 2**24 - 1), st.integers(0, 2**16 - 1))
def test_channel_id_round_trips_through_every_form(block, tx, out):
    cid = ChannelId(block, tx, out)
    assert ChannelId.parse(str(cid)) == cid
    assert ChannelId.parse(cid.colon()) == cid
    assert ChannelId.parse(cid.to_int()) == cid
    assert ChannelId.parse(str(cid.to_int())) == cid


def test_channel_id_known_lnd_value():
    # 770000x1234x1 packed as LND does: block << 40 | tx << 16 | out
    assert ChannelId.parse("770000x1234x1").to_int() == (770000 << 40) | (1234 << 16) | 1
    assert str(ChannelId.from_int(846623953468391425)) == "770000x1234x1"


@pytest.mark.parametrize("bad", ["", "12x3", "axbxc", "1x2x70000", -1, 2**64, True])
def test_channel_id_rejects_garbage_naming_it(bad):
    with pytest.raises(ValueError):
        ChannelId.parse(bad)


def test_policy_fee_is_rounded_down_like_bolt7():
    policy = ChannelPolicy(base_fee_msat=1000, fee_ppm=1)
    assert policy.fee_msat(999_999) == 1000  # 0.999999 msat proportional part rounds down
    assert policy.fee_msat(1_000_000) == 1001


def test_fee_update_applies_only_set_fields():
    policy = ChannelPolicy(base_fee_msat=1000, fee_ppm=100, cltv_delta=40)
    update = FeeUpdate(fee_ppm=250)
    assert update.apply_to(policy) == ChannelPolicy(1000, 250, cltv_delta=40)
    assert update.changes(policy) == {"fee_ppm": (100, 250)}
    assert FeeUpdate.between(policy, update.apply_to(policy)) == update
    assert FeeUpdate(fee_ppm=100).changes(policy) == {}


def test_event_key_uses_htlc_id_and_survives_status_changes():
    cid = ChannelId.parse("800000x1x0")
    offered = HtlcEvent(cid, 10_000, ForwardStatus.OFFERED, 100.0, in_htlc_id=7)
    settled = HtlcEvent(cid, 10_000, ForwardStatus.SETTLED, 100.0, in_htlc_id=7, resolved_time=101.0)
    assert offered.key == settled.key == "800000x1x0/7"
    no_id = HtlcEvent(cid, 10_000, ForwardStatus.SETTLED, 100.0, out_channel=cid, out_msat=9_000)
    assert no_id.key.startswith("h:") and no_id.key != offered.key
