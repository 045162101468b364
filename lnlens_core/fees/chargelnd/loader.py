"""Loading and checking policy files: the entry points ``lnlens policy check`` and the fee engine use."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from ...errors import ConfigError
from ..strategy import FeeStrategy
from .parser import parse_policy_text
from .policyset import CheckReport, PolicySet, _Compiler

__all__ = ["COMPAT_MODES", "check_policy_file", "load_policy_file"]

log = logging.getLogger(__name__)

COMPAT_MODES = ("lnlens", "strict")
"""``lnlens`` fixes charge-lnd 0.3.1's quirks; ``strict`` replicates quirks 2, 4 and 5 (docs/charge-lnd.md)."""


def _check(
    path: Path,
    strategies: Mapping[str, type[FeeStrategy]],
    base_dir: Path,
    stack: tuple[str, ...],
    strict: bool,
    quote: bool = True,
) -> tuple[CheckReport, PolicySet | None]:
    """Check one file; ``quote=False`` for a ``use_config`` file, whose lines and values messages never show."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return CheckReport((f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})",), ()), None
    try:
        parsed, problems = parse_policy_text(text, str(path), quote=quote)
    except ConfigError as exc:
        return CheckReport(exc.problems, ()), None

    def load_nested(file: Path, chain: tuple[str, ...]) -> tuple[CheckReport, PolicySet | None]:
        return _check(file, strategies, base_dir, chain, strict, quote=False)

    compiler = _Compiler(strategies, base_dir, stack, strict, load_nested, show_values=quote)
    policy_set = compiler.compile(parsed)
    # a key inherited from [DEFAULT] is checked in every section; report each problem once
    unique = tuple(dict.fromkeys(problems + compiler.problems))
    report = CheckReport(unique, tuple(dict.fromkeys(compiler.warnings)))
    return report, policy_set


def _run_check(
    path: str | Path, strategies: Mapping[str, type[FeeStrategy]], base_dir: str | Path | None, compat: str
) -> tuple[CheckReport, PolicySet | None]:
    if compat not in COMPAT_MODES:
        return CheckReport((f"compat must be one of {', '.join(COMPAT_MODES)}, not {compat!r}",), ()), None
    file = Path(path)
    root = Path(base_dir) if base_dir else Path.cwd()
    try:
        return _check(file, strategies, root, (str(file.resolve()),), compat == "strict")
    except OSError as exc:
        return CheckReport((f"{file}: cannot read policy file ({exc.strerror})",), ()), None


def check_policy_file(
    path: str | Path,
    strategies: Mapping[str, type[FeeStrategy]],
    *,
    base_dir: str | Path | None = None,
    compat: str = "lnlens",
) -> CheckReport:
    """Validate a policy file completely (``lnlens policy check``).

    :param strategies: the registered strategies by name (``lens.strategies``).
    :param base_dir: where relative ``file://`` lists and ``use_config`` files are
        looked up; charge-lnd uses the current directory, which is the default.
    :param compat: ``lnlens`` (quirks fixed) or ``strict`` (see :data:`COMPAT_MODES`).
    :returns: every problem and warning, each naming file, line, section and key.
    """
    return _run_check(path, strategies, base_dir, compat)[0]


def load_policy_file(
    path: str | Path,
    strategies: Mapping[str, type[FeeStrategy]],
    *,
    base_dir: str | Path | None = None,
    compat: str = "lnlens",
) -> PolicySet:
    """Read and validate a policy file (parameters as :func:`check_policy_file`).

    :raises ConfigError: listing every problem.
    """
    report, policy_set = _run_check(path, strategies, base_dir, compat)
    if report.problems or policy_set is None:
        raise ConfigError(report.problems)
    for warning in report.warnings:
        log.warning("%s", warning)
    return policy_set
