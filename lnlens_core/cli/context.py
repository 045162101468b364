"""What a CLI command handler gets: settings, store and output, built lazily."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from rich.console import Console

from ..clock import Clock, ManualClock, SystemClock
from ..config import LensConfig, load, parse_duration
from ..domain import ChannelId
from ..lens import Lens
from ..model.registry import ModelRegistry
from ..plugins import get_plugin_manager
from ..storage import Store, private_dir
from ..untrusted import console


def to_jsonable(value: Any) -> Any:
    """Plain JSON values from domain records: ids as ``BLOCKxTXxOUT``, enums as their value."""
    if isinstance(value, ChannelId):
        return str(value)
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    return value


class CliContext:
    """Lazily built settings, store, clock and console for one command."""

    def __init__(self, args: argparse.Namespace, *, cli_settings: dict[str, Any] | None = None) -> None:
        self.args = args
        self.clock = SystemClock()
        self.console = console()
        self.err = console(stderr=True)
        self._config: LensConfig | None = None
        self._store: Store | None = None
        self._lens: Lens | None = None
        self._cli_settings = cli_settings or {}
        self._on_close: list[Callable[[], None]] = []
        self._locks: list[AbstractContextManager[None]] = []

    def config(self, **overrides: Any) -> LensConfig:
        if self._config is None:
            cli = {"db_path": self.args.db} if getattr(self.args, "db", None) else {}
            cli.update(self._cli_settings)
            cli.update({k: v for k, v in overrides.items() if v is not None})
            config_path = Path(self.args.config) if getattr(self.args, "config", None) else None
            self._config = load(config_path=config_path, cli=cli, backend_tables=("sim", "lnd", "policy", "analyzer"))
        return self._config

    def store(self, *, readonly: bool = False, create: bool = False) -> Store:
        """The database. ``readonly`` (read-only commands): opened for reading only, never written or created.
        ``create`` (commands that gather data: ``sim run``, ``monitor``, ``serve``, ``--backend``): a missing file
        is created (0600), and the default data directory (0700) with it; a folder named by ``--db`` never is.
        Every other command needs an existing database, so a mistyped ``--db`` is one clear error."""
        if self._store is not None and self._store.readonly and not readonly:
            self._store.close()  # a command that reads first and then writes: reopen for writing
            self._store = self._lens = None
        if self._store is None:
            config = self.config()
            if create and config.db_path == config.data_dir / "lnlens.sqlite3":
                private_dir(config.data_dir)
            self._store = Store(config.db_path, readonly=readonly, create=create)
        return self._store

    def now(self) -> float:
        """"Now" for this command: the wall clock, or for a simulator's database the time of its newest data."""
        return self.lens(readonly=True).clock.now()

    def lens(self, *, readonly: bool = False) -> Lens:
        """A Lens over the store with no backend. For a simulator's database, "now" is the
        simulated time of its newest data, so windows like ``--since 24h`` mean simulated hours."""
        if self._lens is None or self._lens.store is not self.store(readonly=readonly):
            store = self.store(readonly=readonly)
            clock: Clock = self.clock
            if store.get_meta("clock") == "simulated":
                manual = ManualClock(store.latest_data_time() or 0.0)
                clock = manual
            config = self.config()
            self._lens = Lens(config, store=store, clock=clock, pm=get_plugin_manager(blocked=config.blocked_plugins))
        return self._lens

    def model_registry(self) -> ModelRegistry:
        """The liquidity model's versions: the store's ``model_runs``, their files under ``<data_dir>/models``,
        and the ``model_path`` setting when one is configured."""
        config = self.config()
        return ModelRegistry(self.store(), config.data_dir / "models", configured=config.model_path)

    def hold_writer_lock(self, *, wait_s: float = 0.0) -> None:
        """Hold the database's writer lock (:mod:`lnlens_core.storage.lock`) until the command has ended,
        after its closing actions (a simulator's state is saved under it).

        :raises WriterBusy: another process changes fees on this database now (the message names it).
        """
        lock = self.store(create=True).writer_lock(wait_s=wait_s)
        lock.__enter__()
        self._locks.append(lock)

    def emit(self, data: Any, render: Callable[[Console], None]) -> None:
        """Print ``data`` as JSON with ``--json``, else let ``render`` draw it for people."""
        if getattr(self.args, "json", False):
            json.dump(to_jsonable(data), sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            render(self.console)

    def on_close(self, action: Callable[[], None]) -> None:
        """Run ``action`` when the command ends, before the store closes (e.g. saving a simulator's state)."""
        self._on_close.append(action)

    def close(self) -> None:
        try:
            for action in self._on_close:
                action()
        finally:
            if self._store is not None:
                self._store.close()
            while self._locks:
                self._locks.pop().__exit__(None, None, None)


MAX_DAYS = 3650  # ten years: the longest window or simulation a flag accepts


def duration_arg(text: str) -> int:
    """An argparse type: a positive duration (``600``, ``10m``, ``24h``, ``7d``) in seconds, at most MAX_DAYS."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("must be longer than 0")
    if seconds > MAX_DAYS * 86_400:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_DAYS} days")
    return seconds


def duration_or_zero_arg(text: str) -> int:
    """An argparse type: :func:`duration_arg`, or 0 (nothing)."""
    return 0 if text.strip() in ("0", "0s", "0m", "0h", "0d", "0w") else duration_arg(text)


def int_arg(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` (to ``high``); anything else is refused with the range."""
    span = f"from {low} to {high}" if high is not None else f"{low} or more"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {span}, not {value}")
        return value

    parse.__name__ = "whole number"
    return parse


def float_arg(low: float, high: float, *, above: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number from ``low`` (exclusive with ``above``) to ``high``; no nan, no inf."""
    span = f"{'more than' if above else 'from'} {low:g} {'and at most' if above else 'to'} {high:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (value > low if above else value >= low) or not value <= high:  # also refuses nan
            raise argparse.ArgumentTypeError(f"must be {span}, not {text}")
        return value

    parse.__name__ = "number"
    return parse


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
