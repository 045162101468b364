"""The one chokepoint every lnd call goes through, and what the macaroon allows.

:class:`LndRpc` holds the gRPC channel privately and builds a callable only for
the methods on its allowlist (:mod:`.methods`): the few lnlens uses, the optional
read-only inputs some policy keys need, and ``UpdateChannelPolicy`` only in
``apply`` mode. Anything else (payments, channel opens or closes, spending) is
refused before a byte reaches the wire. No stub is exposed: callers name a method
and pass a request.

Every call carries exactly one ``macaroon`` metadata entry (hex of the file's
bytes) and a deadline. gRPC errors become lnlens errors with a message an operator
can act on (:mod:`.errors`); :func:`check_permissions` asks lnd at start what the
macaroon allows (:mod:`.permissions`).
"""

from .client import HtlcStream, LndRpc
from .errors import LndAuthError, LndNotFound, MethodRefused, translate
from .methods import (
    EXCESS_PROBES,
    METHODS,
    MODE_METHODS,
    OPTIONAL_METHODS,
    OPTIONAL_WRITE_METHODS,
    Method,
    grpc,
    ln,
    router,
    wallet,
)
from .permissions import PermissionReport, check_permissions

__all__ = [
    "LndRpc",
    "HtlcStream",
    "Method",
    "METHODS",
    "MODE_METHODS",
    "OPTIONAL_METHODS",
    "OPTIONAL_WRITE_METHODS",
    "MethodRefused",
    "LndAuthError",
    "LndNotFound",
    "PermissionReport",
    "check_permissions",
    "translate",
    "EXCESS_PROBES",
    "grpc",
    "ln",
    "router",
    "wallet",
]
