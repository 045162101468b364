"""The committed message modules in lnlens_lnd/_proto are what `make proto` generates from lnlens_lnd/proto/*.proto."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("grpc_tools", reason="grpcio-tools (dev extra) regenerates the stubs")

from lnlens_lnd import protogen  # noqa: E402

_MODULES = ("lightning_pb2.py", "router_pb2.py", "walletkit_pb2.py")


def _descriptor(path: Path) -> bytes:
    text = path.read_text(encoding="utf-8")
    start = text.index("AddSerializedFile(") + len("AddSerializedFile(")
    return ast.literal_eval(text[start : text.index(")\n", start)])


def test_committed_stubs_are_current(tmp_path):
    fresh = protogen.generate(tmp_path)
    committed = protogen.OUT_DIR
    for path in fresh:
        assert (committed / path.name).exists(), f"{path.name} is missing: run `make proto`"
    for name in _MODULES:
        assert _descriptor(tmp_path / name) == _descriptor(committed / name), f"{name} is stale: run `make proto`"
    # Byte-for-byte only when this protoc is the one that generated the committed files.
    if _protobuf_version(tmp_path / "router_pb2.py") == _protobuf_version(committed / "router_pb2.py"):
        for path in fresh:
            assert path.read_text() == (committed / path.name).read_text(), f"{path.name} differs: run `make proto`"


def _protobuf_version(path: Path) -> str:
    return path.read_text().split("# Protobuf Python Version: ")[1].split("\n")[0]


def test_only_messages_are_generated_and_nothing_leaks_onto_sys_path():
    assert sorted(p.name for p in protogen.OUT_DIR.glob("*.py")) == ["__init__.py", *_MODULES]
    for name in _MODULES:
        imports = [line for line in (protogen.OUT_DIR / name).read_text().splitlines() if line.startswith("import ")]
        assert imports == [], imports  # the messages import only google.protobuf
    assert importlib.util.find_spec("lightning_pb2") is None


def test_service_paths_match_lnd():
    from lnlens_lnd._proto import lightning_pb2, router_pb2, walletkit_pb2
    from lnlens_lnd.rpc import METHODS

    lightning = lightning_pb2.DESCRIPTOR.services_by_name["Lightning"]
    router = router_pb2.DESCRIPTOR.services_by_name["Router"]
    walletkit = walletkit_pb2.DESCRIPTOR.services_by_name["WalletKit"]
    paths = {f"/{s.full_name}/{m.name}" for s in (lightning, router, walletkit) for m in s.methods}
    assert paths == {m.path for m in METHODS.values()}
    # A few field numbers lnd uses, straight from the descriptors (REFERENCE.md B2).
    fields = lightning_pb2.DESCRIPTOR.message_types_by_name
    assert fields["PolicyUpdateRequest"].fields_by_name["inbound_fee"].number == 10
    assert fields["PolicyUpdateRequest"].fields_by_name["fee_rate_ppm"].number == 9
    assert fields["ForwardingEvent"].fields_by_name["incoming_htlc_id"].number == 14
    assert fields["ListChannelsResponse"].fields_by_name["channels"].number == 11
    assert router_pb2.DESCRIPTOR.message_types_by_name["HtlcEvent"].fields_by_name["final_htlc_event"].number == 12
    status = router_pb2.DESCRIPTOR.message_types_by_name["UpdateChanStatusRequest"].fields_by_name
    assert (status["chan_point"].number, status["action"].number) == (1, 2)
    assert (router_pb2.ENABLE, router_pb2.DISABLE, router_pb2.AUTO) == (0, 1, 2)
    # The optional inputs' fields, checked against lnd's lightning.proto and walletkit.proto.
    numbers = {
        ("NodeInfoRequest", "pub_key"): 1, ("NodeInfo", "num_channels"): 2, ("NodeInfo", "total_capacity"): 3,
        ("GetTransactionsRequest", "start_height"): 1, ("GetTransactionsRequest", "end_height"): 2,
        ("TransactionDetails", "transactions"): 1, ("Transaction", "tx_hash"): 1, ("Transaction", "block_height"): 5,
        ("Transaction", "total_fees"): 7, ("GetInfoResponse", "synced_to_chain"): 9,
    }  # fmt: skip
    for (message, name), number in numbers.items():
        assert fields[message].fields_by_name[name].number == number, (message, name)
    estimate = walletkit_pb2.DESCRIPTOR.message_types_by_name
    assert estimate["EstimateFeeRequest"].fields_by_name["conf_target"].number == 1
    assert estimate["EstimateFeeResponse"].fields_by_name["sat_per_kw"].number == 1
