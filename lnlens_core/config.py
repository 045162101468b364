"""Settings: one validated, frozen :class:`LensConfig` from CLN options, a TOML file or CLI flags.

:data:`SETTINGS` is the single table of settings: the CLN plugin declares its
``lens-*`` options from it, the TOML loader accepts its keys, and the CLI builds its
flags from it. Layers resolve in one function, :func:`resolve`: defaults < TOML
file < ``LNLENS_*`` environment < CLI flags. Validation collects every problem and
raises one :class:`ConfigError` listing them all.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .errors import ConfigError

__all__ = ["Setting", "SETTINGS", "LensConfig", "resolve", "load_toml", "parse_duration", "default_data_dir"]

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str | int) -> int:
    """Seconds from ``600``, ``"600s"``, ``"10m"``, ``"1h"``, ``"7d"`` or ``"2w"``.

    :raises ValueError: for anything else, negative numbers included.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a duration cannot be negative: {value}")
        return value
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"not a duration (like 600, 10m, 1h, 7d): {value!r}")
    return int(match[1]) * _UNIT_S[match[2]]


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean (true/false): {value!r}")


def _parse_path(value: Any) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):  # `db = 5` in a settings file: a path is written in quotes
        raise ValueError(f"must be a path in quotes, not {value!r}")
    if str(value).strip() == "":
        return None
    if "\0" in str(value):
        raise ValueError(f"not a path: {value!r}")
    return Path(os.path.expanduser(str(value)))


def _parse_positive_duration(value: Any) -> int:
    seconds = parse_duration(value)
    if seconds == 0:
        raise ValueError("must be at least 1 second")
    return seconds


def _parse_port(value: Any) -> int | None:
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"not a TCP port (1-65535): {value!r}")
    return int(text)


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting, as every source names it."""

    field: str
    cln_option: str
    toml_key: str
    cli_flag: str
    parse: Callable[[Any], Any]
    cln_type: str
    default: Any
    description: str


SETTINGS: tuple[Setting, ...] = (
    Setting("db_path", "lens-db", "db", "--db", _parse_path, "string", None,
            "SQLite database file (default: lnlens.sqlite3 in the lightning-dir for CLN, else in the data dir)"),
    # A string for lightningd, parsed here: lightningd refuses a bad "bool" value by exiting at start-up.
    Setting("dry_run", "lens-dry-run", "dry_run", "--dry-run", _parse_bool, "string", True,
            "Plan fee changes without applying them (true or false)"),
    Setting("policy_path", "lens-policy", "policy", "--policy", _parse_path, "string", None,
            "charge-lnd-format fee policy file (no fee changes when unset)"),
    Setting("interval_s", "lens-interval", "interval", "--interval", _parse_positive_duration, "string", 600,
            "Cadence of analysis and policy runs (600, 10m, 1h)"),
    Setting("model_path", "lens-model", "model", "--model", _parse_path, "string", None,
            "ONNX liquidity model (default: the model shipped with lnlens)"),
    Setting("http_port", "lens-http-port", "http_port", "--http-port", _parse_port, "string", None,
            "Serve the read-only API, stream and dashboard on 127.0.0.1 at this port (off when unset)"),
)  # fmt: skip
_BY_FIELD = {s.field: s for s in SETTINGS}
_TOML_TABLES = ("plugins",)


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$LNLENS_DATA_DIR``, else ``$XDG_DATA_HOME/lnlens``, else ``~/.local/share/lnlens``."""
    env = os.environ if env is None else env
    if env.get("LNLENS_DATA_DIR"):
        return Path(env["LNLENS_DATA_DIR"]).expanduser()
    base = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "lnlens"


@dataclass(frozen=True, slots=True)
class LensConfig:
    """The validated settings of one lnlens process."""

    data_dir: Path
    db_path: Path
    dry_run: bool = True
    policy_path: Path | None = None
    interval_s: int = 600
    model_path: Path | None = None
    http_port: int | None = None
    blocked_plugins: tuple[str, ...] = ()
    plugins: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    backends: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    table_keys: Mapping[str, str] = field(default_factory=dict)
    """``"table.key"`` of the settings file's tables → ``"file:line: table.key"``, for errors found later."""

    def name_of(self, dotted: str) -> str:
        """How to name a table setting (``"analyzer.min_failures"``) in an error: with file and line if known."""
        return self.table_keys.get(dotted, dotted)

    @classmethod
    def from_cln_options(cls, options: Mapping[str, Any], lightning_dir: str | Path) -> LensConfig:
        """Build from the ``lens-*`` options lightningd passes to ``init``.

        :raises ConfigError: listing every bad option by its ``lens-`` name.
        """
        values = {s.field: options[s.cln_option] for s in SETTINGS if s.cln_option in options}
        if not values.get("db_path"):
            values["db_path"] = str(Path(lightning_dir) / "lnlens.sqlite3")
        return resolve(
            data_dir=Path(lightning_dir), layers=[("option", values, {s.field: s.cln_option for s in SETTINGS})]
        )


def _line_of(text: str, key: str, start: int = 0, end: int | None = None) -> int | None:
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=", re.MULTILINE)
    match = pattern.search(text, start, len(text) if end is None else end)
    return text.count("\n", 0, match.start()) + 1 if match else None


def load_toml(path: Path) -> tuple[dict[str, Any], Callable[..., str]]:
    """Read a settings file.

    :returns: the table, and a function naming ``file:line`` for a key, or for a key of a table (for errors).
    :raises ConfigError: the file is missing or not valid TOML (with line and column).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read settings file ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a settings file (TOML is UTF-8 text; byte {exc.start} is not)") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc

    def where(key: str, table: str | None = None) -> str:
        if table is None:
            line = _line_of(text, key)
        else:  # a key of `[table]`: looked for between its header and the next one
            header = re.search(rf"^\s*\[\s*{re.escape(table)}\s*\]", text, re.MULTILINE)
            following = re.compile(r"^\s*\[", re.MULTILINE).search(text, header.end()) if header else None
            line = _line_of(text, key, header.end(), following.start() if following else None) if header else None
            key = f"{table}.{key}"
        return f"{path}:{line}: {key}" if line else f"{path}: {key}"

    return data, where


def resolve_secrets(value: Any, where: str, problems: list[str]) -> Any:
    """Replace ``{"$env": NAME}`` and ``{"$file": PATH}`` (at any depth) by what they point to."""
    if isinstance(value, Mapping):
        if set(value) == {"$env"}:
            name = str(value["$env"])
            if name not in os.environ:
                problems.append(f"{where}: environment variable {name} is not set")
                return None
            return os.environ[name]
        if set(value) == {"$file"}:
            try:
                return Path(str(value["$file"])).expanduser().read_text(encoding="utf-8").strip()
            except OSError as exc:
                problems.append(f"{where}: cannot read {value['$file']} ({exc.strerror})")
                return None
        return {k: resolve_secrets(v, f"{where}.{k}", problems) for k, v in value.items()}
    return value


Layer = tuple[str, Mapping[str, Any], Mapping[str, str]]  # (source kind, field -> raw value, field -> name to report)


def resolve(
    *,
    data_dir: Path,
    layers: list[Layer],
    toml_tables: Mapping[str, Any] | None = None,
    table_keys: Mapping[str, str] | None = None,
) -> LensConfig:
    """Merge layers (later wins) over the defaults and validate the result.

    :param layers: ``(source, {field: raw value}, {field: how to name it in errors})``.
    :param toml_tables: the non-setting tables of the TOML file (``plugins``, backends).
    :param table_keys: how to name those tables' keys in later errors (``file:line``).
    :raises ConfigError: listing every problem found.
    """
    problems: list[str] = []
    values: dict[str, Any] = {s.field: s.default for s in SETTINGS}
    for _source, raw, names in layers:
        for name, value in raw.items():
            setting = _BY_FIELD[name]
            try:
                values[name] = setting.parse(value)
            except ValueError as exc:
                problems.append(f"{names.get(name, name)}: {exc}")
    tables = dict(toml_tables or {})
    plugins_table = dict(tables.pop("plugins", {}) or {})
    blocked = plugins_table.pop("block", [])
    if not isinstance(blocked, list) or not all(isinstance(b, str) for b in blocked):
        problems.append("plugins.block: must be a list of plugin names")
        blocked = []
    plugin_cfg = {name: resolve_secrets(cfg, f"plugins.{name}", problems) for name, cfg in plugins_table.items()}
    for name, cfg in plugin_cfg.items():
        if not isinstance(cfg, Mapping):
            problems.append(f"plugins.{name}: must be a table")
    backends = {name: resolve_secrets(cfg, name, problems) for name, cfg in tables.items()}
    if problems:
        raise ConfigError(problems)
    if values["db_path"] is None:
        values["db_path"] = data_dir / "lnlens.sqlite3"
    return LensConfig(
        data_dir=data_dir,
        blocked_plugins=tuple(blocked),
        plugins=MappingProxyType(plugin_cfg),
        backends=MappingProxyType(backends),
        table_keys=MappingProxyType(dict(table_keys or {})),
        **values,
    )


def load(
    *,
    config_path: Path | None = None,
    cli: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    backend_tables: tuple[str, ...] = (),
) -> LensConfig:
    """Resolve the settings of a CLI or sidecar process.

    :param config_path: the TOML file (``--config``, else ``$LNLENS_CONFIG``); optional.
    :param cli: ``{field: raw value}`` from command-line flags that were given.
    :param backend_tables: TOML tables besides ``plugins`` that adapters read (``lnd``, ``sim``).
    :raises ConfigError: listing every problem, each naming file and line, variable or flag.
    """
    env = os.environ if env is None else env
    data_dir = default_data_dir(env)
    layers: list[Layer] = []
    tables: dict[str, Any] = {}
    table_keys: dict[str, str] = {}
    config_path = config_path or (Path(env["LNLENS_CONFIG"]) if env.get("LNLENS_CONFIG") else None)
    if config_path is not None:
        data, where = load_toml(config_path)
        # `[policy]` (the fee engine's rails) may hold the policy file as `file`, since TOML
        # cannot have both `policy = FILE` and a `[policy]` table.
        policy_table = data.pop("policy") if isinstance(data.get("policy"), dict) else None
        if policy_table is not None and "file" in policy_table:
            data["policy"] = policy_table.pop("file")
        known = {s.toml_key: s.field for s in SETTINGS}
        allowed_tables = set(_TOML_TABLES) | set(backend_tables)
        unknown = [k for k in data if k not in known and k not in allowed_tables]
        if unknown:
            accepted = ", ".join(sorted([*known, *allowed_tables]))
            raise ConfigError([f"{where(k)}: unknown setting (accepted: {accepted})" for k in unknown])
        layers.append(
            (
                "file",
                {known[k]: v for k, v in data.items() if k in known},
                {known[k]: where(k) for k in data if k in known},
            )
        )
        tables = {k: v for k, v in data.items() if k in allowed_tables and k not in known}
        if policy_table is not None:
            tables["policy"] = policy_table
        table_keys = {f"{t}.{k}": where(k, table=t) for t, body in tables.items() if isinstance(body, Mapping)
                      for k in body}  # fmt: skip
    env_values = {s.field: env[f"LNLENS_{s.field.upper()}"] for s in SETTINGS if f"LNLENS_{s.field.upper()}" in env}
    layers.append(("env", env_values, {s.field: f"LNLENS_{s.field.upper()}" for s in SETTINGS}))
    layers.append(("cli", dict(cli or {}), {s.field: s.cli_flag for s in SETTINGS}))
    return resolve(data_dir=data_dir, layers=layers, toml_tables=tables, table_keys=table_keys)
