"""The CLN documentation is generated, and stays so: docs/rpc.md, docs/cln-examples, the README block."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from lnlens_cln.methods import METHODS
from lnlens_cln.rpcdoc import render
from lnlens_testing.cln.checks import validate
from lnlens_testing.cln.examples import END, START, readme_block

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "cln-examples"


def _examples() -> dict:
    found = {}
    for name in ("lens-status", "lens-opportunities", "lens-channels", "lens-opportunities-error"):
        data = json.loads((EXAMPLES / f"{name}.json").read_text())
        found[name] = (data["command"], data["response"])
    return found


def test_rpc_md_is_generated_from_the_schemas():
    assert (ROOT / "docs" / "rpc.md").read_text() == render(), "run: python -m lnlens_cln.rpcdoc docs/rpc.md"
    for method in METHODS:
        assert f"## {method.name}" in render()


@pytest.mark.parametrize("name", ["lens-status", "lens-opportunities", "lens-channels"])
def test_examples_are_valid_answers(name):
    command, response = _examples()[name]
    assert command.startswith(f"lightning-cli {name}")
    validate(name, response)


def test_the_error_example_is_an_invalid_params_error():
    _, error = _examples()["lens-opportunities-error"]
    assert error["code"] == -32602 and "since" in error["message"]


def test_readme_block_is_the_generated_one():
    text = (ROOT / "README.md").read_text()
    block = re.search(re.escape(START) + ".*?" + re.escape(END), text, re.DOTALL)
    assert block, "README.md lost its cln-examples block"
    assert block.group(0) == readme_block(_examples()), (
        "run: python -m lnlens_testing.cln.examples docs/cln-examples README.md"
    )


def test_contrib_launcher_is_a_pep723_script():
    launcher = ROOT / "contrib" / "lnlens-cln.py"
    text = launcher.read_text()
    assert text.startswith("#!/usr/bin/env -S uv run --script\n# /// script\n")
    assert '# dependencies = ["lnlens[cln]"]' in text and "from lnlens_cln.plugin import main" in text
    assert os.access(launcher, os.X_OK)
