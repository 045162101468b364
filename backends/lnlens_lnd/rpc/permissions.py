"""What the macaroon allows, asked of lnd itself (CheckMacaroonPermissions) at start."""

from __future__ import annotations

from dataclasses import dataclass, field

from lnlens_core.errors import BackendRejected

from .client import LndRpc
from .errors import LndAuthError
from .methods import EXCESS_PROBES, METHODS, MODE_METHODS, OPTIONAL_METHODS, OPTIONAL_WRITE_METHODS, ln

__all__ = ["PermissionReport", "check_permissions"]


@dataclass(frozen=True, slots=True)
class PermissionReport:
    """What the macaroon allows, as far as lnlens cares.

    ``checked`` is False when lnd would not answer CheckMacaroonPermissions for this
    macaroon (it lacks ``uri:/lnrpc.Lightning/CheckMacaroonPermissions``): then
    each call finds out for itself.
    """

    mode: str
    checked: bool
    missing: tuple[str, ...] = ()
    excess: tuple[str, ...] = ()
    """What the macaroon could do beyond lnlens's needs (``send payments``, ...)."""
    excess_write: bool = False
    note: str = ""
    methods: dict[str, bool] = field(default_factory=dict)
    optional_missing: tuple[str, ...] = ()
    """Optional methods (:data:`OPTIONAL_METHODS`) the macaroon does not allow: never a reason to stop, the
    policy keys that need them say so when a run uses them."""

    @property
    def scope(self) -> str:
        if not self.checked:
            return "unchecked"
        if self.missing:
            return "insufficient"
        if self.excess_write:
            return "broad (can write)"
        return "broader than needed (read)" if self.excess else "minimal"


def _allows(rpc: LndRpc, path: str, permissions: tuple[str, ...]) -> bool:
    """Whether the macaroon grants ``permissions`` (lnd's default ones for ``path``) or ``uri:path``.

    The permissions are sent explicitly rather than with ``check_default_perms_from_full_method``: an lnd
    that predates that field ignores it and would then check an empty list, which every macaroon passes.
    """
    perms = [ln.MacaroonPermission(entity=e, action=a) for e, a in (p.split(":") for p in permissions)]
    request = ln.CheckMacPermRequest(macaroon=rpc.creds.macaroon, permissions=perms, fullMethod=path)
    try:
        return bool(rpc.call("CheckMacaroonPermissions", request).valid)
    except LndAuthError:
        raise
    except BackendRejected:
        return False  # lnd answers InvalidArgument when the macaroon lacks the permission


def check_permissions(rpc: LndRpc) -> PermissionReport:
    """Ask lnd (CheckMacaroonPermissions) which methods the macaroon allows.

    The mode's methods decide (``missing``); the optional ones are only reported
    (``optional_missing``), and the excess probes say what else the macaroon could do.

    :raises BackendUnavailable: lnd cannot be reached.
    :raises LndAuthError: lnd does not accept the macaroon at all (wrong node, expired).
    """
    needed = MODE_METHODS[rpc.mode]
    optional = (*OPTIONAL_METHODS, *(OPTIONAL_WRITE_METHODS if rpc.mode == "apply" else ()))
    methods: dict[str, bool] = {}
    try:
        for name in (*needed, *optional):
            methods[METHODS[name].path] = _allows(rpc, METHODS[name].path, (METHODS[name].permission,))
    except LndAuthError as exc:
        if "does not allow CheckMacaroonPermissions" not in str(exc):
            raise
        return PermissionReport(
            rpc.mode,
            False,
            note=(
                "cannot check the macaroon's permissions: it lacks uri:/lnrpc.Lightning/CheckMacaroonPermissions "
                "(add it when baking, see the docs)"
            ),
        )
    missing = tuple(name for name in needed if not methods[METHODS[name].path])
    optional_missing = tuple(name for name in optional if not methods[METHODS[name].path])
    excess, write = [], False
    probes = list(EXCESS_PROBES)
    if rpc.mode == "read":
        update = METHODS["UpdateChannelPolicy"]
        probes.insert(0, (update.path, (update.permission,), "change fees while lnlens runs read-only", True))
    for path, permissions, what, is_write in probes:
        if _allows(rpc, path, permissions):
            methods[path] = True
            excess.append(what)
            write = write or is_write
    return PermissionReport(
        rpc.mode, True, missing, tuple(excess), write, methods=methods, optional_missing=optional_missing
    )
