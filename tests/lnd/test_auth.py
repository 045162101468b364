"""Least privilege: the start check of the macaroon, lnd's auth errors, and the client-side allowlist."""

from __future__ import annotations

import logging
from dataclasses import replace

import grpc
import pytest
from lnlens_lnd.backend import LndBackend, bake_command
from lnlens_lnd.cli import status_data
from lnlens_lnd.rpc import METHODS, LndRpc, MethodRefused
from lnlens_testing.lnd import ADMIN, READONLY, FakeMacaroons, minimal_ops

from lnlens_core.backend import Capability
from lnlens_core.domain import FeeUpdate
from lnlens_core.errors import BackendRejected, BackendUnavailable, ConfigError
from lnlens_core.storage import Store


def test_minimal_macaroon_is_accepted_quietly(connect, caplog):
    with caplog.at_level(logging.WARNING):
        backend = connect("apply")
    assert backend.permissions.scope == "minimal" and not backend.permissions.missing
    assert not [r for r in caplog.records if r.name.startswith("lnlens_lnd")]


def test_readonly_macaroon_blocks_fee_application_with_a_clear_message(connect):
    with pytest.raises(ConfigError) as err:
        connect("apply", ops=READONLY, name="readonly.macaroon")
    message = str(err.value)
    assert "lacks UpdateChannelPolicy" in message and "apply mode" in message
    assert bake_command("apply") in message


def test_readonly_macaroon_is_enough_to_monitor_but_reads_more_than_needed(connect, caplog):
    with caplog.at_level(logging.WARNING):
        backend = connect("read", ops=READONLY, name="readonly.macaroon")
    assert backend.permissions.scope == "broader than needed (read)"
    assert "read invoices" in backend.permissions.excess
    assert any(r.levelno == logging.WARNING and "read the wallet balance" in r.getMessage() for r in caplog.records)


def test_admin_macaroon_triggers_the_loud_warning(connect, caplog):
    with caplog.at_level(logging.WARNING):
        backend = connect("apply", ops=ADMIN, name="admin.macaroon")
    assert backend.permissions.excess_write and backend.permissions.scope == "broad (can write)"
    loud = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert loud and "send payments" in loud[0].getMessage() and "spend on-chain funds" in loud[0].getMessage()
    assert bake_command("apply") in loud[0].getMessage()


def test_read_mode_refuses_fee_updates_before_the_wire(connect, fake):
    backend = connect("read")
    channel = backend.list_channels()[0]
    sent = list(fake.calls)
    with pytest.raises(MethodRefused, match="read-only"):
        backend.set_channel_policy(channel.channel_id, FeeUpdate(fee_ppm=1))
    assert fake.calls == sent


@pytest.mark.parametrize(
    "method", ["/routerrpc.Router/SendPaymentV2", "/lnrpc.Lightning/SendCoins", "/lnrpc.Lightning/CloseChannel",
               "OpenChannelSync", "/lnrpc.Lightning/GetInfoX", "/lnrpc.Other/GetInfo"],
)  # fmt: skip
def test_non_allowlisted_calls_are_refused_before_the_wire(connect, fake, method):
    backend = connect("apply", ops=ADMIN, name="admin.macaroon")  # even a macaroon that would allow it
    rpc = backend._rpc
    sent = list(fake.calls)
    with pytest.raises(MethodRefused, match="allowlist"):
        rpc.call(method)
    with pytest.raises(MethodRefused):
        rpc.stream(method)
    assert fake.calls == sent


def test_no_raw_channel_or_stub_is_reachable(connect):
    backend = connect("apply")
    wire = (grpc.Channel, grpc.UnaryUnaryMultiCallable, grpc.UnaryStreamMultiCallable)
    for obj in (backend, backend._rpc):
        for value in vars(obj).values():
            inner = value.values() if isinstance(value, dict) else [value]
            assert not any(isinstance(v, wire) or type(v).__name__.endswith("Stub") for v in inner), value
    assert backend._rpc.allowed == {
        *(
            "GetInfo",
            "ListChannels",
            "FeeReport",
            "ForwardingHistory",
            "GetChanInfo",
            "SubscribeHtlcEvents",
            "UpdateChannelPolicy",
            "CheckMacaroonPermissions",
            # the fee engine's optional read-only inputs: on the list, the macaroon decides whether lnd answers
            "GetNodeInfo",
            "EstimateFee",
            "GetTransactions",
            # the optional write: channel status (apply mode only)
            "UpdateChanStatus",
        )
    }
    assert "UpdateChanStatus" not in connect("read")._rpc.allowed


def test_the_client_sends_exactly_one_hex_macaroon(fake, connect):
    """The fake refuses calls without exactly one hex ``macaroon`` entry; the client's calls pass it."""
    backend = connect("read")
    assert backend.get_info().pubkey == fake.node.info.pubkey
    channel = grpc.secure_channel(fake.host, grpc.ssl_channel_credentials(fake.cert_path.read_bytes()))
    m = METHODS["GetInfo"]
    call = channel.unary_unary(m.path, request_serializer=m.request.SerializeToString,
                               response_deserializer=m.response.FromString)  # fmt: skip
    mac = fake.macaroons.bake(minimal_ops("read")).hex()
    for metadata, text in (((), "expected 1 macaroon, got 0"),
                           ((("macaroon", mac), ("macaroon", mac)), "expected 1 macaroon, got 2"),
                           ((("macaroon", "zz"),), "not hex")):  # fmt: skip
        with pytest.raises(grpc.RpcError) as err:
            call(m.request(), metadata=metadata, timeout=5)
        assert err.value.code() is grpc.StatusCode.UNKNOWN and text in err.value.details()
    assert call(m.request(), metadata=(("macaroon", mac),), timeout=5).identity_pubkey
    channel.close()


def test_a_macaroon_from_another_node_is_a_clear_config_error(fake, connect):
    other = FakeMacaroons(root_key=b"another lnd").bake(minimal_ops("read"))
    path = fake.folder / "other.macaroon"
    path.write_bytes(other)
    with pytest.raises(ConfigError, match="was not issued by the lnd at"):
        LndBackend.connect(fake.settings(path), clock=fake.node.clock)


def test_expired_and_revoked_macaroons_are_named(fake, connect):
    now = fake.node.clock.now()
    expired = fake.write_macaroon("old.macaroon", minimal_ops("read"), expires=now - 1)
    with pytest.raises(ConfigError, match="has expired"):
        LndBackend.connect(fake.settings(expired), clock=fake.node.clock)
    revoked = fake.write_macaroon("revoked.macaroon", minimal_ops("read"), root_key_id=4711)
    fake.macaroons.revoked.add(4711)
    with pytest.raises(ConfigError, match="revoked"):
        LndBackend.connect(fake.settings(revoked), clock=fake.node.clock)


def test_a_macaroon_revoked_while_running_stops_with_the_reason(fake, connect):
    backend = connect("read", ops=minimal_ops("read"), name="r.macaroon")
    fake.macaroons.root_key = b"lnd reset its macaroon database"
    with pytest.raises(Exception, match="was not issued by the lnd") as err:
        backend.list_channels()
    assert type(err.value).__name__ == "LndAuthError"


def test_a_macaroon_without_the_self_check_permission_still_works(fake, connect, caplog):
    with caplog.at_level(logging.WARNING):
        backend = connect("read", ops=minimal_ops("read", self_check=False))
    assert backend.permissions.scope == "unchecked"
    assert any("CheckMacaroonPermissions" in r.getMessage() for r in caplog.records)
    assert backend.list_channels()


def test_a_macaroon_lacking_a_read_method_stops_at_start(connect):
    ops = minimal_ops("read") - {"uri:/routerrpc.Router/SubscribeHtlcEvents"}
    with pytest.raises(ConfigError, match="lacks SubscribeHtlcEvents"):
        connect("read", ops=ops)


def test_unreachable_node_and_wrong_certificate(fake, tmp_path):
    from lnlens_testing.lnd import make_tls_cert

    mac = fake.write_macaroon("lnlens.macaroon", minimal_ops("read"))
    settings = fake.settings(mac)
    fake.stop()
    with pytest.raises(BackendUnavailable, match="cannot reach lnd at 127.0.0.1"):
        LndBackend.connect(settings, clock=fake.node.clock)
    fake.start()
    other = tmp_path / "other.cert"
    other.write_bytes(make_tls_cert()[0])
    with pytest.raises(BackendUnavailable, match="does not match the one lnd serves"):
        LndBackend.connect(replace(settings, tlscert=other), clock=fake.node.clock)


def test_wrong_network_is_a_config_error(fake, connect):
    mac = fake.write_macaroon("lnlens.macaroon", minimal_ops("read"))
    with pytest.raises(ConfigError, match='runs on regtest, but lnlens is set up for mainnet: set network = "regtest"'):
        LndBackend.connect(replace(fake.settings(mac), network="mainnet"), clock=fake.node.clock)


def test_lndrpc_rejects_a_mistyped_request(connect):
    rpc: LndRpc = connect("read")._rpc
    with pytest.raises(TypeError, match="GetInfo takes GetInfoRequest"):
        rpc.call("GetInfo", METHODS["FeeReport"].request())


def test_a_locked_or_starting_lnd_is_unavailable_not_rejected(fake, connect):
    mac = fake.write_macaroon("lnlens.macaroon", minimal_ops("read"))
    fake.fail_next("/lnrpc.Lightning/CheckMacaroonPermissions", grpc.StatusCode.UNKNOWN,
                   "wallet locked, unlock it to enable full RPC access")  # fmt: skip
    with pytest.raises(BackendUnavailable, match="is not ready: wallet locked"):
        LndBackend.connect(fake.settings(mac), clock=fake.node.clock)
    backend = connect("read")
    fake.fail_next("/lnrpc.Lightning/ListChannels", grpc.StatusCode.UNAVAILABLE, "transport is closing")
    with pytest.raises(BackendUnavailable, match="cannot reach lnd"):
        backend.list_channels()
    assert backend.list_channels()


def test_permission_checks_name_the_permissions_explicitly(fake, connect):
    """An lnd older than check_default_perms_from_full_method ignores that field and checks an empty list,
    which every macaroon passes: lnlens always sends lnd's default permissions of the method it asks about."""
    connect("read")
    checks = fake.permission_checks
    assert len(checks) >= 7
    assert all(c.permissions and not c.check_default_perms_from_full_method for c in checks)
    by_method = {c.fullMethod: {f"{p.entity}:{p.action}" for p in c.permissions} for c in checks}
    assert by_method["/lnrpc.Lightning/OpenChannelSync"] == {"onchain:write", "offchain:write"}
    assert by_method["/routerrpc.Router/SubscribeHtlcEvents"] == {"offchain:read"}


@pytest.mark.parametrize(
    ("code", "details", "error", "text"),
    [
        (grpc.StatusCode.DEADLINE_EXCEEDED, "deadline", BackendUnavailable, "did not answer ListChannels within"),
        (grpc.StatusCode.UNIMPLEMENTED, "unknown method", BackendRejected, "does not implement ListChannels"),
        (grpc.StatusCode.UNKNOWN, "server is still in the process of starting", BackendUnavailable, "not ready"),
        (grpc.StatusCode.INTERNAL, "boom", BackendRejected, "lnd refused ListChannels: INTERNAL: boom"),
    ],
)
def test_grpc_errors_become_lnlens_errors(connect, fake, code, details, error, text):
    backend = connect("read")
    fake.fail_next("/lnrpc.Lightning/ListChannels", code, details)
    with pytest.raises(error, match=text) as err:
        backend.list_channels()
    assert type(err.value).__name__ not in ("LndAuthError", "MethodRefused")


def test_the_readmes_fee_applying_macaroon_is_quiet_on_read_only_commands(connect, caplog):
    # The README's bake line, UpdateChannelPolicy included (for `dry_run = false`), used by `lnd status`.
    with caplog.at_level(logging.INFO):
        backend = connect("read", ops=minimal_ops("apply"))
    assert not backend.permissions.excess_write and "your funds" not in caplog.text
    assert not [r for r in caplog.records if r.name.startswith("lnlens_lnd") and r.levelno >= logging.WARNING]
    assert any("UpdateChannelPolicy" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)


def test_the_status_permission_is_optional_and_named_when_missing(connect):
    without = connect("apply")
    assert "UpdateChanStatus" in without.permissions.optional_missing and without.permissions.missing == ()
    assert Capability.DISABLE_CHANNEL not in without.capabilities
    assert "uri:/routerrpc.Router/UpdateChanStatus" in without.capability_gaps[Capability.DISABLE_CHANNEL]
    assert bake_command("apply", optional=["UpdateChanStatus"]).endswith("uri:/routerrpc.Router/UpdateChanStatus")
    with pytest.raises(ValueError, match="not optional methods in read mode"):
        bake_command("read", optional=["UpdateChanStatus"])
    with_it = connect("apply", ops=minimal_ops("apply", optional=["UpdateChanStatus"]))
    assert Capability.DISABLE_CHANNEL in with_it.capabilities and with_it.capability_gaps == {}
    store = Store()
    try:
        line = status_data(without, store)["macaroon"]["with_optional_command"]
    finally:
        store.close()
    assert line.endswith("uri:/routerrpc.Router/UpdateChanStatus")
