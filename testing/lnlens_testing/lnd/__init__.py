"""A fake lnd for tests, the benchmark and the docs: gRPC over TLS, backed by a SimNode.

:class:`FakeLnd` serves the same proto subset lnlens uses on ``127.0.0.1`` with a
self-signed certificate made on the spot. Nothing is canned: GetInfo, ListChannels,
FeeReport, GetChanInfo and UpdateChannelPolicy read and change the simulator, the
forwarding log and the HTLC event stream are filled from the forwards the simulator
produces, and the server can drop its streams, stop and start again.

Macaroons are *not* real macaroons. A fake macaroon is ``fakemac1.<base64 JSON>.<hex
HMAC-SHA256>``: the JSON holds the granted operations (``entity:action`` or
``uri:/pkg.Service/Method``), a root key id and an optional expiry; the HMAC is keyed
by the server's root key. What the fake checks, as lnd does, on every call:

- exactly one ``macaroon`` metadata entry, hex-encoded (else ``expected 1 macaroon, got N``);
- the signature (a macaroon from another server: ``verification failed: signature mismatch``);
- the expiry against the simulation clock (``macaroon has expired``);
- a revoked root key id (``root key with id N doesn't exist``);
- the method's permission: its ``uri:`` operation or all of lnd's default
  ``entity:action`` operations for it (else ``permission denied``).

All of these answer ``UNKNOWN`` with that text, as lnd does. CheckMacaroonPermissions
answers ``valid`` or ``INVALID_ARGUMENT``.

:mod:`.example` runs the README's LND example against it (``python -m lnlens_testing.lnd.example``).
"""

from .auth import ADMIN, DEFAULT_PERMS, READONLY, FakeMacaroons, make_tls_cert, minimal_ops
from .harness import LndHarness, sim_node
from .server import FakeLnd
from .servicers import htlc_messages

__all__ = [
    "FakeLnd",
    "FakeMacaroons",
    "make_tls_cert",
    "DEFAULT_PERMS",
    "ADMIN",
    "READONLY",
    "minimal_ops",
    "LndHarness",
    "sim_node",
    "htlc_messages",
]
