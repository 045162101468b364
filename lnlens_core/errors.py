"""The lnlens error tree.

Per-item failures (one channel, one strategy, one plugin call) are recorded and
the run continues; only unrecoverable errors abort. Every message names what it
is about (file, line, field, channel, plugin) so that no traceback is ever needed
to understand it.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "LnlensError",
    "ConfigError",
    "BackendError",
    "BackendUnavailable",
    "BackendRejected",
    "PluginError",
    "StrategyError",
    "ModelError",
    "StoreError",
    "MissingExtra",
]


class LnlensError(Exception):
    """Base of every error lnlens raises on purpose."""


class ConfigError(LnlensError):
    """Configuration is invalid. Carries every problem found, not just the first.

    :param problems: one line each, naming the source (file:line, option, flag) and field.
    """

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems: tuple[str, ...] = (problems,) if isinstance(problems, str) else tuple(problems)
        super().__init__("; ".join(self.problems))


class BackendError(LnlensError):
    """The node backend failed."""


class BackendUnavailable(BackendError):
    """Transient: the node is unreachable, starting or locked. Retry with backoff."""


class BackendRejected(BackendError):
    """This call is wrong (unknown channel, refused policy, forbidden method). Record and continue."""


class PluginError(LnlensError):
    """A plugin misbehaved (duplicate strategy name, wrong return type). Names the plugin."""


class StrategyError(LnlensError):
    """A fee strategy failed for one channel; that channel is kept unchanged."""


class ModelError(LnlensError):
    """The model cannot be used (missing runtime, feature mismatch); lnlens runs rule-based."""


class StoreError(LnlensError):
    """The database cannot be opened or is not an lnlens database. Names the file."""


class MissingExtra(LnlensError, ImportError):
    """An optional dependency is not installed; the message gives the pip line to run.

    Also an ImportError, so a command whose adapter cannot load still shows up in
    ``lnlens --help`` and fails with this message.
    """

    def __init__(self, what: str, extra: str, module: str) -> None:
        self.extra = extra
        super().__init__(f"{what} needs the '{module}' package: pip install 'lnlens[{extra}]'")
