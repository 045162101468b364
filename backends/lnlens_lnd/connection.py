"""Where lnd is and how to prove who we are: settings, default paths, lndconnect URIs.

Settings come from the ``[lnd]`` table of the lnlens settings file, then
``LNLENS_LND_*`` environment variables, then command-line flags (later wins).
Without explicit paths lnlens looks where lnd's own tools do: ``~/.lnd/tls.cert``
and ``~/.lnd/data/chain/bitcoin/<network>/`` for the macaroon, preferring a
purpose-baked ``lnlens.macaroon`` over ``readonly.macaroon`` (read mode) and
``admin.macaroon`` (last resort, with a loud warning at start).
"""

from __future__ import annotations

import base64
import os
import ssl
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lnlens_core.config import parse_duration
from lnlens_core.errors import ConfigError

__all__ = ["LndSettings", "Credentials", "NETWORKS", "MODES", "load_credentials", "parse_lndconnect", "der_to_pem"]

NETWORKS = ("mainnet", "testnet", "testnet4", "signet", "regtest", "simnet")
MODES = ("read", "apply", "auto")
"""``auto``: ``apply`` when the macaroon allows UpdateChannelPolicy, else ``read`` (the policy commands' backend)."""
DEFAULT_HOST = "localhost:10009"
MACAROON_NAME = "lnlens.macaroon"
_ENV = {
    "host": "LNLENS_LND_HOST",
    "lnddir": "LNLENS_LND_DIR",
    "network": "LNLENS_LND_NETWORK",
    "tlscert": "LNLENS_LND_TLSCERT",
    "macaroon": "LNLENS_LND_MACAROON",
    "lndconnect": "LNLENS_LND_LNDCONNECT",
}
_KEYS = (
    "host",
    "lnddir",
    "network",
    "tlscert",
    "macaroon",
    "macaroon_hex",
    "lndconnect",
    "tls_server_name",
    "timeout",
    "accept_positive_inbound_fees",
)


@dataclass(frozen=True, slots=True)
class LndSettings:
    """How to reach lnd. Paths left None are found as lnd's tools find them.

    :param mode: ``read`` (monitoring), ``apply`` (also UpdateChannelPolicy) or ``auto`` (apply if the
        macaroon allows it, else read).
    :param accept_positive_inbound_fees: lnd was started with ``accept-positive-inbound-fees``
        (no RPC reports it, so it is a setting).
    """

    host: str = DEFAULT_HOST
    lnddir: Path = Path("~/.lnd")
    network: str = "mainnet"
    tlscert: Path | None = None
    macaroon: Path | None = None
    macaroon_hex: str | None = None
    lndconnect: str | None = None
    tls_server_name: str | None = None
    timeout_s: float = 30.0
    accept_positive_inbound_fees: bool = False
    mode: str = "read"

    @classmethod
    def from_sources(
        cls,
        table: Mapping[str, Any] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        flags: Mapping[str, Any] | None = None,
        mode: str = "read",
    ) -> LndSettings:
        """Merge the ``[lnd]`` table, ``LNLENS_LND_*`` variables and flags; validate all at once.

        :raises ConfigError: listing every unknown key and bad value, each named by its source.
        """
        env = os.environ if env is None else env
        problems: list[str] = []
        raw: dict[str, tuple[Any, str]] = {}
        for key, value in (table or {}).items():
            if key not in _KEYS:
                problems.append(f"lnd.{key}: unknown setting (accepted: {', '.join(sorted(_KEYS))})")
            else:
                raw[key] = (value, f"lnd.{key}")
        for key, var in _ENV.items():
            if env.get(var):
                raw[key] = (env[var], var)
        for key, value in (flags or {}).items():
            if value is not None:
                raw[key] = (value, f"--{key.replace('_', '-')}")
        values: dict[str, Any] = {"mode": mode}
        if mode not in MODES:
            problems.append(f"mode: {mode!r} is not one of {', '.join(MODES)}")
        for key, (value, where) in raw.items():
            try:
                values.update(_parse(key, value))
            except (TypeError, ValueError) as exc:
                problems.append(f"{where}: {exc}")
        if problems:
            raise ConfigError(problems)
        return cls(**values)

    @property
    def macaroon_dir(self) -> Path:
        return self.lnddir.expanduser() / "data" / "chain" / "bitcoin" / self.network


def _parse(key: str, value: Any) -> dict[str, Any]:
    if key in ("tlscert", "macaroon", "lnddir"):
        if not str(value).strip():
            raise ValueError("must be a path")
        return {key: Path(str(value)).expanduser()}
    if key == "network":
        if value not in NETWORKS:
            raise ValueError(f"{value!r} is not one of {', '.join(NETWORKS)}")
        return {key: value}
    if key == "timeout":
        seconds = parse_duration(value)
        if seconds < 1:
            raise ValueError("must be at least 1 second")
        return {"timeout_s": float(seconds)}
    if key == "accept_positive_inbound_fees":
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return {key: value}
    if key == "host":
        host, _, port = str(value).rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"want HOST:PORT, got {value!r}")
        return {key: str(value)}
    if key == "macaroon_hex":
        text = str(value).strip()
        bytes.fromhex(text)  # ValueError names the problem
        return {key: text}
    if key == "lndconnect":
        parse_lndconnect(str(value))
        return {key: str(value)}
    return {key: str(value)}


@dataclass(frozen=True, slots=True)
class Credentials:
    """Everything needed to open the channel: target, TLS roots and the macaroon."""

    target: str
    root_pem: bytes | None
    macaroon: bytes
    macaroon_source: str
    """Where the macaroon came from (a path, ``lndconnect``, ``macaroon_hex``), for messages."""
    tls_source: str


def der_to_pem(der: bytes) -> bytes:
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n".encode()


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_lndconnect(uri: str) -> tuple[str, bytes | None, bytes]:
    """``lndconnect://HOST:PORT?cert=<base64url DER>&macaroon=<base64url>`` -> (target, PEM or None, macaroon).

    :raises ValueError: naming what is wrong with the URI.
    """
    parts = urlsplit(uri.strip())
    if parts.scheme != "lndconnect":
        raise ValueError("an lndconnect URI starts with lndconnect://")
    if not parts.hostname or not parts.port:
        raise ValueError("the lndconnect URI has no HOST:PORT")
    query = parse_qs(parts.query)
    if "macaroon" not in query:
        raise ValueError("the lndconnect URI has no macaroon= parameter")
    try:
        macaroon = _b64url(query["macaroon"][0])
        pem = der_to_pem(_b64url(query["cert"][0])) if "cert" in query else None
    except ValueError as exc:  # binascii.Error is a ValueError
        raise ValueError(f"the lndconnect URI is not valid base64url: {exc}") from None
    if pem is not None and not _is_pem_certificate(pem):
        raise ValueError("the lndconnect URI's cert= is not a certificate (it carries lnd's tls.cert as base64url DER)")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{parts.port}", pem, macaroon


def _is_pem_certificate(pem: bytes) -> bool:
    text = pem.decode("ascii", "replace")
    start, end = text.find("-----BEGIN CERTIFICATE-----"), text.find("-----END CERTIFICATE-----")
    if start < 0 or end < start:
        return False
    try:  # OpenSSL parses it as a trust root, as gRPC will: base64 of anything else is refused here
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=text[start : end + 25])
    except (ValueError, ssl.SSLError):
        return False
    return True


def _macaroon_candidates(settings: LndSettings) -> list[Path]:
    names = [MACAROON_NAME, "readonly.macaroon", "admin.macaroon"]
    if settings.mode != "read":
        names.remove("readonly.macaroon")  # it cannot call UpdateChannelPolicy
    return [settings.macaroon_dir / name for name in names]


def _other_networks(settings: LndSettings) -> list[str]:
    base = settings.lnddir.expanduser() / "data" / "chain" / "bitcoin"
    return [n for n in NETWORKS if n != settings.network and any((base / n).glob("*.macaroon"))]


def _read(path: Path, what: str, hint: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what}: {path} does not exist{hint}") from None
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path} ({exc.strerror})") from None


def load_credentials(settings: LndSettings) -> Credentials:
    """Read the TLS certificate and the macaroon the settings point to (or the defaults).

    :raises ConfigError: a file is missing or unreadable, naming the path and what to set.
    """
    if settings.lndconnect:
        target, pem, macaroon = parse_lndconnect(settings.lndconnect)
        tls_source = "lndconnect" if pem else "the system's trusted roots (the lndconnect URI has no cert)"
        return Credentials(target, pem, macaroon, "lndconnect URI", tls_source)
    cert_path = settings.tlscert or settings.lnddir.expanduser() / "tls.cert"
    pem = _read(cert_path, "lnd.tlscert", ' (set tlscert = "/path/to/lnd/tls.cert" in [lnd], or lnddir)')
    if not _is_pem_certificate(pem):
        raise ConfigError(f"lnd.tlscert: {cert_path} is not a PEM certificate (lnd's tls.cert is)")
    if settings.macaroon_hex:
        return Credentials(settings.host, pem, bytes.fromhex(settings.macaroon_hex), "lnd.macaroon_hex", str(cert_path))
    if settings.macaroon is not None:
        macaroon = _read(settings.macaroon, "lnd.macaroon", "")
        return Credentials(settings.host, pem, macaroon, str(settings.macaroon), str(cert_path))
    candidates = _macaroon_candidates(settings)
    for path in candidates:
        if path.is_file():
            return Credentials(settings.host, pem, _read(path, "lnd.macaroon", ""), str(path), str(cert_path))
    others = _other_networks(settings)
    hint = f'; macaroons exist for {", ".join(others)}: set network = "{others[0]}" in [lnd]' if others else ""
    tried = ", ".join(str(p) for p in candidates)
    raise ConfigError(f"lnd.macaroon: no macaroon for {settings.network} (looked for {tried}){hint}")
