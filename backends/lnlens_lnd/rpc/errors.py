"""lnd's gRPC errors as lnlens errors an operator can act on.

lnd reports macaroon problems as ``UNKNOWN`` with text, not as ``PERMISSION_DENIED``,
so the text decides. A missing permission names the ``uri:`` to bake in; for an
optional method also the policy keys that need it.
"""

from __future__ import annotations

from lnlens_core.errors import BackendError, BackendRejected, BackendUnavailable

from ..connection import Credentials
from .methods import METHODS, grpc

__all__ = ["MethodRefused", "LndAuthError", "LndNotFound", "translate"]


class MethodRefused(BackendRejected):
    """lnlens refused to send this call: it is not on the allowlist (nothing reached lnd)."""


class LndAuthError(BackendRejected):
    """lnd refused the macaroon (wrong node, expired, revoked, or lacking a permission)."""


class LndNotFound(BackendRejected):
    """lnd answered NOT_FOUND (an unknown node or channel): an answer, not a failure."""


_AUTH_CODES = (grpc.StatusCode.UNKNOWN, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)
# gRPC's words for a TLS handshake that got no answer (a host or port that accepts TCP but is not lnd's
# gRPC, or a stalled host), as opposed to one that got a certificate it could not verify.
_NO_TLS_ANSWER = ("handshake read failed", "endpoint closing", "handshake timed out", "deadline exceeded")
_NOT_READY = (
    "wallet locked",
    "wallet is locked",
    "starting up",
    "not yet ready",
    "waiting to start",
    "in the process of starting",
    "server is still",
)


def translate(exc: Exception, method: str, creds: Credentials, timeout_s: float) -> BackendError:
    """A gRPC error as the lnlens error an operator can act on."""
    code = exc.code() if hasattr(exc, "code") else None
    details = (exc.details() if hasattr(exc, "details") else None) or str(exc)
    low = details.lower()
    name = method.rsplit("/", 1)[-1]
    if code is grpc.StatusCode.UNAVAILABLE:
        if any(s in low for s in _NO_TLS_ANSWER) and "certificate" not in low:
            return BackendUnavailable(
                f"lnd at {creds.target} is unreachable: it accepted the connection but never completed a TLS "
                f"handshake (timed out: {details}); is this lnd's gRPC address (rpclisten), and is lnd up?"
            )
        if any(s in low for s in ("certificate", "handshake", "ssl", "tls")):
            return BackendUnavailable(
                f"TLS with lnd at {creds.target} failed ({details}): the certificate in {creds.tls_source} does not "
                "match the one lnd serves (lnd regenerates tls.cert when it expires or its hosts change)"
            )
        return BackendUnavailable(
            f"cannot reach lnd at {creds.target} ({details}): is lnd running, and is this its rpclisten address?"
        )
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return BackendUnavailable(f"lnd at {creds.target} did not answer {name} within {timeout_s:g} s")
    if code is grpc.StatusCode.UNIMPLEMENTED:
        if method.startswith("/walletrpc."):
            return BackendRejected(
                f"lnd at {creds.target} does not serve {name}: it was built without the walletrpc sub-server "
                "(release builds include it)"
            )
        return BackendRejected(f"lnd at {creds.target} does not implement {name} (too old a version?)")
    if code is grpc.StatusCode.NOT_FOUND:
        return LndNotFound(f"lnd found nothing for {name}: {details}")
    if any(s in low for s in _NOT_READY):
        return BackendUnavailable(f"lnd at {creds.target} is not ready: {details}")
    if code is not None and code not in _AUTH_CODES:
        # lnd's macaroon checks answer UNKNOWN; any other code is the method's own answer.
        return BackendRejected(f"lnd refused {name}: {code.name}: {details}")
    mac = f"the macaroon from {creds.macaroon_source}"
    if "permission denied" in low:
        return LndAuthError(_denied(mac, method))
    if "expired" in low:
        return LndAuthError(f"{mac} has expired ({details}); bake a new one")
    if "signature mismatch" in low or "verification failed" in low or "cannot get macaroon" in low:
        return LndAuthError(
            f"{mac} was not issued by the lnd at {creds.target} (another node, or its macaroon "
            f"database was reset): {details}"
        )
    if "root key with id" in low or "deletemacaroonid" in low:
        return LndAuthError(f"{mac} was revoked (lncli deletemacaroonid): {details}")
    if "macaroon" in low:
        return LndAuthError(f"lnd refused {mac}: {details}")
    code_name = code.name if code is not None else "ERROR"
    return BackendRejected(f"lnd refused {name}: {code_name}: {details}")


def _denied(mac: str, path: str) -> str:
    known = next((m for m in METHODS.values() if m.path == path), None)
    name = path.rsplit("/", 1)[-1]
    if known is not None and known.needed_by:
        return (
            f"{mac} does not allow {name}, which {known.needed_by} need: add uri:{known.path} to its "
            "`lncli bakemacaroon` line (README, section LND)"
        )
    needs = f"uri:{known.path} or {known.permission}" if known is not None else f"uri:{path}"
    hint = "bake one with `lncli bakemacaroon` as in the lnlens docs (LND section)"
    return f"{mac} does not allow {name} (needs {needs}); {hint}"
