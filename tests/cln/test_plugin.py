"""The real ``lnlens-cln`` executable under a lightningd stand-in backed by the simulator.

Topology: a 30-node synthetic network (seed 3); "our node" is the simulator's managed
node with 14 channels. Two simulated hours of forwards sit in lightningd's history
before the plugin starts; more arrive live as ``forward_event`` notifications.
"""

from __future__ import annotations

from collections import Counter

import pytest
from lnlens_cln.methods import METHODS
from lnlens_testing.cln import PluginError
from lnlens_testing.cln.checks import assert_store_matches_simulator, stored_forwards, validate

from lnlens_core.config import SETTINGS
from lnlens_core.domain import FailureReason, ForwardStatus
from lnlens_core.opportunities.failures import classify_cln
from lnlens_core.opportunities.params import AnalyzerParams

HISTORY_S = 2 * 3600  # as in conftest.py


def test_manifest_declares_the_settings_table_and_the_method_table(running):
    standin = running
    manifest = standin.plugin.manifest
    options = {o["name"]: o for o in manifest["options"]}
    assert set(options) == {s.cln_option for s in SETTINGS}
    for s in SETTINGS:
        assert options[s.cln_option]["type"] == s.cln_type
        assert options[s.cln_option]["description"] == s.description
    assert options["lens-dry-run"]["default"] == "true" and options["lens-interval"]["default"] == "600"
    assert "default" not in options["lens-db"]  # computed at init: <lightning-dir>/lnlens.sqlite3
    methods = {m["name"]: m for m in manifest["rpcmethods"]}
    assert set(methods) == {m.name for m in METHODS}
    assert methods["lens-opportunities"]["usage"].startswith("[since] [min_urgency] [limit]")
    assert {"forward_event", "channel_opened", "channel_state_changed", "shutdown"} <= set(manifest["subscriptions"])
    assert manifest["dynamic"] is True and manifest["hooks"] == []
    assert not standin.plugin.violations


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"lens-interval": "soon"}, "lens-interval"),
        ({"lens-dry-run": "perhaps"}, "lens-dry-run"),
        ({"lens-policy": "/nonexistent/policy.conf"}, "lens-policy"),
        ({"lens-db": "/proc/lnlens/forbidden.sqlite3"}, "lens-db"),
    ],
)
def test_a_bad_option_disables_the_plugin_with_the_reason(make_standin, options, named):
    standin = make_standin(history_s=60)
    result = standin.start_plugin(options)
    assert set(result) == {"disable"} and named in result["disable"], result
    assert not standin.plugin.violations


def test_backfill_then_live_events_store_exactly_what_the_node_forwarded(standin):
    standin.start_plugin({"lens-interval": "1"})
    status = validate("lens-status", standin.wait_backfill())
    history = len(standin.node.events)
    assert status["backfill"]["forwards_read"] == history == status["db"]["forwards"]
    assert status["backfill"]["cursor"] == f"cln:c{history + 1}:u{standin.ledger.updated + 1}"
    assert_store_matches_simulator(standin)

    live = standin.advance_forwards(50, hold=4)  # four HTLCs still in flight: stored as offered
    standin.wait_for(standin.settled)
    offered = [k for k, (status, _, _) in stored_forwards(standin).items() if status == "offered"]
    assert sorted(offered) == sorted(standin.ledger.in_flight) and len(offered) == 4
    standin.resolve_held()
    standin.wait_for(lambda: len(stored_forwards(standin)) == len(standin.node.events) and not any(
        s == "offered" for s, _, _ in stored_forwards(standin).values()))  # fmt: skip
    stored = assert_store_matches_simulator(standin)
    sources = Counter(source for _, _, source in stored.values())
    assert sources == {"backfill": history, "live": len(live)}
    status = validate("lens-status", standin.plugin.call("lens-status"))
    # `recorded` counts forwards new to the store or newly resolved: each live forward once when stored, and once
    # more when it was first stored as offered and then resolved. The held ones surely were; for the others it
    # depends on whether their `offered` and resolving notifications reached the worker in one batch (load).
    assert history + len(live) + 4 <= status["events"]["recorded"] <= history + 2 * len(live)
    assert not standin.plugin.violations


def test_opportunities_name_the_channel_that_fails_for_liquidity(running):
    standin = running
    since = int(HISTORY_S) + 3600
    result = validate("lens-opportunities", standin.plugin.cli("lens-opportunities", str(since)))
    assert result["window_s"] == since and result["backfill_done"] is True
    # As lightningd reports them: by failcode (4103 also covers the simulator's above-htlcmax refusals).
    liquidity = Counter(
        str(e.out_channel) for e in standin.node.events
        if classify_cln(e.status, e.failcode, e.failreason) is FailureReason.INSUFFICIENT_BALANCE
    )  # fmt: skip
    worst, failures = liquidity.most_common(1)[0]
    assert failures >= 3
    top = {o["short_channel_id"]: o for o in result["opportunities"]}[worst]
    assert top["cause"] == "liquidity" and top["failed_liquidity"] == failures
    # Which answer is right depends on where the simulated day left the channel (the stand-in's traffic
    # follows the wall clock), so the test applies the analyzer's rule to what the node reports.
    ch = {str(c.channel_id): c for c in standin.node.list_channels()}[worst]
    params = AnalyzerParams()
    recs = {r["type"]: r for r in top["recommendations"]}
    if "raise_fees" in recs:  # too cheap to pay for a refill: charge for the liquidity first
        assert set(recs) == {"raise_fees"} and recs["raise_fees"]["proposed_fee_ppm"] > ch.local_policy.fee_ppm
        assert top["missed_liquidity_msat"] <= 0 or ch.local_policy.fee_ppm < params.min_refill_fee_ppm
    if "increase_capacity" in recs:  # HTLCs larger than the channel could ever send
        evidence = recs["increase_capacity"]["evidence"]
        assert evidence["carry_limit_msat"] == ch.capacity_msat - ch.local_reserve_msat - ch.commit_fee_msat
        assert evidence["largest_failed_msat"] > evidence["carry_limit_msat"]
    if "rebalance_outbound" in recs:  # a refill that lets the failed HTLCs through, or restores the share
        rec = recs["rebalance_outbound"]
        assert rec["target_channel"] == worst and rec["amount_msat"] > 0
        assert rec["evidence"]["carry_refill_msat"] > 0 or (ch.balance_ratio or 0.0) < params.target_ratio
    # A stored answer for that window is reused: the same run, filtered.
    again = standin.plugin.call("lens-opportunities", {"since": since, "limit": 1})
    assert again["run_time"] == result["run_time"] and len(again["opportunities"]) == 1


def test_channels_report_balances_policy_and_counts_per_window(running):
    standin = running
    result = validate("lens-channels", standin.plugin.call("lens-channels"))
    node_channels = {str(c.channel_id): c for c in standin.node.list_channels()}
    assert {c["short_channel_id"] for c in result["channels"]} == set(node_channels)
    settled_out = Counter(str(e.out_channel) for e in standin.node.events if e.status is ForwardStatus.SETTLED)
    for row in result["channels"]:
        ch = node_channels[row["short_channel_id"]]
        assert row["capacity_msat"] == ch.capacity_msat and row["fee_ppm"] == ch.local_policy.fee_ppm
        assert row["windows"]["24h"]["out"]["settled"] == settled_out[row["short_channel_id"]]
    one = standin.plugin.cli("lens-channels", f"short_channel_id={result['channels'][0]['short_channel_id']}")
    assert [c["short_channel_id"] for c in one["channels"]] == [result["channels"][0]["short_channel_id"]]
    with pytest.raises(PluginError) as err:
        standin.plugin.cli("lens-channels", "1x1x1")
    assert err.value.code == 1603 and "1x1x1" in err.value.message


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["soon"], "since: not a duration"),
        (["0"], "since: must be between"),
        (["24h", "101"], "min_urgency: must be 0..100"),
        (["24h", "high"], "min_urgency: want an integer"),
        (["24h", "1", "0"], "limit: must be >= 1"),
        (["24h", "1", "2", "3"], "takes at most 3 parameters"),
        (["since=24h", "colour=red"], "unknown parameter colour"),
        (["limit=[1]"], "limit: want an integer"),
        (["since=true"], "since: want seconds"),
    ],
)
def test_wrong_arguments_are_invalid_params_errors(running, args, message):
    with pytest.raises(PluginError) as err:
        running.plugin.cli("lens-opportunities", *args)
    assert err.value.code == -32602 and message in err.value.message, err.value.message
    assert "Traceback" not in err.value.message


def test_positional_and_keyword_calls_agree(running):
    standin = running
    positional = standin.plugin.cli("lens-opportunities", "3h", "10", "2")
    keyword = standin.plugin.cli("lens-opportunities", "limit=2", "min_urgency=10", "since=10800")
    assert positional == keyword
    assert len(positional["opportunities"]) <= 2 and all(o["urgency"] >= 10 for o in positional["opportunities"])


def test_a_restart_resumes_the_backfill_with_no_gap_and_no_duplicate(standin):
    standin.start_plugin()
    first = standin.wait_backfill()["backfill"]
    standin.advance_forwards(20, hold=3)
    standin.wait_for(standin.settled)
    held = len(standin.ledger.in_flight)
    assert held == 3
    assert standin.stop_plugin() == 0
    # While the plugin is down: the held forwards resolve, new ones happen, two stay in flight.
    standin.resolve_held()
    missed = standin.advance_forwards(50, hold=2)
    standin.rpc.calls.clear()
    standin.start_plugin()
    second = standin.wait_backfill()["backfill"]
    # Resumed at the stored cursor, not from the start ...
    created_starts = [p["start"] for m, p in standin.rpc.calls if m == "listforwards" and p["index"] == "created"]
    assert created_starts[0] == int(first["cursor"].split(":")[1][1:]) > 1
    assert second["forwards_read"] < len(standin.node.events)
    # ... and exactly what was missed is new: the forwards made while down, and the held ones that resolved.
    assert second["forwards_new"] == len(missed) + held
    standin.resolve_held()
    standin.advance(300)
    standin.wait_for(lambda: len(stored_forwards(standin)) == len(standin.node.events) and not any(
        s == "offered" for s, _, _ in stored_forwards(standin).values()), timeout=30)  # fmt: skip
    assert_store_matches_simulator(standin)


def test_dynamic_start_and_stop(standin):
    # `lightning-cli plugin start`: startup is false; `plugin stop` sends shutdown and waits.
    assert standin.start_plugin(startup=False) is None
    standin.wait_backfill()
    assert standin.plugin.alive
    assert standin.stop_plugin() == 0 and not standin.plugin.alive
    assert standin.start_plugin(startup=False) is None  # and it can come back
    assert standin.wait_backfill()["backfill"]["forwards_read"] == 0


def test_the_plugin_only_calls_allowlisted_methods(standin):
    standin.start_plugin({"lens-interval": "1"})
    standin.wait_backfill()
    standin.advance(300)
    standin.plugin.call("lens-opportunities", ["2h"])
    methods = {m for m, _ in standin.rpc.calls}
    assert methods <= {"getinfo", "listpeerchannels", "listchannels", "listforwards", "listnodes", "wait"}
    assert {"getinfo", "listpeerchannels", "listforwards", "wait"} <= methods


def test_without_lightningd_rpc_the_methods_say_lnlens_is_unavailable(make_standin):
    standin = make_standin(history_s=60)
    standin.server.close()  # lightningd's socket is gone: the worker cannot reach the node
    assert standin.start_plugin() is None  # init itself never fails for that: lightningd starts
    status = standin.wait_for(lambda: (s := standin.plugin.call("lens-status"))["worker"] == "failed" and s)
    assert "unreachable" in status["error"]
    validate("lens-status", status)
    for method in ("lens-opportunities", "lens-channels"):
        with pytest.raises(PluginError) as err:
            standin.plugin.call(method)
        assert err.value.code == 1601 and "unavailable" in err.value.message


def test_a_channel_state_change_makes_the_plugin_reread_its_channels(standin):
    standin.start_plugin()
    standin.wait_backfill()
    standin.wait_for(lambda: standin.plugin.call("lens-status")["last_analysis"])
    standin.rpc.calls.clear()
    channel = standin.node.list_channels()[0]
    standin.plugin.notify("channel_state_changed", {
        "peer_id": channel.peer_id, "channel_id": "00" * 32, "short_channel_id": str(channel.channel_id),
        "timestamp": "2026-02-03T00:00:00.000Z", "old_state": "CHANNELD_NORMAL", "new_state": "CHANNELD_SHUTTING_DOWN",
        "cause": "user", "message": "closing",
    })  # fmt: skip
    standin.wait_for(lambda: any(m == "listpeerchannels" for m, _ in standin.rpc.calls), timeout=10)


def test_alerts_go_out_as_lens_alert_notifications(make_standin):
    standin = make_standin()
    standin.advance(HISTORY_S / 2)
    node = standin.node
    settled = Counter(str(e.out_channel) for e in node.events if e.status is ForwardStatus.SETTLED and e.out_channel)
    busiest = settled.most_common(1)[0][0]
    edge, net = node.out_edge(busiest), node.network

    def drain() -> None:
        net.bal[edge ^ 1] += net.bal[edge]
        net.bal[edge] = 0

    drain()  # what was routed through it now fails for liquidity...
    standin.advance(HISTORY_S / 2)
    drain()  # ...and reverse traffic has refilled it a little: empty it again before the plugin looks
    standin.start_plugin()
    standin.wait_backfill()
    manifest_topics = [n["method"] for n in standin.plugin.manifest.get("notifications", [])]
    assert manifest_topics == ["lens_alert"]
    standin.wait_for(lambda: validate("lens-status", standin.plugin.call("lens-status"))["last_analysis"] is not None)
    alerts = {(a["type"], a["short_channel_id"]) for a in standin.plugin.call("lens-opportunities", {})["alerts"]}
    assert ("depleted", busiest) in alerts

    def notified() -> set[tuple[str, str]]:
        sent = [p["lens_alert"] for topic, p in standin.plugin.notifications if topic == "lens_alert"]
        return {(a["type"], a["short_channel_id"]) for a in sent}

    standin.wait_for(lambda: alerts <= notified())
