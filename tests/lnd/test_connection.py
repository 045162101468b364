"""Settings, default paths as lnd's tools use them, lndconnect URIs."""

from __future__ import annotations

import base64
import ssl

import pytest
from lnlens_lnd.backend import LndBackend
from lnlens_lnd.connection import LndSettings, der_to_pem, load_credentials, parse_lndconnect
from lnlens_testing.lnd import make_tls_cert, minimal_ops

from lnlens_core.cli import main
from lnlens_core.clock import SystemClock
from lnlens_core.errors import BackendUnavailable, ConfigError


def _lnddir(tmp_path, network="mainnet", names=("readonly.macaroon", "admin.macaroon")):
    lnddir = tmp_path / "lnd"
    (lnddir / "data" / "chain" / "bitcoin" / network).mkdir(parents=True)
    (lnddir / "tls.cert").write_bytes(make_tls_cert()[0])
    for name in names:
        (lnddir / "data" / "chain" / "bitcoin" / network / name).write_bytes(name.encode())
    return lnddir


def test_defaults_are_lnds():
    s = LndSettings.from_sources({}, env={})
    assert (s.host, s.network, s.mode) == ("localhost:10009", "mainnet", "read")
    assert str(s.macaroon_dir).endswith(".lnd/data/chain/bitcoin/mainnet")


def test_layers_table_env_flags_and_all_problems_at_once():
    s = LndSettings.from_sources({"host": "a:1", "network": "signet"}, env={"LNLENS_LND_HOST": "b:2"},
                                 flags={"network": "regtest"})  # fmt: skip
    assert (s.host, s.network) == ("b:2", "regtest")
    with pytest.raises(ConfigError) as err:
        LndSettings.from_sources({"host": "nohost", "network": "moon", "colour": 1, "timeout": "0s"}, env={})
    problems = err.value.problems
    assert len(problems) == 4 and any(p.startswith("lnd.colour: unknown setting") for p in problems)
    assert any("lnd.network: 'moon' is not one of" in p for p in problems)


def test_macaroon_preference_by_mode(tmp_path):
    lnddir = _lnddir(tmp_path)
    read = load_credentials(LndSettings(lnddir=lnddir))
    assert read.macaroon == b"readonly.macaroon" and read.macaroon_source.endswith("mainnet/readonly.macaroon")
    apply = load_credentials(LndSettings(lnddir=lnddir, mode="apply"))
    assert apply.macaroon == b"admin.macaroon"  # readonly cannot apply fees; admin gets the loud warning at start
    (lnddir / "data/chain/bitcoin/mainnet/lnlens.macaroon").write_bytes(b"baked")
    assert load_credentials(LndSettings(lnddir=lnddir, mode="apply")).macaroon == b"baked"


def test_missing_macaroon_names_the_paths_and_the_network_that_has_one(tmp_path):
    lnddir = _lnddir(tmp_path, network="signet")
    with pytest.raises(ConfigError) as err:
        load_credentials(LndSettings(lnddir=lnddir))
    text = str(err.value)
    assert "no macaroon for mainnet" in text and "mainnet/lnlens.macaroon" in text
    assert 'macaroons exist for signet: set network = "signet"' in text
    assert load_credentials(LndSettings(lnddir=lnddir, network="signet")).macaroon == b"readonly.macaroon"


def test_missing_or_wrong_certificate_file(tmp_path):
    with pytest.raises(ConfigError, match=r"lnd.tlscert: .*tls.cert does not exist \(set tlscert"):
        load_credentials(LndSettings(lnddir=tmp_path / "nowhere"))
    bad = tmp_path / "tls.cert"
    for text in ("not a certificate", "-----BEGIN CERTIFICATE-----\n", "-----BEGIN CERTIFICATE-----\n!!\n"
                 "-----END CERTIFICATE-----\n"):  # fmt: skip
        bad.write_text(text)
        with pytest.raises(ConfigError, match="is not a PEM certificate"):
            load_credentials(LndSettings(tlscert=bad, macaroon=bad))
    with pytest.raises(ConfigError, match="lnd.macaroon: .*nope.macaroon does not exist"):
        load_credentials(LndSettings(lnddir=_lnddir(tmp_path), macaroon=tmp_path / "nope.macaroon"))


def _uri(host: str, der: bytes | None, macaroon: bytes) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    cert = f"cert={b64(der)}&" if der is not None else ""
    return f"lndconnect://{host}?{cert}macaroon={b64(macaroon)}"


def test_lndconnect_parses_and_rejects():
    der = ssl.PEM_cert_to_DER_cert(make_tls_cert()[0].decode())
    target, pem, mac = parse_lndconnect(_uri("node.example:10009", der, b"\x02\x01mac"))
    assert target == "node.example:10009" and mac == b"\x02\x01mac" and pem == der_to_pem(der)
    assert parse_lndconnect(_uri("[::1]:10009", None, b"m"))[1] is None
    for bad, text in (("https://x:1?macaroon=AA", "lndconnect://"), ("lndconnect://x?macaroon=AA", "HOST:PORT"),
                      ("lndconnect://x:1?cert=AA", "no macaroon")):  # fmt: skip
        with pytest.raises(ValueError, match=text):
            parse_lndconnect(bad)
    with pytest.raises(ConfigError, match="lnd.lndconnect: "):
        LndSettings.from_sources({"lndconnect": "lndconnect://x:1"}, env={})


def test_an_lndconnect_cert_that_is_not_a_certificate_is_one_clear_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LNLENS_DATA_DIR", str(tmp_path))
    uri = _uri("127.0.0.1:1", b"\x30\x82 not a certificate", b"\x02\x01mac")
    with pytest.raises(ValueError, match="cert= is not a certificate"):
        parse_lndconnect(uri)
    assert main(["lnd", "status", "--lndconnect", uri]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cert= is not a certificate" in err and "grpc" not in err.lower()


def test_connect_through_an_lndconnect_uri(fake):
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    der = x509.load_pem_x509_certificate(fake.cert_path.read_bytes()).public_bytes(Encoding.DER)
    uri = _uri(fake.host, der, fake.macaroons.bake(minimal_ops("read")))
    backend = LndBackend.connect(LndSettings.from_sources({"lndconnect": uri, "network": "regtest"}, env={}),
                                 clock=fake.node.clock)  # fmt: skip
    try:
        assert backend.get_info().pubkey == fake.node.info.pubkey
        assert backend.permissions.scope == "minimal"
    finally:
        backend.close()


def test_a_host_that_never_answers_tls_is_unreachable_not_a_certificate_mismatch(tmp_path):
    import socket
    import threading

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    accepted: list = []

    def accept() -> None:
        try:
            while True:
                accepted.append(silent.accept()[0])  # held open, never a byte of TLS
        except OSError:
            return

    threading.Thread(target=accept, daemon=True).start()
    (tmp_path / "tls.cert").write_bytes(make_tls_cert()[0])
    (tmp_path / "m.macaroon").write_bytes(b"\x02\x01mac")
    table = {"host": f"127.0.0.1:{silent.getsockname()[1]}", "tlscert": str(tmp_path / "tls.cert"),
             "macaroon": str(tmp_path / "m.macaroon"), "network": "regtest"}  # fmt: skip
    try:
        with pytest.raises(BackendUnavailable) as info:
            LndBackend.connect(LndSettings.from_sources(table, env={}), clock=SystemClock())
    finally:
        silent.close()
        for conn in accepted:
            conn.close()
    message = str(info.value)
    assert "unreachable" in message and "never completed a TLS handshake" in message
    assert "certificate" not in message and "does not match" not in message
