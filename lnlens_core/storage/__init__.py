"""The SQLite store: all of lnlens's SQL lives in this package.

:mod:`.schema` holds the migrations, :mod:`.rows` the row conversions and
:mod:`.store` the :class:`Store` with every query and how a file is opened
(``Store(path)`` creates the file, 0600, never its folder; ``Store(path, readonly=True)`` only
reads; :func:`private_dir` makes lnlens's own data directory, 0700), :mod:`.lock` the one writer
lock around changing fees.
"""

from .lock import WriterBusy, writer_lock
from .rows import channel_from_row, forward_from_row
from .store import JOURNAL_STATES, PRUNABLE, Store, private_dir

__all__ = [
    "Store",
    "PRUNABLE",
    "JOURNAL_STATES",
    "forward_from_row",
    "channel_from_row",
    "private_dir",
    "writer_lock",
    "WriterBusy",
]
