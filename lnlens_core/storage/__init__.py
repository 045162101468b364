"""The SQLite store: all of lnlens's SQL lives in this package.

:mod:`.schema` holds the migrations, :mod:`.rows` the row conversions and
:mod:`.store` the :class:`Store` with every query.
"""

from .rows import channel_from_row, forward_from_row
from .store import JOURNAL_STATES, PRUNABLE, Store

__all__ = ["Store", "PRUNABLE", "JOURNAL_STATES", "forward_from_row", "channel_from_row"]
