"""D.7: the apply-step diff as a pure function, with charge-lnd 0.3.1's quirks fixed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lnlens_core.backend import Capability
from lnlens_core.domain import ChannelPolicy, FeeUpdate
from lnlens_core.fees.chargelnd import DesiredPolicy, diff_policy
from lnlens_core.testing import ALL_CAPABILITIES

CURRENT = ChannelPolicy(
    base_fee_msat=1000, fee_ppm=100, inbound_base_fee_msat=0, inbound_fee_ppm=-100, min_htlc_msat=1000,
    max_htlc_msat=500_000_000, cltv_delta=80,
)  # fmt: skip


def diff(desired, capabilities=ALL_CAPABILITIES, **kwargs):
    return diff_policy(CURRENT, desired, capabilities, **kwargs)


def test_nothing_defined_nothing_sent():
    assert diff(DesiredPolicy()) == (None, [])


def test_ppm_moves_only_by_at_least_the_delta():
    assert diff(DesiredPolicy(fee_ppm=109, min_fee_ppm_delta=10))[0] is None
    assert diff(DesiredPolicy(fee_ppm=110, min_fee_ppm_delta=10))[0] == FeeUpdate(fee_ppm=110)
    assert diff(DesiredPolicy(fee_ppm=90, min_fee_ppm_delta=10))[0] == FeeUpdate(fee_ppm=90)


def test_sub_delta_ppm_is_not_sent_with_another_change():
    """Fixed quirk 5: charge-lnd 0.3.1 would send fee_ppm=105 along with the base fee."""
    update, notes = diff(DesiredPolicy(base_fee_msat=0, fee_ppm=105, min_fee_ppm_delta=10))
    assert update == FeeUpdate(base_fee_msat=0)
    assert notes == ["fee_ppm 100 -> 105 kept: below min_fee_ppm_delta=10"]


def test_inbound_level_uses_the_new_outbound_ppm_only_when_it_changes():
    # ppm changes to 300: inbound = min(0, 250 - 300) = -50
    assert diff(DesiredPolicy(fee_ppm=300, inbound_level_ppm=250))[0] == FeeUpdate(fee_ppm=300, inbound_fee_ppm=-50)
    # ppm 105 is below the delta, so the current 100 counts: min(0, 50 - 100) = -50
    update, _ = diff(DesiredPolicy(fee_ppm=105, inbound_level_ppm=50, min_fee_ppm_delta=10))
    assert update == FeeUpdate(inbound_fee_ppm=-50)


def test_inbound_delta_rules():
    # -100 -> -105 is below a delta of 10: kept ...
    update, notes = diff(DesiredPolicy(inbound_fee_ppm=-105, min_fee_ppm_delta=10))
    assert update is None and "below min_inbound_fee_ppm_delta=10" in notes[0]
    # ... unless the inbound base changes too, or the new value is 0
    assert diff(DesiredPolicy(inbound_fee_ppm=-105, inbound_base_fee_msat=-1, min_fee_ppm_delta=10))[0] == FeeUpdate(
        inbound_base_fee_msat=-1, inbound_fee_ppm=-105
    )
    assert diff(DesiredPolicy(inbound_fee_ppm=0, min_inbound_fee_ppm_delta=500))[0] == FeeUpdate(inbound_fee_ppm=0)
    # its own delta overrides min_fee_ppm_delta
    assert diff(DesiredPolicy(inbound_fee_ppm=-105, min_fee_ppm_delta=10, min_inbound_fee_ppm_delta=5))[0] == FeeUpdate(
        inbound_fee_ppm=-105
    )


def test_inbound_needs_the_capability():
    update, notes = diff(DesiredPolicy(fee_ppm=200, inbound_fee_ppm=-5), frozenset({Capability.HTLC_LIMITS}))
    assert update == FeeUpdate(fee_ppm=200) and notes == ["inbound fees not applied: this backend cannot set them"]


def test_positive_inbound_needs_its_own_capability():
    caps = ALL_CAPABILITIES - {Capability.POSITIVE_INBOUND_FEES}
    update, notes = diff(DesiredPolicy(inbound_fee_ppm=20), caps)
    assert update is None and "does not accept positive inbound fees" in notes[0]
    assert diff(DesiredPolicy(inbound_fee_ppm=20))[0] == FeeUpdate(inbound_fee_ppm=20)


def test_htlc_limits_floor_cap_and_no_limit():
    assert diff(DesiredPolicy(min_htlc_msat=1), min_htlc_floor_msat=500)[0] == FeeUpdate(min_htlc_msat=500)
    assert diff(DesiredPolicy(max_htlc_msat=900_000_000), max_htlc_cap_msat=600_000_000)[0] == FeeUpdate(
        max_htlc_msat=600_000_000
    )
    no_limit = ChannelPolicy(base_fee_msat=0, fee_ppm=0, max_htlc_msat=None)
    assert diff_policy(no_limit, DesiredPolicy(max_htlc_msat=5), ALL_CAPABILITIES)[0] == FeeUpdate(max_htlc_msat=5)


def test_status_changes_only_on_active_channels():
    assert diff(DesiredPolicy(disabled=True))[0] == FeeUpdate(disabled=True)
    update, notes = diff(DesiredPolicy(disabled=True), channel_active=False)
    assert update is None and notes == ["status kept: the channel is not active"]


POLICIES = st.builds(
    ChannelPolicy,
    base_fee_msat=st.integers(0, 10_000),
    fee_ppm=st.integers(0, 5000),
    inbound_base_fee_msat=st.integers(-1000, 0),
    inbound_fee_ppm=st.integers(-1000, 0),
    min_htlc_msat=st.integers(0, 10_000),
    max_htlc_msat=st.one_of(st.none(), st.integers(1, 10**9)),
    cltv_delta=st.integers(18, 2016),
    disabled=st.booleans(),
)
OPT = st.one_of(st.none(), st.integers(0, 5000))
DESIRED = st.builds(
    DesiredPolicy,
    base_fee_msat=OPT,
    fee_ppm=OPT,
    inbound_base_fee_msat=st.one_of(st.none(), st.integers(-1000, 0)),
    inbound_fee_ppm=st.one_of(st.none(), st.integers(-1000, 0)),
    inbound_level_ppm=OPT,
    min_htlc_msat=OPT,
    max_htlc_msat=st.one_of(st.none(), st.integers(1, 10**9)),
    cltv_delta=st.one_of(st.none(), st.integers(18, 2016)),
    disabled=st.one_of(st.none(), st.booleans()),
    min_fee_ppm_delta=st.integers(0, 50),
    min_inbound_fee_ppm_delta=st.one_of(st.none(), st.integers(0, 50)),
)


@given(POLICIES, DESIRED)
def test_applying_the_update_converges(current, desired):
    """After sending the update, the same desire yields no further update (no flapping, no resend loop)."""
    update, _ = diff_policy(current, desired, ALL_CAPABILITIES)
    if update is None:
        return
    assert update.changes(current) == {k: (getattr(current, k), v) for k, v in update.fields_set().items()}
    after = update.apply_to(current)
    again, _ = diff_policy(after, desired, ALL_CAPABILITIES)
    assert again is None


@given(POLICIES, DESIRED)
def test_only_defined_fields_change_and_ppm_respects_the_delta(current, desired):
    update, _ = diff_policy(current, desired, ALL_CAPABILITIES)
    fields = update.fields_set() if update else {}
    if "fee_ppm" in fields:
        assert abs(fields["fee_ppm"] - current.fee_ppm) >= desired.min_fee_ppm_delta
    for name in ("base_fee_msat", "min_htlc_msat", "max_htlc_msat", "cltv_delta", "disabled"):
        if getattr(desired, name) is None:
            assert name not in fields
    if desired.inbound_fee_ppm is None and desired.inbound_level_ppm is None:
        assert "inbound_fee_ppm" not in fields


def test_a_negative_outbound_fee_is_never_sent():
    """charge-lnd would hand it to lnd's uint32 field and crash; lnlens keeps the current fee with a note."""
    update, notes = diff(DesiredPolicy(fee_ppm=-5, base_fee_msat=-1, cltv_delta=40))
    assert update == FeeUpdate(cltv_delta=40)
    assert notes == [
        "base_fee_msat -1 not applied: an outbound fee cannot be negative",
        "fee_ppm -5 not applied: an outbound fee cannot be negative",
    ]
