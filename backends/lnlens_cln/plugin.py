"""The ``lnlens-cln`` Core Lightning plugin: options, init, notifications and the lens-* methods.

A thin adapter (DESIGN.md 5.5): options come from :data:`lnlens_core.config.SETTINGS`,
``init`` builds a :class:`~lnlens_core.config.LensConfig` (a bad option disables the
plugin with the reason, never crashes lightningd), ``forward_event`` payloads become
:class:`~lnlens_core.domain.HtlcEvent` records for the worker, and each method in
:data:`lnlens_cln.methods.METHODS` is registered from the table.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any

from lnlens_core.clock import Clock, SystemClock
from lnlens_core.config import SETTINGS, LensConfig
from lnlens_core.errors import ConfigError, LnlensError
from lnlens_core.extras import require
from lnlens_core.memory import share_one_heap
from lnlens_core.storage import Store

from .convert import forward_from_cln
from .methods import METHODS, RpcMethod, bind
from .replies import ANALYSIS_FAILED, LensRpcError
from .service import LensService, default_rpc_factory

__all__ = ["build_plugin", "main", "option_defaults"]

log = logging.getLogger(__name__)


def option_defaults() -> dict[str, Any]:
    """Each ``lens-*`` option's default as the manifest states it (None: computed at init)."""
    out: dict[str, Any] = {}
    for s in SETTINGS:
        if s.default is None:
            out[s.cln_option] = None
        elif isinstance(s.default, bool):
            out[s.cln_option] = "true" if s.default else "false"
        else:
            out[s.cln_option] = str(s.default) if s.cln_type == "string" else s.default
    return out


def _check_paths(config: LensConfig) -> list[str]:
    problems = []
    for option, path in (("lens-policy", config.policy_path), ("lens-model", config.model_path)):
        if path is not None and not path.is_file():
            problems.append(f"{option}: no such file: {path}")
    return problems


def configure(options: Mapping[str, Any], lightning_dir: str) -> LensConfig:
    """The validated config from init's options.

    :raises ConfigError: every bad option, by its ``lens-`` name; or the database cannot be opened.
    """
    given = {k: v for k, v in options.items() if k.startswith("lens-") and v is not None}
    config = LensConfig.from_cln_options(given, lightning_dir)
    problems = _check_paths(config)
    if not config.db_path.parent.is_dir():
        # A typo in the path must not leave a new, empty history somewhere unexpected.
        problems.append(f"lens-db: the folder {config.db_path.parent} does not exist (create it, or fix the path)")
    if problems:
        raise ConfigError(problems)
    try:
        Store(config.db_path).close()  # fail at init, naming the file, rather than later in the worker
    except LnlensError as exc:
        raise ConfigError(f"lens-db: {exc}") from exc
    return config


def _log_handler(plugin: Any) -> logging.Handler:
    from pyln.client.plugin import PluginLogHandler

    return PluginLogHandler(plugin)


def _reply_error(request: Any, message: str, code: int) -> None:
    """A JSON-RPC error with code and message only: pyln's ``set_exception`` adds the plugin's traceback."""
    from pyln.client.plugin import RequestState

    request._write_result({"jsonrpc": "2.0", "id": request.id, "error": {"code": code, "message": message}})
    request.state = RequestState.FAILED


def _register(plugin: Any, method: RpcMethod, service: dict[str, LensService]) -> None:
    def handler(request: Any, *args: Any, **kwargs: Any) -> None:
        def reply(value: Any) -> None:
            if isinstance(value, LensRpcError):
                _reply_error(request, value.message, value.code)
            else:
                request.set_result(value)

        try:
            method.handler(service["lens"], bind(method, args, kwargs), reply)
        except LensRpcError as exc:  # answered, not raised: pyln would log a traceback for a user's typo
            reply(exc)
        except Exception as exc:  # noqa: BLE001 - never a traceback in a reply: it goes to the log instead
            log.exception("lnlens: %s failed", method.name)
            reply(LensRpcError(f"{method.name}: internal error ({type(exc).__name__}: {exc}); see lightningd's log",
                               ANALYSIS_FAILED))  # fmt: skip

    handler.__signature__ = method.signature()  # type: ignore[attr-defined]
    handler.__doc__ = method.summary
    plugin.add_method(method.name, handler, background=True, description=method.summary)


ALERT_TOPIC = "lens_alert"


def build_plugin(*, clock: Clock | None = None) -> Any:
    """A pyln ``Plugin`` with lnlens's options, subscriptions and methods; call ``.run()``.

    :raises MissingExtra: pyln-client is not installed (``pip install 'lnlens[cln]'``).
    """
    pyln = require("pyln.client", extra="cln", what="the Core Lightning plugin")
    plugin = pyln.Plugin(dynamic=True)
    defaults = option_defaults()
    for s in SETTINGS:
        plugin.add_option(name=s.cln_option, default=defaults[s.cln_option], description=s.description,
                          opt_type=s.cln_type)  # fmt: skip
    service: dict[str, LensService] = {}
    # Alerts (depleted or stuck channels, failure spikes) go out as a custom notification topic.
    plugin.add_notification_topic(ALERT_TOPIC)

    @plugin.init()
    def init(options: dict[str, Any], configuration: dict[str, Any], plugin: Any, **kwargs: Any) -> Any:
        handler = _log_handler(plugin)
        logging.getLogger("lnlens_core").addHandler(handler)
        logging.getLogger("lnlens_cln").addHandler(handler)
        logging.getLogger("lnlens_core").setLevel(logging.INFO)
        logging.getLogger("lnlens_cln").setLevel(logging.INFO)
        try:
            config = configure(options, configuration["lightning-dir"])
        except ConfigError as exc:
            # lightningd logs a plugin's disable reason at DEBUG only: say it where an operator looks too.
            plugin.log(f"lnlens: disabled: {exc}", level="warn")
            return {"disable": f"lnlens: {exc}"}

        def on_alerts(alerts: list[dict[str, Any]]) -> None:
            for alert in alerts:
                plugin.notify(ALERT_TOPIC, alert)

        lens = LensService(config, default_rpc_factory(configuration["lightning-dir"], configuration["rpc-file"]),
                           clock=clock or SystemClock(), on_alerts=on_alerts)  # fmt: skip
        service["lens"] = lens
        lens.start()
        return None

    @plugin.subscribe("forward_event")
    def on_forward_event(plugin: Any, forward_event: dict[str, Any], **kwargs: Any) -> None:
        try:
            event = forward_from_cln(forward_event)
        except ValueError as exc:
            log.warning("lnlens: ignoring a forward_event it cannot read: %s", exc)
            return
        service["lens"].offer_live(event)

    def on_channel_change(plugin: Any, **kwargs: Any) -> None:
        if "lens" in service:
            service["lens"].channels_changed()

    for topic in ("channel_opened", "channel_state_changed"):
        plugin.add_subscription(topic, on_channel_change)

    @plugin.subscribe("shutdown")
    def on_shutdown(plugin: Any, **kwargs: Any) -> None:
        if "lens" in service:
            service["lens"].stop()
        sys.exit(0)

    for method in METHODS:
        _register(plugin, method, service)
    return plugin


def main() -> None:
    """Entry point of the ``lnlens-cln`` console script."""
    share_one_heap()  # before the worker's and the model's threads (lnlens_core.memory)
    build_plugin().run()


if __name__ == "__main__":
    main()
