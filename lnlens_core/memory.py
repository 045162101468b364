"""Handing freed memory back to the system, for the long-running adapters (the CLN plugin, the LND sidecar).

An analysis or a start-up rebuild frees what it built, but glibc's allocator keeps the freed pages of its heaps
for later, so without this a daemon's RSS stays at its highest point since it started.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable

__all__ = ["release_free_memory"]


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):  # not glibc (musl, macOS): nothing to hand back this way
        return None


def release_free_memory() -> bool:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim(0)``; elsewhere nothing).

    :returns: whether the allocator could be asked (False off glibc).
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
