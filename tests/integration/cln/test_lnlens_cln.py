"""lnlens-cln inside a real lightningd (pyln-testing, regtest): what an operator does, on one network.

One network for the whole module (starting lightningd nodes is the slow part), built once::

    l1 ──── l2 ──── l3          l2 runs lnlens-cln (lens-interval 1h: answers must be current
            │                   without waiting for it), 1,000 msat + 1,000 ppm fees
            l4                  l5: no channels, for bad options at start-up and at `plugin start`

l4 drains l2→l3 by paying l3 through l2; l1's payments to l3 on an explicit route (built from
listchannels: getroute is deprecated) then fail at l2 for lack of liquidity. The tests run in file
order and build on each other's payments.

`make test` puts ../shared/regtest's lightningd/bitcoind on PATH (scripts/real-things.sh). Without
them these tests skip with the reason; with CI=true a missing binary or pyln-testing fails the run.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from concurrent import futures
from pathlib import Path

import pytest

_missing = [name for name in ("lightningd", "bitcoind") if shutil.which(name) is None]
if importlib.util.find_spec("pyln.testing") is None:
    _missing.append("pyln-testing (pip install 'lnlens[dev]')")
if _missing:
    _reason = f"{' and '.join(_missing)} not available: these tests run a real Core Lightning on regtest"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {_reason} (make test prepares them with scripts/real-things.sh)", pytrace=False)
    pytest.skip(_reason, allow_module_level=True)

from lnlens_cln.convert import channel_from_cln, msat  # noqa: E402
from lnlens_cln.methods import METHODS  # noqa: E402
from lnlens_testing.cln.checks import validate  # noqa: E402
from pyln.client import RpcError  # noqa: E402 - only once the binaries are known to exist
from pyln.testing.db import SqliteDbProvider  # noqa: E402
from pyln.testing.utils import BitcoinD, LightningNode, NodeFactory, wait_for  # noqa: E402

pytestmark = pytest.mark.integration

PLUGIN_NAME = "lnlens-cln"
FEES = "[default]\nstrategy = static\nfee_ppm = 777\n"
BAD_OPTIONS = {  # every lens-* option with a value lnlens refuses, and what the reason names
    "lens-db": "/nonexistent-lnlens-folder/lnlens.sqlite3",
    "lens-dry-run": "banana",
    "lens-policy": "/nonexistent-lnlens-folder/fees.ini",
    "lens-interval": "soon",
    "lens-model": "/nonexistent-lnlens-folder/model.onnx",
    "lens-http-port": "99999",
}


def _plugin_path() -> str:
    script = Path(sys.executable).with_name(PLUGIN_NAME)
    found = str(script) if script.exists() else shutil.which(PLUGIN_NAME)
    assert found and os.access(found, os.X_OK), "install lnlens with the cln extra: pip install -e '.[cln]'"
    return found


PLUGIN = _plugin_path()


class _Request:
    """What NodeFactory wants of pytest's request: nothing it uses for a module-wide network."""

    node = None


@pytest.fixture(scope="module")
def net():
    """bitcoind, l1..l5 as in the module docstring; torn down at the end of the module."""
    assert set(BAD_OPTIONS) == {o for o in _option_names()}, "a lens-* option has no bad-value case"
    base = tempfile.mkdtemp(prefix="lnlens-cln-")
    bitcoind = BitcoinD(bitcoin_dir=base)
    executor = futures.ThreadPoolExecutor(max_workers=10)
    db = SqliteDbProvider(base)
    db.start()
    factory = NodeFactory(_Request(), "lnlens", bitcoind, executor, directory=base, db_provider=db,
                          node_cls=LightningNode, jsonschemas={})  # fmt: skip
    try:
        bitcoind.start()
        bitcoind.generate_block(101)
        fees = Path(base) / "fees.ini"
        fees.write_text(FEES)
        l2_opts = {"plugin": PLUGIN, "lens-interval": "1h", "lens-policy": str(fees), "fee-base": 1000,
                   "fee-per-satoshi": 1000, "may_reconnect": True}  # fmt: skip
        l1, l2, l3 = factory.line_graph(3, fundamount=10**6, wait_for_announce=True,
                                        opts=[{"may_reconnect": True}, l2_opts, {"may_reconnect": True}])  # fmt: skip
        l4 = factory.get_node(may_reconnect=True)
        factory.join_nodes([l4, l2], fundamount=10**6, wait_for_announce=True)
        l5 = factory.get_node()
        for node in (l1, l4):
            node.wait_for_route(l3)
        yield {"l1": l1, "l2": l2, "l3": l3, "l4": l4, "l5": l5, "fees": fees, "dir": Path(base)}
    finally:
        # No leak checks or clean stops here (pyln's killall does both, slowly): SIGTERM, all at once.
        list(executor.map(lambda node: node.daemon.stop(), factory.nodes))
        executor.shutdown(wait=False)
        try:
            bitcoind.stop()
        except Exception:  # noqa: BLE001 - teardown: make sure it is gone
            bitcoind.proc.kill()
        db.stop()
        shutil.rmtree(base, ignore_errors=True)


def _option_names() -> list[str]:
    from lnlens_core.config import SETTINGS

    return [s.cln_option for s in SETTINGS]


def _invoice(node, amount_msat: int, label: str) -> dict:
    return node.rpc.invoice(amount_msat, label, "lnlens integration test", cltv=18)


def _route(l1, l2, l3, amount_msat: int) -> list[dict]:
    """l1 → l2 → l3 for ``amount_msat``, priced with l2's policy as l1's gossip has it."""
    scid12, scid23 = l1.get_channel_scid(l2), l2.get_channel_scid(l3)
    hop = next(c for c in l1.rpc.listchannels(scid23)["channels"] if c["source"] == l2.info["id"])
    fee = hop["base_fee_millisatoshi"] + amount_msat * hop["fee_per_millionth"] // 1_000_000
    final = 24
    return [
        {"id": l2.info["id"], "channel": scid12, "amount_msat": amount_msat + fee, "delay": final + hop["delay"]},
        {"id": l3.info["id"], "channel": scid23, "amount_msat": amount_msat, "delay": final},
    ]


def _fail_at_l2(l1, l2, l3, amount_msat: int, label: str) -> None:
    inv = _invoice(l3, amount_msat, label)
    l1.rpc.sendpay(_route(l1, l2, l3, amount_msat), inv["payment_hash"], payment_secret=inv["payment_secret"])
    with pytest.raises(RpcError):
        l1.rpc.waitsendpay(inv["payment_hash"])


def _pay(payer, payee, amount_msat: int, label: str) -> None:
    payer.rpc.pay(_invoice(payee, amount_msat, label)["bolt11"])


def _call(node, method: str, params=None) -> dict:
    return validate(method, node.rpc.call(method, params if params is not None else {}))


def _error(node, method: str, params) -> dict:
    with pytest.raises(RpcError) as info:
        node.rpc.call(method, params)
    error = info.value.error
    assert "traceback" not in error and "Traceback" not in error["message"], error
    return error


def _stored_forwards(l2) -> Counter:
    """(in_channel, in_htlc_id, status) of every forward in lnlens's database, read directly."""
    path = l2.rpc.call("lens-status")["db"]["path"]
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return Counter(db.execute("SELECT in_channel, in_htlc_id, status FROM forwards").fetchall())


def _node_forwards(l2) -> Counter:
    return Counter((f["in_channel"], f["in_htlc_id"], f["status"]) for f in l2.rpc.listforwards()["forwards"])


def _same_forwards(l2) -> bool:
    return _stored_forwards(l2) == _node_forwards(l2)


def _out_window(answer: dict, scid: str, window: str = "24h") -> dict:
    return next(c for c in answer["channels"] if c["short_channel_id"] == scid)["windows"][window]["out"]


def _plugin_pid(node) -> int:
    """The pid of lightningd's lnlens-cln child."""
    parent = node.daemon.proc.pid
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and PLUGIN_NAME.encode() in cmdline:
            return int(entry.name)
    raise AssertionError("lnlens-cln is not running under lightningd")


def _plugin_running(node) -> bool:
    return any(p["name"].endswith(PLUGIN_NAME) for p in node.rpc.plugin_list()["plugins"])


def _wait_backfill(node) -> None:
    wait_for(lambda: node.rpc.call("lens-status")["backfill"]["state"] == "done")


def test_every_method_answers_by_name_and_by_position(net):
    l2, l3 = net["l2"], net["l3"]
    _wait_backfill(l2)
    scid = l2.get_channel_scid(l3)
    by_name = {
        "lens-opportunities": {"since": "1h", "min_urgency": 0, "limit": 5},
        "lens-channels": {"short_channel_id": scid},
        "lens-status": {},
        "lens-policy": {"apply": False},
        "lens-recommend": {"since": "1h", "min_gap": 0.2, "limit": 3},
        "lens-history": {"short_channel_id": scid},
    }
    assert set(by_name) | {"lens-rollback"} == {m.name for m in METHODS}, "a lens-* method is not covered"
    for method, params in by_name.items():
        named = _call(l2, method, params)
        positional = _call(l2, method, list(params.values()))
        for answer in (named, positional):
            assert answer["run_time"] > 0 and "newest_event_time" in answer
        volatile = ("run_time", "time", "events", "liquidity_model", "plan", "newest_event_time")
        assert {k: v for k, v in named.items() if k not in volatile} == {
            k: v for k, v in positional.items() if k not in volatile
        }, method
    # lens-rollback with nothing to roll back: the same clear error either way, no traceback
    for params in ({"short_channel_id": scid}, [None, scid]):
        error = _error(l2, "lens-rollback", params)
        assert error["code"] == 1604 and f"no applied fee change on {scid}" in error["message"]
    for method, params, code in (("lens-opportunities", ["forever"], -32602), ("lens-channels", ["1x1x1"], 1603),
                                 ("lens-status", {"verbose": True}, -32602)):  # fmt: skip
        assert _error(l2, method, params)["code"] == code


def test_payments_show_at_once_and_a_liquidity_failure_gets_a_refill_that_carries_it(net):
    l1, l2, l3, l4 = net["l1"], net["l2"], net["l3"], net["l4"]
    scid23, scid24 = l2.get_channel_scid(l3), l2.get_channel_scid(l4)
    for i in range(3):  # settle through l2
        _pay(l1, l3, 20_000_000, f"ok-{i}")
    _pay(l4, l3, 850_000_000, "drain")  # l2→l3 now holds ~15 % on our side; l2→l4 ~85 %
    spendable = next(c for c in l2.rpc.listpeerchannels(l3.info["id"])["channels"])["spendable_msat"]
    # HTLCs that fit the channel (1,000,000 sat less reserve) but not its balance: a refill would carry them.
    largest = spendable + 100_000_000
    for i in range(4):
        _fail_at_l2(l1, l2, l3, largest - i * 1_000_000, f"fail-{i}")

    # Immediately (lens-interval is 1 h): every answer includes every forward lightningd has.
    forwards = l2.rpc.listforwards()["forwards"]
    failures = [f for f in forwards if f["status"] == "local_failed" and f["out_channel"] == scid23]
    assert len(failures) == 4
    newest = max(f["received_time"] for f in forwards)
    result = _call(l2, "lens-opportunities")
    assert result["newest_event_time"] == pytest.approx(newest, abs=0.01) and result["run_time"] >= newest
    opportunity = next(o for o in result["opportunities"] if o["short_channel_id"] == scid23)
    assert opportunity["cause"] == "liquidity" and opportunity["failed_liquidity"] == 4
    (refill,) = [r for r in opportunity["recommendations"] if r["type"] == "rebalance_outbound"]
    assert not [r for r in opportunity["recommendations"] if r["type"] == "increase_capacity"]
    assert refill["target_channel"] == scid23 and refill["source_channel"] == scid24
    assert refill["evidence"]["largest_failed_msat"] == largest
    # Sized to carry the largest failed HTLC: ~100,000 sat (spendable moves a little with the commitment fee).
    carry = refill["evidence"]["carry_refill_msat"]
    assert abs(carry - 100_000_000) <= 5_000_000 and refill["amount_msat"] >= carry
    source = next(c for c in l2.rpc.listpeerchannels(l4.info["id"])["channels"])
    assert source["spendable_msat"] >= refill["amount_msat"], "the source can spare it"

    channels = _call(l2, "lens-channels")
    out = _out_window(channels, scid23)
    assert out["settled"] == sum(1 for f in forwards if f["status"] == "settled" and f["out_channel"] == scid23)
    assert out["failed_liquidity"] == 4 and channels["newest_event_time"] == pytest.approx(newest, abs=0.01)
    row = next(c for c in channels["channels"] if c["short_channel_id"] == scid23)
    to_us = next(c for c in l2.rpc.listpeerchannels(l3.info["id"])["channels"])["to_us_msat"]
    assert row["local_balance_msat"] == to_us  # balances re-read after the payments
    status = _call(l2, "lens-status")
    assert status["db"]["forwards"] == len(forwards) and status["events"]["queued"] == 0
    rules = _call(l2, "lens-recommend")["rules"]
    assert any(r["type"] == "rebalance_outbound" and r["target_channel"] == scid23 for r in rules)

    # One more forward: the stored answer is not served again; the new one includes it.
    _pay(l1, l3, 1_000_000, "one-more")
    again = _call(l2, "lens-opportunities")
    assert again["run_time"] > result["run_time"] and again["newest_event_time"] > newest
    assert _call(l2, "lens-status")["db"]["forwards"] == len(l2.rpc.listforwards()["forwards"])


def test_a_payment_refused_then_carried_by_us_is_recovered_not_lost_by_its_payment_hash(net):
    from lnlens_core.opportunities.flows import MATCH_WINDOW_S

    l1, l2, l3, l4 = net["l1"], net["l2"], net["l3"], net["l4"]
    scid23 = l2.get_channel_scid(l3)

    def scid23_opportunity() -> dict:
        return next(o for o in _call(l2, "lens-opportunities")["opportunities"] if o["short_channel_id"] == scid23)

    before = scid23_opportunity()
    spendable = next(c for c in l2.rpc.listpeerchannels(l3.info["id"])["channels"])["spendable_msat"]
    amount = spendable + 50_000_000
    inv = _invoice(l3, amount, "refused-then-carried")
    l1.rpc.sendpay(_route(l1, l2, l3, amount), inv["payment_hash"], payment_secret=inv["payment_secret"])
    with pytest.raises(RpcError):
        l1.rpc.waitsendpay(inv["payment_hash"])  # refused at l2: l2→l3 lacks the balance
    refused_at = max(f["received_time"] for f in l2.rpc.listforwards(status="local_failed")["forwards"])
    _pay(l3, l4, 200_000_000, "refill")  # l3→l2→l4 gives l2→l3 the balance back
    # Later than the heuristic's window: only the payment hash lightningd reports can tie the two together.
    time.sleep(max(0.0, refused_at + MATCH_WINDOW_S + 1 - time.time()))
    l1.rpc.sendpay(_route(l1, l2, l3, amount), inv["payment_hash"], payment_secret=inv["payment_secret"])
    assert l1.rpc.waitsendpay(inv["payment_hash"])["status"] == "complete"

    path = l2.rpc.call("lens-status")["db"]["path"]
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        stored = db.execute("SELECT status, received_time FROM forwards WHERE payment_hash = ? ORDER BY received_time",
                            (inv["payment_hash"],)).fetchall()  # fmt: skip
    assert [s for s, _ in stored] == ["local_failed", "settled"] and stored[1][1] - stored[0][1] > MATCH_WINDOW_S
    after = scid23_opportunity()
    fee = 1000 + amount * 1000 // 1_000_000  # l2's policy: 1,000 msat + 1,000 ppm
    assert after["failed_liquidity"] == before["failed_liquidity"] + 1
    assert after["missed_revenue_msat"] == before["missed_revenue_msat"], "carried by us: not lost"
    assert after["missed_recovered_msat"] == before["missed_recovered_msat"] + fee
    assert after["missed_revenue_htlc_msat"] == before["missed_revenue_htlc_msat"] + fee


def test_policy_apply_reaches_gossip_and_rollback_restores_it_once(net):
    l1, l2, l3 = net["l1"], net["l2"], net["l3"]
    scid = l2.get_channel_scid(l3)

    def ours() -> dict:
        return next(c for c in l2.rpc.listpeerchannels(l3.info["id"])["channels"])["updates"]["local"]

    before = ours()
    plan = _call(l2, "lens-policy")
    assert plan["applied"] is False and ours() == before
    applied = _call(l2, "lens-policy", {"apply": True})
    mine = next(r for r in applied["results"] if r["short_channel_id"] == scid)
    assert mine["state"] == "verified"
    new_ppm = ours()["fee_proportional_millionths"]
    assert new_ppm != before["fee_proportional_millionths"] and min(1000, 777) <= new_ppm <= max(1000, 777)

    def gossip_ppm() -> int | None:
        found = [c for c in l1.rpc.listchannels(scid)["channels"] if c["source"] == l2.info["id"]]
        return found[0]["fee_per_millionth"] if found else None

    wait_for(lambda: gossip_ppm() == new_ppm)  # a peer sees the new fee in gossip

    undone = _call(l2, "lens-rollback", {"short_channel_id": scid})
    assert undone["state"] == "verified" and ours() == before  # the exact policy, every field
    error = _error(l2, "lens-rollback", {"short_channel_id": scid})  # a second one would re-apply the change
    assert error["code"] == 1604 and "already rolled back" in error["message"]
    assert ours() == before
    wait_for(lambda: gossip_ppm() == before["fee_proportional_millionths"])
    history = _call(l2, "lens-history", {"short_channel_id": scid})
    assert [c["state"] for c in history["changes"]] == ["rolled_back", "verified"]


def test_the_htlc_cap_lnlens_reports_is_what_setchannel_keeps(net):
    """charge-lnd's max_htlc cap on Core Lightning: lightningd lowers a larger htlcmax to what lnlens reports."""
    l2, l3 = net["l2"], net["l3"]
    pc = l2.rpc.listpeerchannels(l3.info["id"])["channels"][0]
    kept = l2.rpc.setchannel(pc["short_channel_id"], htlcmax=msat(pc["total_msat"]))["channels"][0]
    assert "warning_htlcmax_too_high" in kept
    assert channel_from_cln(pc).max_htlc_cap_msat == msat(kept["maximum_htlc_out_msat"])


def test_no_forward_is_lost_or_doubled_across_stop_start_kill_and_restart(net):
    l1, l2, l3 = net["l1"], net["l2"], net["l3"]
    wait_for(lambda: _same_forwards(l2))

    l2.rpc.plugin_stop(PLUGIN_NAME)
    for i in range(2):  # only listforwards has these: the plugin misses their notifications
        _pay(l1, l3, 5_000_000, f"while-stopped-{i}")
    l2.rpc.plugin_start(PLUGIN, **{"lens-interval": "1h", "lens-policy": str(net["fees"])})
    _wait_backfill(l2)
    assert l2.rpc.call("lens-status")["backfill"]["forwards_new"] == 2
    assert _same_forwards(l2)

    pid = _plugin_pid(l2)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not _plugin_running(l2))
    assert l2.rpc.getinfo()["id"] == l2.info["id"]  # lightningd stays up
    _pay(l1, l3, 6_000_000, "while-killed")
    l2.rpc.plugin_start(PLUGIN, **{"lens-interval": "1h", "lens-policy": str(net["fees"])})
    _wait_backfill(l2)
    assert _plugin_pid(l2) != pid and _same_forwards(l2)
    _pay(l1, l3, 7_000_000, "after-kill")  # live again
    assert _call(l2, "lens-status")["db"]["forwards"] == len(l2.rpc.listforwards()["forwards"])

    l2.restart()
    for node in (l1, l3):
        node.rpc.connect(l2.info["id"], "localhost", l2.port)
    _wait_backfill(l2)
    assert l2.rpc.call("lens-status")["backfill"]["forwards_new"] == 0
    assert _same_forwards(l2)
    wait_for(lambda: all(c["state"] == "CHANNELD_NORMAL" and c["peer_connected"]
                         for c in l2.rpc.listpeerchannels()["channels"]))  # fmt: skip
    l1.wait_for_route(l3)
    _pay(l1, l3, 8_000_000, "after-restart")
    assert _same_forwards(l2) and _call(l2, "lens-status")["db"]["forwards"] == len(l2.rpc.listforwards()["forwards"])


def _disabled_in_log(node, option: str, start: int = 0) -> bool:
    # Where an operator looks: UNUSUAL, not DEBUG.
    return node.daemon.is_in_log(rf"UNUSUAL\s+plugin-{PLUGIN_NAME}: lnlens: disabled: .*{option}", start) is not None


def test_bad_options_and_a_corrupt_database_never_stop_lightningd(net):
    l5 = net["l5"]
    corrupt = net["dir"] / "corrupt.sqlite3"
    corrupt.write_bytes(b"this is not an sqlite database\n" * 200)
    cases = [*BAD_OPTIONS.items(), ("lens-db", str(corrupt))]
    for option, value in cases:  # at `plugin start`
        l5.daemon.logs_catchup()
        mark = len(l5.daemon.logs)
        error = _error(l5, "plugin", {"subcommand": "start", "plugin": PLUGIN, option: value})
        assert option in error["message"], error
        assert l5.rpc.getinfo()["id"] == l5.info["id"] and not _plugin_running(l5)
        wait_for(lambda option=option, mark=mark: _disabled_in_log(l5, option, mark))
    assert not Path(BAD_OPTIONS["lens-db"]).parent.exists(), "lens-db's folder is never created"
    assert corrupt.read_bytes().startswith(b"this is not an sqlite database")  # never changed

    # At start-up, on lightningd's command line: lnlens names every bad option of a start at once.
    groups = [{o: BAD_OPTIONS[o] for o in ("lens-dry-run", "lens-interval", "lens-http-port")},
              {o: BAD_OPTIONS[o] for o in ("lens-db", "lens-policy", "lens-model")}, {"lens-db": str(corrupt)}]
    for group in groups:
        l5.stop()
        l5.daemon.logs_catchup()
        mark = len(l5.daemon.logs)
        l5.daemon.opts.update({"plugin": PLUGIN, **group})
        l5.start()
        assert l5.rpc.getinfo()["id"] == l5.info["id"] and not _plugin_running(l5)
        for option in group:
            assert _disabled_in_log(l5, option, mark), option
            del l5.daemon.opts[option]
    # With good options the same node runs the plugin.
    l5.stop()
    l5.start()
    _wait_backfill(l5)
    assert _call(l5, "lens-status")["worker"] == "running"
