"""lnlens-cln inside a real lightningd (pyln-testing, regtest).

Topology (l2 runs lnlens-cln and routes; its fees are 0.1 % so failures are worth counting)::

    l1 ──── l2 ──── l3
            │
            l4

l4 drains l2→l3 by paying l3 through l2; then l1's payments to l3, sent on an explicit
route, fail at l2 for lack of liquidity (``local_failed``, WIRE_TEMPORARY_CHANNEL_FAILURE).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

_missing = [name for name in ("lightningd", "bitcoind") if shutil.which(name) is None]
if _missing:
    pytest.skip(f"{' and '.join(_missing)} not on PATH: these tests run a real Core Lightning on regtest",
                allow_module_level=True)  # fmt: skip
pytest.importorskip("pyln.testing", reason="pyln-testing is not installed: pip install 'lnlens[dev]'")

from lnlens_cln.convert import channel_from_cln, msat  # noqa: E402
from lnlens_cln.standin.checks import validate  # noqa: E402
from pyln.client import RpcError  # noqa: E402 - only once the binaries are known to exist
from pyln.testing.utils import wait_for  # noqa: E402

pytestmark = pytest.mark.integration


def _plugin_path() -> str:
    script = Path(sys.executable).with_name("lnlens-cln")
    found = str(script) if script.exists() else shutil.which("lnlens-cln")
    assert found and os.access(found, os.X_OK), "install lnlens with the cln extra: pip install -e '.[cln]'"
    return found


PLUGIN = _plugin_path()
L2_OPTS = {"plugin": PLUGIN, "lens-interval": "2", "fee-base": 1000, "fee-per-satoshi": 1000}


def _invoice(node, amount_msat: int, label: str) -> dict:
    return node.rpc.invoice(amount_msat, label, "lnlens integration test")


def _network(node_factory):
    l1, l2, l3 = node_factory.line_graph(3, fundamount=10**6, wait_for_announce=True, opts=[{}, L2_OPTS, {}])
    l4 = node_factory.get_node()
    node_factory.join_nodes([l4, l2], fundamount=10**6, wait_for_announce=True)
    for node in (l1, l4):
        node.wait_for_route(l3)
    return l1, l2, l3, l4


def _out_window(node, scid: str) -> dict:
    """Last hour's counters of forwards leaving by ``scid``, as lens-channels reports them."""
    channels = node.rpc.call("lens-channels", {"short_channel_id": scid})["channels"]
    return channels[0]["windows"]["1h"]["out"]


def _fail_at_l2(l1, l3, amount_msat: int, label: str) -> None:
    inv = _invoice(l3, amount_msat, label)
    route = l1.rpc.getroute(l3.info["id"], amount_msat, 1)["route"]
    l1.rpc.sendpay(route, inv["payment_hash"], payment_secret=inv["payment_secret"])
    with pytest.raises(RpcError):
        l1.rpc.waitsendpay(inv["payment_hash"])


def test_opportunities_on_l2_name_the_drained_channel(node_factory):
    l1, l2, l3, l4 = _network(node_factory)
    # the HTLC cap the backend reports is what setchannel keeps: lightningd lowers a larger htlcmax to it
    pc = l2.rpc.listpeerchannels(l3.info["id"])["channels"][0]
    kept = l2.rpc.setchannel(pc["short_channel_id"], htlcmax=msat(pc["total_msat"]))["channels"][0]
    assert "warning_htlcmax_too_high" in kept
    assert channel_from_cln(pc).max_htlc_cap_msat == msat(kept["maximum_htlc_out_msat"])
    for i in range(3):  # settle through l2
        l1.rpc.pay(_invoice(l3, 20_000_000, f"ok-{i}")["bolt11"])
    l4.rpc.pay(_invoice(l3, 850_000_000, "drain")["bolt11"])  # l2→l3 now holds little on our side
    for i in range(4):
        _fail_at_l2(l1, l3, 300_000_000, f"fail-{i}")

    scid23 = l2.get_channel_scid(l3)
    wait_for(lambda: _out_window(l2, scid23)["failed_liquidity"] >= 4)
    failures = [f for f in l2.rpc.listforwards(status="local_failed")["forwards"] if f["out_channel"] == scid23]
    assert len(failures) >= 4

    result = validate("lens-opportunities", l2.rpc.call("lens-opportunities", {"since": "1h"}))
    opportunity = next(o for o in result["opportunities"] if o["short_channel_id"] == scid23)
    assert opportunity["cause"] == "liquidity" and opportunity["failed_liquidity"] >= 4
    rebalance = [r for r in opportunity["recommendations"] if r["type"] == "rebalance_outbound"]
    assert rebalance and rebalance[0]["target_channel"] == scid23

    status = validate("lens-status", l2.rpc.call("lens-status"))
    assert status["backfill"]["state"] == "done" and status["worker"] == "running"
    validate("lens-channels", l2.rpc.call("lens-channels"))


def test_restart_backfills_what_happened_while_stopped(node_factory):
    l1, l2, l3, l4 = _network(node_factory)
    l1.rpc.pay(_invoice(l3, 10_000_000, "before")["bolt11"])
    wait_for(lambda: _out_window(l2, l2.get_channel_scid(l3))["settled"] >= 1)
    l2.rpc.plugin_stop("lnlens-cln")
    for i in range(3):  # the plugin misses these notifications: only listforwards has them
        l1.rpc.pay(_invoice(l3, 10_000_000, f"while-stopped-{i}")["bolt11"])
    l2.rpc.plugin_start(PLUGIN, **{"lens-interval": "2"})
    wait_for(lambda: l2.rpc.call("lens-status")["backfill"]["state"] == "done")
    backfill = l2.rpc.call("lens-status")["backfill"]
    assert backfill["forwards_new"] == 3  # the missed ones, nothing twice

    l2.restart()
    wait_for(lambda: l2.rpc.call("lens-status")["backfill"]["state"] == "done")
    assert l2.rpc.call("lens-status")["backfill"]["forwards_new"] == 0
    assert l2.rpc.call("lens-status")["db"]["forwards"] == len(l2.rpc.listforwards()["forwards"])
