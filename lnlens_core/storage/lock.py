"""The database's one writer lock: whoever changes fees on the node holds it.

Planning and applying fees, and rolling them back, read the journal (cooldowns, the daily
cap) and then write it. Two writers at once (two ``policy apply``, the CLI beside the CLN
plugin or the LND sidecar) would each see the other's changes too late and change one
channel twice. So every writer takes this lock first: an exclusive ``flock`` on
``<db>.lock`` (mode 0600) next to the database, which the system releases when the
holder dies, holding a line that names the holder (pid, command, since when) so a
refused writer can say who has it. Within one process it is reentrant for the thread that
holds it, and excludes the process's other threads (a daemon's tick and a request).
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from ..clock import Clock, SystemClock
from ..errors import StoreError

__all__ = ["WriterBusy", "writer_lock", "lock_path", "default_holder"]

_POLL_S = 0.05


class WriterBusy(StoreError):
    """Another process (or thread) holds the database's writer lock; the message names it."""


class _Held:
    def __init__(self) -> None:
        self.guard = threading.Lock()  # protects the fields below
        self.owner: int | None = None  # thread ident
        self.depth = 0
        self.fd: int | None = None
        self.holder = ""
        self.free = threading.Condition(self.guard)


_registry: dict[str, _Held] = {}
_registry_lock = threading.Lock()


def lock_path(db_path: Path) -> Path:
    """The lock file of the database at ``db_path``: ``<db>.lock``."""
    return db_path.with_name(db_path.name + ".lock")


def default_holder() -> str:
    """This process's command line, as a lock holder names itself."""
    argv = [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]]
    return " ".join(argv)


def _describe(info: str, fallback: str) -> str:
    try:
        data = json.loads(info)
        since = datetime.fromtimestamp(float(data["since"]), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"pid {int(data['pid'])} ({data['command']}) since {since}"
    except (ValueError, KeyError, TypeError):
        return fallback


def _busy(where: str, who: str) -> WriterBusy:
    return WriterBusy(f"{where}: another writer is changing fees: {who}; nothing was changed, try again later")


@contextmanager
def writer_lock(
    db_path: Path | None, *, key: str | None = None, holder: str | None = None, wait_s: float = 0.0,
    clock: Clock | None = None,
) -> Iterator[None]:
    """Hold the writer lock of the database at ``db_path`` (None: an in-memory database, locked
    within this process only, under ``key``).

    :param holder: what the holder calls itself in a refusal (default: this command line).
    :param wait_s: how long to wait for a busy lock before giving up (0: do not wait).
    :raises WriterBusy: the lock is still held by someone else after ``wait_s``.
    :raises StoreError: the lock file cannot be created.
    """
    clock = clock or SystemClock()
    name = str(db_path.resolve()) if db_path is not None else f"memory:{key}"
    where = str(db_path) if db_path is not None else ":memory:"
    with _registry_lock:
        held = _registry.setdefault(name, _Held())
    me = threading.get_ident()
    deadline = clock.now() + max(0.0, wait_s)
    with held.guard:
        while held.owner not in (None, me):
            left = deadline - clock.now()
            if left <= 0:
                raise _busy(where, _describe(held.holder, "another thread of this process"))
            held.free.wait(min(left, _POLL_S * 4))
        if held.owner == me:
            held.depth += 1
            reentered = True
        else:
            held.owner, held.depth, reentered = me, 1, False
    if not reentered:
        try:
            info = json.dumps({"pid": os.getpid(), "command": holder or default_holder(), "since": clock.now()})
            held.fd = _lock_file(lock_path(db_path), where, info, deadline, clock) if db_path is not None else None
            held.holder = info
        except BaseException:
            with held.guard:
                _release(held)
                held.free.notify_all()
            raise
    try:
        yield
    finally:
        with held.guard:
            held.depth -= 1
            if held.depth == 0:
                _release(held)
                held.free.notify_all()


def _release(held: _Held) -> None:
    fd, held.fd, held.owner, held.depth, held.holder = held.fd, None, None, 0, ""
    if fd is not None:
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the file releases the flock


def _lock_file(path: Path, where: str, info: str, deadline: float, clock: Clock) -> int:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"{path}: cannot create the database's lock file ({exc.strerror or exc})") from None
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if clock.now() >= deadline:
                try:
                    who = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
                finally:
                    os.close(fd)
                raise _busy(where, _describe(who, "another process")) from None
            clock.sleep(_POLL_S)
    os.ftruncate(fd, 0)
    os.pwrite(fd, (info + "\n").encode(), 0)
    return fd
