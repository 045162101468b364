from lnlens_core.domain import ChannelId
from lnlens_core.opportunities.alerts import AlertKind, AlertParams, find_alerts
from lnlens_core.opportunities.flows import Flow, FlowStats
from lnlens_core.testing import make_channel

A, B, C = (ChannelId.parse(s) for s in ("800000x1x0", "800001x1x0", "800002x1x0"))
WEEK = 7 * 86_400


def stats(out=None, inbound=None, observed=WEEK):
    return FlowStats(0.0, float(WEEK), observed, out or {}, inbound or {}, {})


def test_each_alert_fires_on_its_condition_and_not_beside_it():
    channels = [
        make_channel(A, local_ratio=0.01),  # depleted
        make_channel(B, local_ratio=0.5),  # stuck (no forwards in a week)
        make_channel(C, local_ratio=0.5),  # spiking
    ]
    hour = stats({C: Flow(attempts=9, failed_fee=9)})
    day = stats({A: Flow(attempts=2, failed_liquidity=2), C: Flow(attempts=30, settled=21, failed_fee=9)})
    week = stats({A: Flow(attempts=2, settled=2), C: Flow(attempts=40, settled=31)})
    alerts = find_alerts(hour, day, week, channels, AlertParams())
    assert [(a.kind, a.channel_id) for a in alerts] == [
        (AlertKind.DEPLETED, A), (AlertKind.STUCK, B), (AlertKind.FAILURE_SPIKE, C),
    ]  # fmt: skip
    # a week not fully observed is no evidence of a stuck channel; a spike needs the minimum count
    quiet = find_alerts(stats(), stats(), stats(observed=WEEK / 2), channels[1:], AlertParams(spike_min_failures=10))
    assert quiet == []


def test_every_analysis_stores_its_alerts(lens):
    from lnlens_core.domain import FailureReason, ForwardStatus, HtlcEvent
    from lnlens_core.opportunities.run import run_analysis

    now = lens.clock.now()
    channels = [make_channel(A, local_ratio=0.9), make_channel(B, local_ratio=0.01)]
    lens.store.ingest_forwards(
        [HtlcEvent(A, 1_001_100, ForwardStatus.LOCAL_FAILED, now - 100 - i, in_htlc_id=i, out_channel=B,
                   out_msat=1_000_000, failure_reason=FailureReason.INSUFFICIENT_BALANCE) for i in range(3)],
        source="live",
    )  # fmt: skip
    run_analysis(lens, since_s=86_400, channels=channels)
    (stored,) = lens.store.alerts()
    assert (stored["kind"], stored["channel_id"], stored["run_time"]) == ("depleted", str(B), now)
    assert stored["evidence"]["failed_liquidity_24h"] == 3
