"""The plugin side of lightningd, played exactly enough to run a real plugin executable.

:class:`PluginProcess` spawns the plugin with lightningd's environment
(``LIGHTNINGD_PLUGIN=1``, ``LIGHTNINGD_VERSION``) in ``<lightning-dir>``, sends
``getmanifest`` and ``init`` (``configuration`` + ``options``), frames every object
with ``"\\n\\n"``, uses string ids (``cln:getmanifest#1``), parses the plugin's output
incrementally and fails on anything that is not JSON-RPC (lightningd kills such a
plugin). :meth:`PluginProcess.cli` maps arguments the way lightning-cli does.
"""

from __future__ import annotations

import codecs
import json
import os
import subprocess
import threading
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["PluginProcess", "PluginError", "ProtocolViolation", "cli_params"]

LIGHTNINGD_VERSION = "v26.06-lnlens-standin"


class PluginError(Exception):
    """The plugin answered a request with a JSON-RPC error."""

    def __init__(self, method: str, error: Mapping[str, Any]) -> None:
        super().__init__(f"{method}: {error.get('code')}: {error.get('message')}")
        self.method, self.error = method, dict(error)
        self.code, self.message = error.get("code"), error.get("message")


class ProtocolViolation(Exception):
    """The plugin wrote something lightningd would kill it for."""


def cli_params(args: Sequence[str]) -> list[Any] | dict[str, Any]:
    """lightning-cli's mapping: keyword mode if the first argument has ``=``; JSON literals sent raw."""

    def value(text: str) -> Any:
        try:
            return json.loads(text)
        except ValueError:
            return text

    if args and "=" in args[0]:
        return {k: value(v) for k, v in (a.split("=", 1) for a in args)}
    return [value(a) for a in args]


class PluginProcess:
    """One running plugin, driven as lightningd drives it.

    :param lightning_dir: absolute ``<lightning-dir>/<network>``; the plugin's cwd.
    :param rpc_file: the socket's name inside it.
    """

    def __init__(self, command: Sequence[str], lightning_dir: str, *, rpc_file: str = "lightning-rpc",
                 network: str = "regtest", env: Mapping[str, str] | None = None) -> None:  # fmt: skip
        self.command = list(command)
        self.lightning_dir = lightning_dir
        self.rpc_file = rpc_file
        self.network = network
        self.env = {**os.environ, **(env or {}), "LIGHTNINGD_PLUGIN": "1", "LIGHTNINGD_VERSION": LIGHTNINGD_VERSION}
        self.proc: subprocess.Popen[bytes] | None = None
        self.manifest: dict[str, Any] = {}
        self.logs: list[tuple[str, str]] = []
        self.notifications: list[tuple[str, Any]] = []
        """Notifications the plugin sent (other than logs): (topic, params)."""
        self.violations: list[str] = []
        self._next = 0
        self._pending: dict[str, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._reader: threading.Thread | None = None

    # -- process ------------------------------------------------------------------------

    def start(self, options: Mapping[str, Any] | None = None, *, startup: bool = True,
              timeout: float = 60.0) -> Any:  # fmt: skip
        """Spawn, ``getmanifest``, ``init``; returns init's result (``{"disable": ...}`` or None/{})."""
        self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=self.lightning_dir, env=self.env)  # fmt: skip
        self._reader = threading.Thread(target=self._read, name="standin-plugin-stdout", daemon=True)
        self._reader.start()
        self.manifest = self.request("getmanifest", {"allow-deprecated-apis": False}, timeout=timeout)
        if self.manifest.get("nonnumericids") is not True:
            raise ProtocolViolation("manifest lacks nonnumericids: true")
        values = {o["name"]: o["default"] for o in self.manifest["options"] if "default" in o}
        values.update(options or {})
        configuration = {"lightning-dir": self.lightning_dir, "rpc-file": self.rpc_file, "startup": startup,
                         "network": self.network, "feature_set": {"init": "", "node": "", "channel": "",
                                                                  "invoice": ""}}  # fmt: skip
        return self.request("init", {"options": values, "configuration": configuration}, timeout=timeout)

    def subscribed(self, topic: str) -> bool:
        subs = self.manifest.get("subscriptions", [])
        return topic in subs or "*" in subs

    def stop(self, timeout: float = 30.0) -> int:
        """``plugin stop``: the ``shutdown`` notification if subscribed, SIGKILL after ``timeout``."""
        assert self.proc is not None
        if self.proc.poll() is None and self.subscribed("shutdown"):
            self.notify("shutdown", {})
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._close_pipes()
        return code

    def kill(self) -> None:
        """A crash: the process dies without notice."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_pipes()

    def _close_pipes(self) -> None:
        assert self.proc is not None
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- protocol -----------------------------------------------------------------------

    def _send(self, obj: Mapping[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        with self._write_lock:
            self.proc.stdin.write(json.dumps(obj).encode() + b"\n\n")
            self.proc.stdin.flush()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        decoder, text = json.JSONDecoder(), codecs.getincrementaldecoder("utf-8")()
        buf = ""
        stdout = self.proc.stdout
        for chunk in iter(lambda: stdout.read1(1 << 20), b""):  # type: ignore[attr-defined]  # typeshed says IO[bytes]; Popen gives a BufferedReader
            buf += text.decode(chunk)
            # Parse only when the data read ends like an object does: a large answer arrives in
            # many chunks, and decoding the growing buffer after each would be quadratic.
            if not buf.rstrip().endswith("}"):
                continue
            while True:
                rest = buf.lstrip()
                if not rest:
                    buf = ""
                    break
                try:
                    obj, end = decoder.raw_decode(rest)
                except json.JSONDecodeError:
                    if not rest.startswith("{"):
                        self.violations.append(f"non-JSON output: {rest[:200]!r}")
                        buf = ""
                    break
                buf = rest[end:]
                self._dispatch(obj)
        with self._lock:  # the plugin is gone: nothing pending will ever be answered
            for event, box in self._pending.values():
                box.append({"error": {"code": -4, "message": "Plugin terminated before replying to RPC call."}})
                event.set()

    def _dispatch(self, obj: dict[str, Any]) -> None:
        if obj.get("jsonrpc") != "2.0":
            self.violations.append(f"object without jsonrpc 2.0: {obj!r}")
            return
        if "id" in obj and ("result" in obj or "error" in obj):
            with self._lock:
                waiter = self._pending.pop(str(obj["id"]), None)
            if waiter is None:
                self.violations.append(f"answer to an unknown id: {obj['id']!r}")
                return
            waiter[1].append(obj)
            waiter[0].set()
            return
        if obj.get("method") == "log":
            params = obj["params"].get("log", obj["params"])
            if params.get("level") not in ("trace", "debug", "info", "unusual", "broken", "warn", "error"):
                self.violations.append(f"log with unknown level: {params!r}")
            self.logs.append((params.get("level"), params.get("message")))
        elif "method" in obj and "id" not in obj:
            self.notifications.append((obj["method"], obj.get("params")))

    def request(self, method: str, params: Any, *, timeout: float = 30.0, prefix: str = "cln") -> Any:
        """Send a request and wait for the answer; raises :class:`PluginError` on an error answer."""
        with self._lock:
            self._next += 1
            req_id = f"{prefix}:{method}#{self._next}"
            event, box = threading.Event(), list[dict[str, Any]]()
            self._pending[req_id] = (event, box)
        self._send({"jsonrpc": "2.0", "id": req_id, "method": method, "params": params})
        if not event.wait(timeout):
            raise TimeoutError(f"{method}: no answer within {timeout} s")
        answer = box[0]
        if "error" in answer:
            raise PluginError(method, answer["error"])
        return answer["result"]

    def call(self, method: str, params: Any = None, *, timeout: float = 30.0) -> Any:
        """A method call routed from a user, as lightningd passes it through (params verbatim)."""
        return self.request(method, {} if params is None else params, timeout=timeout, prefix="cli")

    def cli(self, method: str, *args: str, timeout: float = 30.0) -> Any:
        """``lightning-cli METHOD ARGS...``."""
        return self.call(method, cli_params(args), timeout=timeout)

    def notify(self, topic: str, payload: Mapping[str, Any]) -> None:
        """A notification in lightningd's current shape: ``params: {topic: payload}``."""
        self._send({"jsonrpc": "2.0", "method": topic, "params": {topic: dict(payload)}})
