"""Example output of every lens-* method, produced by the real plugin under the stand-in.

``python -m lnlens_testing.cln.examples docs/cln-examples [README.md]`` writes each
answer to ``docs/cln-examples/<name>.json`` and, given a README, replaces the block
between ``<!-- cln-examples:start -->`` and ``<!-- cln-examples:end -->`` with the
options table (from :data:`lnlens_core.config.SETTINGS`) and the examples, trimmed.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from lnlens_cln.plugin import option_defaults

from lnlens_core.clock import SystemClock
from lnlens_core.config import SETTINGS

from . import PluginError, StandIn, liquidity_seed, sim_node

__all__ = ["collect", "readme_block"]

HISTORY_S = 2 * 3600.0
START, END = "<!-- cln-examples:start -->", "<!-- cln-examples:end -->"


def collect(directory: str | Path) -> dict[str, tuple[str, Any]]:
    """``{name: (lightning-cli command line, answer)}`` from a fresh stand-in in ``directory``."""
    start_s = SystemClock().now() - HISTORY_S - 3600
    node = sim_node(history_s=HISTORY_S, start_s=start_s, seed=liquidity_seed(HISTORY_S, start_s=start_s))
    standin = StandIn(Path(directory) / "regtest", node)
    try:
        standin.advance(HISTORY_S)
        standin.start_plugin()
        standin.wait_backfill()
        standin.advance(900)
        standin.wait_for(standin.settled)
        assert standin.plugin is not None
        call = standin.plugin.cli
        # The liquidity model runs on a thread of its own: wait for its first run, so lens-status shows it.
        standin.wait_for(lambda: (call("lens-status")["liquidity_model"] or {}).get("last_run"), timeout=120)
        top = call("lens-opportunities", "3h", "0", "1")
        channel = top["opportunities"][0]["short_channel_id"] if top["opportunities"] else None
        out: dict[str, tuple[str, Any]] = {
            "lens-status": ("lightning-cli lens-status", call("lens-status")),
            "lens-opportunities": ("lightning-cli lens-opportunities 3h 0 1", top),
            "lens-channels": (f"lightning-cli lens-channels {channel}", call("lens-channels", str(channel))),
        }
        try:
            call("lens-opportunities", "since=soon")
        except PluginError as exc:
            out["lens-opportunities-error"] = ("lightning-cli lens-opportunities since=soon", exc.error)
        return out
    finally:
        standin.close()


def _trim(name: str, answer: Any) -> Any:
    """Shorter for the README: one pair, one window (the files keep everything)."""
    answer = json.loads(json.dumps(answer))
    if name == "lens-opportunities":
        answer["pairs"] = answer["pairs"][:1]
        answer["alerts"] = answer.get("alerts", [])[:1]
    if name == "lens-channels":
        for row in answer["channels"]:
            row["windows"] = {"24h": row["windows"]["24h"]}
    if name == "lens-opportunities-error":
        answer.pop("traceback", None)
    return answer


def options_table() -> str:
    defaults = option_defaults()
    rows = ["| option | type | default | meaning |", "| --- | --- | --- | --- |"]
    for s in SETTINGS:
        default = defaults[s.cln_option]
        shown = (
            "(see meaning)" if default is None else f"`{json.dumps(default) if s.cln_type != 'string' else default}`"
        )
        rows.append(f"| `{s.cln_option}` | {s.cln_type} | {shown} | {s.description} |")
    return "\n".join(rows)


_TRIMMED = {
    "lens-opportunities": " (trimmed here to one pair and one alert)",
    "lens-channels": " (trimmed here to the 24h window)",
}


def readme_block(examples: dict[str, tuple[str, Any]]) -> str:
    parts = [START, "", options_table(), ""]
    for name, (command, answer) in examples.items():
        note = _TRIMMED.get(name, "")
        parts += [f"`{command}`{note}", "", "```json", json.dumps(_trim(name, answer), indent=2), "```", ""]
    return "\n".join(parts + [END])


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        raise SystemExit("usage: python -m lnlens_testing.cln.examples OUT_DIR [README.md]")
    out = Path(args[0])
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lnl") as work:
        examples = collect(work)
    for name, (command, answer) in examples.items():
        (out / f"{name}.json").write_text(json.dumps({"command": command, "response": answer}, indent=2) + "\n")
    if len(args) > 1:
        readme = Path(args[1])
        text = readme.read_text(encoding="utf-8")
        pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
        if not pattern.search(text):
            raise SystemExit(f"{readme}: no {START} ... {END} block to fill")
        readme.write_text(pattern.sub(lambda _: readme_block(examples), text), encoding="utf-8")


if __name__ == "__main__":
    main()
