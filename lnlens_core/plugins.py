"""The plugin manager: built-in and third-party hook implementations, loaded the same way.

Third-party plugins are distributions with an entry point in the ``lnlens`` group
(``<name> = "lnlens_fee_<name>"``). Built-in modules register through the same
hooks. ``check_pending()`` makes a misspelt hook implementation fail at startup
instead of silently never being called. ``LNLENS_TRACE_PLUGINS=1`` logs every hook call.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError

__all__ = ["DEFAULT_PLUGINS", "get_plugin_manager", "list_plugins", "PluginInfo", "call_each"]

log = logging.getLogger(__name__)

DEFAULT_PLUGINS: tuple[str, ...] = ("lnlens_core.fees.builtin",)


def get_plugin_manager(*, load_entrypoints: bool = True, blocked: Iterable[str] = ()) -> pluggy.PluginManager:
    """Build a plugin manager with the hookspecs, the entry-point plugins and the built-ins.

    :param load_entrypoints: False in tests, so only what a test registers is loaded.
    :param blocked: plugin names (entry-point names) never to load.
    :raises PluginError: a plugin implements a hook that does not exist, or fails to import.
    """
    pm = pluggy.PluginManager("lnlens")
    pm.add_hookspecs(hookspecs)
    for name in blocked:
        pm.set_blocked(name)
    if load_entrypoints:
        try:
            pm.load_setuptools_entrypoints("lnlens")
        except Exception as exc:  # noqa: BLE001 - any import error of a third-party plugin must name it
            raise PluginError(f"a plugin in entry-point group 'lnlens' failed to load: {exc!r}") from exc
    for module in DEFAULT_PLUGINS:
        if not pm.is_blocked(module):
            pm.register(importlib.import_module(module), name=module)
    check(pm)
    if os.environ.get("LNLENS_TRACE_PLUGINS"):
        pm.add_hookcall_monitoring(_trace_before, _trace_after)
    return pm


def check(pm: pluggy.PluginManager) -> None:
    """Fail if any registered plugin implements a hook that is not declared."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        raise PluginError(f"plugin {name}: {exc.args[0] if exc.args else exc}") from exc


def _trace_before(hook_name: str, impls: list[Any], kwargs: dict[str, Any]) -> None:
    log.info("hook %s -> %s", hook_name, [impl.plugin_name for impl in impls])


def _trace_after(outcome: Any, hook_name: str, impls: list[Any], kwargs: dict[str, Any]) -> None:
    log.info("hook %s returned %r", hook_name, outcome.get_result() if outcome.exception is None else outcome.exception)


def call_each(hook: Any, **kwargs: Any) -> Iterator[tuple[str, Callable[[], Any]]]:
    """Yield ``(plugin_name, call)`` for every implementation of ``hook``, in call order.

    pluggy stops at the first exception; calling implementations one at a time lets
    the host isolate them and attribute each result to its plugin.
    """
    for impl in reversed(hook.get_hookimpls()):  # pluggy calls the last registered first
        args = [kwargs[name] for name in impl.argnames]
        yield impl.plugin_name, (lambda impl=impl, args=args: impl.function(*args))


@dataclass(frozen=True, slots=True)
class PluginInfo:
    name: str
    version: str | None
    hooks: tuple[str, ...]
    builtin: bool


def list_plugins(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Every loaded plugin with its distribution version and the hooks it implements."""
    versions = {pm.get_name(plugin): dist.version for plugin, dist in pm.list_plugin_distinfo()}
    out = []
    for plugin in pm.get_plugins():
        name = pm.get_name(plugin) or repr(plugin)
        hooks = tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or ()))
        out.append(PluginInfo(name, versions.get(name), hooks, name in DEFAULT_PLUGINS))
    return sorted(out, key=lambda p: (p.builtin, p.name))
