"""Optional dependencies: import them through :func:`require`, so a missing extra says how to fix it."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingExtra

__all__ = ["require"]


def require(module: str, *, extra: str, what: str) -> ModuleType:
    """Import ``module`` or fail at once with the ``pip install 'lnlens[extra]'`` line to run.

    :param what: who needs it, for the message ("the Core Lightning plugin").
    :raises MissingExtra: the module (or one it imports) is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(what, extra, module) from exc
