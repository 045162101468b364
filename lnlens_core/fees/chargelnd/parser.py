"""Reading a charge-lnd policy file with configparser's exact semantics, plus line numbers.

charge-lnd reads its file with ``configparser.ConfigParser`` (strict, extended
interpolation, a list converter); lnlens uses the same class with the same
options so every parsing decision is configparser's own. configparser does not
say on which line a key was written, so :func:`locate` scans the text the way
configparser's reader does (comments, continuation lines by indentation, section
headers, ``key = value``/``key: value``) and records where each section and key
starts. Every problem is reported as ``FILE:LINE [section] key: what is wrong``.
"""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass
from pathlib import Path

from ...domain import ChannelId
from ...errors import ConfigError
from .keys import split_list

__all__ = ["Entry", "RawSection", "ParsedFile", "where", "echo", "locate", "parse_policy_text", "read_list_file"]

ECHO_CHARS = 80
"""A value or line quoted in a message is cut to this many characters."""


def echo(text: str) -> str:
    """``text`` quoted for a message: its repr, cut to :data:`ECHO_CHARS` characters (``…`` marks the cut)."""
    return repr(text) if len(text) <= ECHO_CHARS else repr(text[:ECHO_CHARS]) + "…"

DEFAULTSECT = configparser.DEFAULTSECT
NODE_ID_PATTERN = re.compile(r"^[0-9a-z]{66}$")


def where(path: str, line: int | None, section: str | None = None, key: str | None = None) -> str:
    """``FILE:LINE [section] key`` — the prefix of every policy-file message."""
    text = f"{path}:{line}" if line else path
    if section is not None:
        text += f" [{section}]"
    if key is not None:
        text += f" {key}"
    return text


@dataclass(frozen=True, slots=True)
class Entry:
    """One key as a section sees it: interpolated value and where it was written.

    ``origin`` is the section it is written in: the section itself, or ``DEFAULT``
    for a key inherited from configparser's defaults section.
    """

    key: str
    value: str
    line: int
    origin: str


@dataclass(frozen=True, slots=True)
class RawSection:
    """A section with its entries in configparser's order (own keys, then inherited ones)."""

    name: str
    line: int
    entries: tuple[Entry, ...]

    def own_keys(self) -> list[str]:
        return [e.key for e in self.entries if e.origin == self.name]

    def get(self, key: str) -> Entry | None:
        for entry in self.entries:
            if entry.key == key:
                return entry
        return None


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """A policy file: its sections in file order (``DEFAULT`` excluded) and where it lives.

    ``referenced`` holds every key name some value refers to as ``${key}`` or
    ``${section:key}`` (lower-cased): such a key may be a variable only, not a policy key.
    """

    path: str
    sections: tuple[RawSection, ...]
    referenced: frozenset[str] = frozenset()


def new_parser() -> configparser.ConfigParser:
    """The parser charge-lnd builds: strict, extended interpolation, a list converter."""
    return configparser.ConfigParser(
        converters={"list": split_list},
        interpolation=configparser.ExtendedInterpolation(),
    )


def locate(text: str) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """Where each section header and each key starts (1-based lines), scanning as configparser reads.

    :returns: ``{section: line}`` and ``{(section, key): line}`` (keys lower-cased).
    """
    sections: dict[str, int] = {}
    keys: dict[tuple[str, str], int] = {}
    optcre = configparser.ConfigParser.OPTCRE
    current: str | None = None
    in_value = False
    indent = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        value = line.strip()
        if not value or value[0] in "#;":
            continue
        cur_indent = len(line) - len(line.lstrip())
        if current is not None and in_value and cur_indent > indent:
            continue  # a continuation line of the previous value
        indent = cur_indent
        header = configparser.ConfigParser.SECTCRE.match(value)
        if header:
            current = header.group("header")
            sections.setdefault(current, lineno)
            in_value = False
            continue
        option = optcre.match(value)
        if option and current is not None:
            keys.setdefault((current, option.group("option").rstrip().lower()), lineno)
            in_value = True
    return sections, keys


def _structural_error(path: str, text: str, exc: configparser.Error, quote: bool) -> ConfigError:
    if isinstance(exc, configparser.DuplicateOptionError) and not quote:
        msg = f"{where(path, exc.lineno, None)}: duplicate key in a section"
    elif isinstance(exc, configparser.DuplicateSectionError) and not quote:
        msg = f"{where(path, exc.lineno)}: duplicate section"
    elif isinstance(exc, configparser.DuplicateOptionError):
        msg = f"{where(path, exc.lineno, exc.section, exc.option)}: duplicate key in this section"
    elif isinstance(exc, configparser.DuplicateSectionError):
        msg = f"{where(path, exc.lineno, exc.section)}: duplicate section"
    elif isinstance(exc, configparser.MissingSectionHeaderError):
        msg = f"{where(path, exc.lineno)}: a key before any [section] header"
        msg += f": {echo(exc.line.strip())}" if quote else _NOT_SHOWN
    elif isinstance(exc, configparser.ParsingError):
        # configparser keeps repr() of the line; quote the file's own text instead
        lines = text.splitlines()
        return ConfigError(
            [
                f"{where(path, n)}: not a section header or key = value"
                + (f": {echo(lines[n - 1].strip())}" if quote else _NOT_SHOWN)
                for n, _ in exc.errors
            ]
        )
    else:
        msg = f"{path}: not a policy file" if not quote else f"{path}: {exc}"
    return ConfigError(msg)


_NOT_SHOWN = " (line not shown: it is another file than the one checked)"


def parse_policy_text(text: str, path: str, *, quote: bool = True) -> tuple[ParsedFile, list[str]]:
    """Parse a policy file's text.

    :param path: the file name used in messages.
    :param quote: messages may quote the file's lines (cut to 80 characters); False for a file
        the operator did not name (``use_config``), whose content is never shown.
    :returns: the file, and the problems found in values (bad interpolation),
        each naming file, line, section and key.
    :raises ConfigError: the file cannot be parsed at all (duplicate section or
        key, a line that is neither a header nor a key), naming the line.
    """
    parser = new_parser()
    try:
        parser.read_string(text, source=path)
    except configparser.Error as exc:
        raise _structural_error(path, text, exc, quote) from exc
    section_lines, key_lines = locate(text)
    referenced = _references(parser)
    problems: list[str] = []
    sections = []
    for name in parser.sections():
        entries = []
        for key in parser.options(name):
            origin = name if (name, key) in key_lines else DEFAULTSECT
            line = key_lines.get((origin, key), section_lines.get(origin, 0))
            try:
                value = parser.get(name, key)
            except configparser.InterpolationError as exc:
                message = _interpolation_message(exc) if quote else "bad ${...} interpolation"
                problems.append(f"{where(path, line, origin, key)}: {message}")
                continue
            entries.append(Entry(key, value, line, origin))
        sections.append(RawSection(name, section_lines.get(name, 0), tuple(entries)))
    return ParsedFile(path, tuple(sections), referenced), problems


_REFERENCE = re.compile(r"\$\{([^}]*)\}")


def _references(parser: configparser.ConfigParser) -> frozenset[str]:
    """The key names that values refer to through ExtendedInterpolation (``$$`` is a literal ``$``)."""
    names: set[str] = set()
    for name in [DEFAULTSECT, *parser.sections()]:
        for _, raw in parser.items(name, raw=True):
            for ref in _REFERENCE.findall(str(raw or "").replace("$$", "")):
                names.add(parser.optionxform(ref.split(":")[-1]))
    return frozenset(names)


def _interpolation_message(exc: configparser.InterpolationError) -> str:
    if isinstance(exc, configparser.InterpolationMissingOptionError):
        return f"${{{exc.reference[:ECHO_CHARS]}}} refers to a key that does not exist (write $$ for a literal $)"
    if isinstance(exc, configparser.InterpolationDepthError):
        return "interpolation nests too deeply (a ${...} cycle?)"
    detail = str(exc.args[0] if exc.args else exc)
    detail = detail if len(detail) <= ECHO_CHARS else detail[:ECHO_CHARS] + "…"
    return f"bad interpolation: {detail} (write $$ for a literal $)"


def read_list_file(path: Path, kind: str) -> tuple[list[str], list[str]]:
    """Read a ``file://`` list of node ids (``kind="node"``) or channel ids (``kind="chan"``).

    Commas count as line breaks; on each line text after ``#`` is dropped and
    whitespace stripped. Invalid lines are skipped, as charge-lnd does.

    :returns: the valid items (channel ids in ``BLOCKxTXxOUT`` form) and one
        warning per skipped line, naming ``FILE:LINE`` (never its text: a list file
        may be any file).
    :raises OSError: the file cannot be read.
    """
    items: list[str] = []
    warnings: list[str] = []
    text = path.read_text(encoding="utf-8")
    lineno = 0
    for physical in text.splitlines():
        lineno += 1
        for part in physical.split(","):
            item = part.split("#", 1)[0].strip()
            if not item:
                continue
            if kind == "node":
                if NODE_ID_PATTERN.match(item):
                    items.append(item)
                else:
                    warnings.append(f"{path}:{lineno}: not a node id (66 lower-case hex characters), skipped")
                continue
            try:
                items.append(str(ChannelId.parse(item)))
            except ValueError:
                warnings.append(f"{path}:{lineno}: not a channel id, skipped")
    return items, warnings
