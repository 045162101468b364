from lnlens_core.alerts import AlertKind, AlertParams, find_alerts
from lnlens_core.domain import ChannelId
from lnlens_core.flows import Flow, FlowStats
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
