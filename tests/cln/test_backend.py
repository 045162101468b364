"""ClnBackend without a plugin process: the allowlist, error mapping, conversion, and history paging
by created and updated index under every interleaving of lightningd's writes and our reads."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from lnlens_cln.backend import READ_ONLY_METHODS, WRITE_METHODS, ClnBackend, GuardedRpc
from lnlens_cln.convert import channel_from_cln, forward_from_cln, msat, policy_from_gossip
from lnlens_testing.cln import ForwardLedger

from lnlens_core.domain import ChannelId, FailureReason, ForwardStatus, HtlcEvent
from lnlens_core.errors import BackendRejected, BackendUnavailable

PUBKEY = "02" + "ab" * 32


class Recording:
    """An RPC connection that records calls and answers from a ledger (forwards) and constants (getinfo)."""

    def __init__(self, ledger: ForwardLedger | None = None) -> None:
        self.ledger = ledger or ForwardLedger()
        self.calls: list[str] = []
        self.before_updated: list = []
        """Writes lightningd makes between our created-index and updated-index reads (a race)."""

    def call(self, method: str, payload: Any = None) -> Any:
        self.calls.append(method)
        if method == "getinfo":
            return {"id": PUBKEY, "alias": "us", "network": "regtest", "blockheight": 800, "version": "v26.06"}
        if method == "listforwards":
            if payload.get("index") == "updated":
                while self.before_updated:
                    self.before_updated.pop()()
            return self.ledger.listforwards(dict(payload))
        if method == "wait":
            return self.ledger.wait(dict(payload))
        raise AssertionError(f"unexpected call {method}")


def test_the_allowlist_is_read_only_plus_setchannel():
    assert WRITE_METHODS == {"setchannel"}
    assert READ_ONLY_METHODS.isdisjoint(
        {
            "pay",
            "xpay",
            "close",
            "fundchannel",
            "withdraw",
            "plugin",
            "setconfig",
            "delforward",
            "sendpay",
            "invoice",
            "connect",
            "disconnect",
            "stop",
        }
    )
    # bkpr-inspect: bookkeeper's read of a channel account's on-chain footprint (the funding fee for cost)
    assert all(m.startswith(("get", "list", "wait", "feerates", "bkpr-inspect")) for m in READ_ONLY_METHODS)


@pytest.mark.parametrize(
    "method", ["pay", "close", "plugin", "withdraw", "delforward", "setconfig", "dev-forget-channel"]
)
def test_methods_outside_the_allowlist_never_reach_lightningd(method):
    rpc = Recording()
    with pytest.raises(BackendRejected, match=f"never calls '{method}'"):
        GuardedRpc(rpc).call(method, {})
    assert rpc.calls == []


def test_rpc_failures_map_to_the_error_tree(tmp_path):
    from pyln.client import LightningRpc

    with pytest.raises(BackendUnavailable, match="unreachable"):
        ClnBackend(LightningRpc(str(tmp_path / "no-such-socket")))

    class Refusing(Recording):
        def call(self, method, payload=None):
            if method == "getinfo":
                return super().call(method, payload)
            from pyln.client import RpcError

            raise RpcError(method, payload, {"code": -32602, "message": "Unknown channel"})

    backend = ClnBackend(Refusing())
    with pytest.raises(BackendRejected, match="Unknown channel"):
        backend.list_forwards(None)


def test_forward_rows_convert_with_any_amount_spelling():
    row = {
        "created_index": 7,
        "in_channel": "103x1x0",
        "in_htlc_id": 4,
        "in_msat": "100100msat",
        "status": "settled",
        "out_channel": "104x2x1",
        "out_msat": 100000,
        "fee_msat": "100msat",
        "received_time": 1700000000.5,
        "resolved_time": 1700000001.25,
        "style": "tlv",
    }
    e = forward_from_cln(row)
    assert (e.in_msat, e.out_msat, e.fee_msat, e.key) == (100_100, 100_000, 100, "103x1x0/4")
    assert e.failure_reason is None and e.out_channel == ChannelId(104, 2, 1)
    failed = forward_from_cln(
        {
            "in_channel": "103x1x0",
            "in_htlc_id": 5,
            "in_msat": 5000,
            "status": "local_failed",
            "out_channel": "104x2x1",
            "failcode": 4103,
            "failreason": "WIRE_TEMPORARY_CHANNEL_FAILURE",
            "received_time": 1.0,
        }
    )
    assert failed.out_msat is None and failed.failure_reason is FailureReason.INSUFFICIENT_BALANCE
    downstream = forward_from_cln({**row, "status": "failed", "in_htlc_id": 6})
    assert downstream.failure_reason is FailureReason.DOWNSTREAM
    # forward_event carries the payment hash: missed revenue ties a payment's HTLCs by it
    assert e.payment_hash is None and forward_from_cln({**row, "payment_hash": "AB" * 32}).payment_hash == "ab" * 32
    with pytest.raises(ValueError, match="malformed payment_hash 'xyz'"):
        forward_from_cln({**row, "payment_hash": "xyz"})
    with pytest.raises(ValueError, match="in_msat"):
        forward_from_cln({"in_channel": "1x1x1", "status": "offered", "received_time": 1.0})
    assert msat("2sat") == 2000


def test_peer_channels_convert_and_closing_ones_are_left_out():
    pc = {
        "peer_id": PUBKEY,
        "peer_connected": True,
        "state": "CHANNELD_NORMAL",
        "short_channel_id": "103x1x0",
        "opener": "local",
        "private": False,
        "total_msat": 1_000_000_000,
        "to_us_msat": 600_000_000,
        "spendable_msat": 590_000_000,
        "receivable_msat": 390_000_000,
        "fee_base_msat": 1000,
        "fee_proportional_millionths": 250,
        "minimum_htlc_out_msat": 1,
        "maximum_htlc_out_msat": 990_000_000,
        "updates": {"local": {"cltv_expiry_delta": 40}},
        "htlcs": [{"direction": "out", "id": 1, "amount_msat": 5000, "expiry": 900, "state": "SENT_ADD_HTLC"}],
    }
    ch = channel_from_cln(pc, peer_alias="peer")
    assert ch is not None and ch.remote_balance_msat == 400_000_000 and ch.initiator is True
    assert (ch.local_policy.fee_ppm, ch.local_policy.cltv_delta, ch.local_policy.max_htlc_msat) == (
        250,
        40,
        990_000_000,
    )
    assert ch.pending_htlcs[0].amount_msat == 5000 and not ch.pending_htlcs[0].incoming
    assert (ch.min_htlc_floor_msat, ch.max_htlc_cap_msat) == (None, None)  # before v25.02: no in-flight limit
    limited = {**pc, "their_max_htlc_value_in_flight_msat": 2_000_000_000, "our_reserve_msat": 10_000_000}
    assert channel_from_cln(limited).max_htlc_cap_msat == 990_000_000  # capacity less the reserve we keep
    limited["their_max_htlc_value_in_flight_msat"] = 500_000_000
    assert channel_from_cln(limited).max_htlc_cap_msat == 500_000_000
    assert channel_from_cln({**pc, "state": "ONCHAIN"}) is None
    assert channel_from_cln({**pc, "peer_connected": False}).active is False
    gossip = policy_from_gossip(
        {
            "base_fee_millisatoshi": 5,
            "fee_per_millionth": 7,
            "delay": 144,
            "active": False,
            "htlc_minimum_msat": 1000,
            "htlc_maximum_msat": 5_000_000,
        }
    )
    assert (gossip.base_fee_msat, gossip.fee_ppm, gossip.cltv_delta, gossip.disabled) == (5, 7, 144, True)


def _event(n: int, status: ForwardStatus) -> HtlcEvent:
    failed = status is ForwardStatus.LOCAL_FAILED
    return HtlcEvent(
        in_channel=ChannelId(100, n % 3, 0),
        in_msat=10_000 + n,
        status=status,
        received_time=1000.0 + n,
        in_htlc_id=n,
        out_channel=ChannelId(200, 0, 0),
        out_msat=10_000,
        fee_msat=n,
        resolved_time=1001.0 + n,
        failcode=4103 if failed else None,
        failure_reason=FailureReason.INSUFFICIENT_BALANCE
        if failed
        else (FailureReason.DOWNSTREAM if status is ForwardStatus.FAILED else None),
    )


_STATUSES = st.sampled_from([ForwardStatus.SETTLED, ForwardStatus.FAILED, ForwardStatus.LOCAL_FAILED])
_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("new"), _STATUSES),
        st.tuples(st.just("resolve"), st.integers(0, 50)),
        st.tuples(st.just("page"), st.integers(1, 6)),
        st.tuples(st.just("race"), _STATUSES),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(ops=_OPS)
# a forward created and resolved between the two reads of the last page: that page is not the last
@example(ops=[("race", ForwardStatus.SETTLED)] + [("new", ForwardStatus.SETTLED)] * 2
         + [("new", ForwardStatus.LOCAL_FAILED)] * 3 + [("race", ForwardStatus.SETTLED)])  # fmt: skip
def test_paging_by_both_indexes_delivers_each_final_state_exactly_once(ops):
    ledger = ForwardLedger()
    rpc = Recording(ledger)
    backend = ClnBackend(rpc)
    seen: dict[str, list[str]] = defaultdict(list)
    cursor, made = None, 0

    def page(limit: int) -> bool:
        nonlocal cursor
        result = backend.list_forwards(cursor, limit=limit)
        assert len(result.events) <= limit
        for e in result.events:
            seen[e.key].append(e.status.value)
        cursor = result.next_cursor
        return result.done

    for op, arg in ops:
        if op == "new":
            ledger.offer(_event(made, arg))
            made += 1
        elif op == "resolve" and ledger.in_flight:
            ledger.resolve([ledger.in_flight[arg % len(ledger.in_flight)]])
        elif op == "page":
            page(arg)
        elif op == "race":  # a forward created and resolved while we page: between our two reads

            def race(status=arg, n=made):
                ledger.add([_event(n, status)])

            rpc.before_updated.append(race)
            made += 1
            page(6)
    ledger.resolve()
    for _ in range(10 * made + 2):
        if page(4):
            break
    final = {row["in_channel"] + "/" + str(row["in_htlc_id"]): row["status"] for row in ledger.rows.values()}
    assert set(seen) == set(final)
    for key, states in seen.items():
        assert states.count(final[key]) == 1, (key, states)
        assert set(states) <= {"offered", final[key]} and states.count("offered") <= 1, (key, states)
