"""Untrusted text (peer aliases, reasons, paths) reaches the terminal, Markdown and plots as text, never as markup."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from lnlens_core.cli import main
from lnlens_core.cli.context import CliContext
from lnlens_core.cli.policy_cmd import _render_plan
from lnlens_core.untrusted import clean, markdown, one_line, plot_label

from .conftest import EVIL


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _cells(row: str) -> list[str]:
    """A Markdown table row split on its unescaped pipes."""
    return re.split(r"(?<!\\)\|", row.strip())[1:-1]


def test_the_helpers():
    assert clean("a\x1b[2Jb\tc\u202ed\x07") == "a\ufffd[2Jb c\ufffdd\ufffd"
    assert one_line("a\nb\r\nc") == "a b\ufffd c"
    assert markdown("[/]x|y <b> *k* `c` a\\b &amp;") == r"\[/\]x\|y \<b\> \*k\* \`c\` a\\b \&amp;"
    assert plot_label("$x^2$") == r"\$x^2\$"


def test_channels_and_opportunities_show_an_alias_as_it_is(capsys, hostile_db):
    for command in (["channels"], ["opportunities"], ["recommend"]):
        code, out, err = run(capsys, "--db", hostile_db, *command)
        assert code == 0, err
        assert "\x1b" not in out and "Traceback" not in err
    code, out, _ = run(capsys, "--db", hostile_db, "channels")
    assert "[/]x|y" in out
    code, out, _ = run(capsys, "--db", hostile_db, "opportunities")
    assert code == 0 and "[/]x|y [red]R" in out


def test_the_markdown_table_keeps_its_columns(capsys, hostile_db):
    code, out, _ = run(capsys, "--db", hostile_db, "opportunities", "--markdown")
    rows = [line for line in out.splitlines() if line.startswith("| 1 |")]
    assert code == 0 and rows and len(_cells(rows[0])) == 8
    assert r"\[/\]x\|y" in rows[0] and "<b>" not in out


def test_the_rails_note_and_an_alias_survive_the_plan_table(capsys):
    plan = {"channels": [{"short_channel_id": "800000x1x0", "alias": EVIL, "policy": "[default]", "strategy": "static",
                          "changes": {"fee_ppm": {"old": 100, "new": 150}}, "status": "change", "error": None,
                          "blocked": None, "vetoes": [], "reason": "[bold]fixed[/]",
                          "rails": ["fee_ppm step limited to ±50: 900 → 150"], "notes": ["[red]channel note"]}],
            "notes": ["[/] note"]}  # fmt: skip
    console = CliContext(argparse.Namespace()).console  # what `policy plan` and `policy apply` print with
    console.width = 400
    _render_plan(console, plan, "plan [/]")
    text = capsys.readouterr().out
    assert "[rails: fee_ppm step limited to ±50: 900 → 150]" in text and "[bold]fixed[/]" in text
    assert "[/]x|y" in text and "note: [/] note" in text and "plan [/]" in text
    assert "note (800000x1x0): [red]channel note" in text


def test_report_md_keeps_its_table(capsys, hostile_db, tmp_path):
    code, out, err = run(capsys, "--db", hostile_db, "report", "--out", tmp_path / "rep", "--json")
    assert code == 0, err
    text = Path(json.loads(out)["report"]).read_text()
    rows = [line for line in text.splitlines() if line.startswith("| 800000x1x0 |")]
    assert rows and len(_cells(rows[0])) == 8 and r"\[/\]x\|y" in rows[0]


def test_the_dashboard_builds_text_nodes_only():
    js = (Path(__file__).parents[2] / "lnlens_core/web/static/dashboard.js").read_text()
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", js)


def test_a_table_piped_to_a_file_is_not_cut_to_80_columns(monkeypatch, capsys):
    """Not a terminal and no COLUMNS: Rich would lay tables out in 80 columns and cut cells to "…"."""
    from rich.table import Table

    from lnlens_core.untrusted import console

    monkeypatch.delenv("COLUMNS", raising=False)
    table = Table()
    for i in range(12):
        table.add_column(f"column {i}", no_wrap=True)
    table.add_row(*(f"value-{i:03d}" for i in range(12)))
    console().print(table)
    out = capsys.readouterr().out
    assert all(f"value-{i:03d}" in out for i in range(12)), out
