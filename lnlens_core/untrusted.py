"""The one place where text lnlens does not control meets a terminal or a Markdown file.

Peer aliases, failure reasons, policy and strategy names, file paths and anything read from a
database or a saved analysis are untrusted: an alias is whatever 32 bytes its node chose. Rich
would read ``[/]`` or ``[red]`` in them as markup (a crash, or a restyled table), a terminal would
obey an escape sequence, and ``|`` or ``<`` would break a Markdown table or open raw HTML in a
Markdown viewer. So:

- every terminal console is a :class:`SafeConsole` (:func:`console`): it reads no markup and no
  emoji codes in strings and turns control characters into ``\\ufffd``; deliberate styling is
  built with :func:`styled`, never with markup in strings;
- every untrusted value goes through :func:`one_line` into a shell comment, :func:`markdown` into
  Markdown, and :func:`plot_label` into a plot (Matplotlib reads ``$…$`` as mathtext);
- the dashboard builds its page with DOM text nodes only (``textContent``, ``createTextNode``).
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from rich.console import Console
from rich.text import Text

__all__ = ["clean", "one_line", "markdown", "plot_label", "styled", "SafeConsole", "console"]

# C0 and C1 control characters (ESC starts terminal sequences) and the bidirectional overrides that
# can make a displayed line read differently from what it holds. Newlines are kept by clean()
# (a line break spoofs nothing a table cell shows); one_line() flattens them.
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")


def clean(value: Any) -> str:
    """``value`` as text without control characters (each becomes ``\\ufffd``, a tab a space)."""
    text = "" if value is None else str(value)
    return _CONTROL.sub(lambda m: " " if m[0] == "\t" else "\ufffd", text)


def one_line(value: Any) -> str:
    """:func:`clean` on one line: where a line break would end a comment or a row (shell comments, Markdown)."""
    return clean(value).replace("\n", " ")


def markdown(value: Any) -> str:
    """``value`` as literal Markdown text: inline syntax, table pipes and raw HTML escaped, one line."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", one_line(value))


def plot_label(value: Any) -> str:
    """``value`` as a literal Matplotlib label: ``$`` would start mathtext (and fail to parse), so it is escaped."""
    return clean(value).replace("$", r"\$")


def styled(*parts: str | tuple[str, str]) -> Text:
    """A line with deliberate styles: ``styled(("alert", "bold yellow"), " ", message)``; every part is cleaned."""
    return Text.assemble(*((clean(p[0]), p[1]) if isinstance(p, tuple) else clean(p) for p in parts))


class SafeConsole(Console):
    """A Rich console for untrusted text: strings are shown as they are (no markup, no emoji codes,
    no highlighting) and without control characters; tables and their titles included."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("markup", False)
        kwargs.setdefault("emoji", False)
        kwargs.setdefault("highlight", False)
        super().__init__(**kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:  # type: ignore[override]
        return super().render_str(clean(text), **kwargs)


PIPED_WIDTH = 200
"""Columns a table gets when the output is not a terminal and ``COLUMNS`` is unset (Rich would take 80 and cut
cells to "…"): a report piped to a file or a mail stays readable."""


def console(*, stderr: bool = False) -> SafeConsole:
    """The console every command prints with (standard output, or standard error)."""
    stream = sys.stderr if stderr else sys.stdout
    piped = not (hasattr(stream, "isatty") and stream.isatty()) and not os.environ.get("COLUMNS")
    return SafeConsole(stderr=stderr, width=PIPED_WIDTH if piped else None)
