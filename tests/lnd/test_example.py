"""The README's LND section: the bake command is the one lnlens checks for, the example output is current."""

from __future__ import annotations

import re
from pathlib import Path

from lnlens_lnd.backend import bake_command
from lnlens_testing.lnd.example import START, generate

README = Path(__file__).resolve().parents[2] / "README.md"


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    return text[text.index("## LND") :]


def test_readme_bake_command_grants_exactly_what_lnlens_calls():
    sh = re.search(r"```sh\n(lncli bakemacaroon.*?)```", _section(), re.DOTALL)[1]
    granted = set(re.findall(r"uri:\S+", sh))
    assert granted == set(re.findall(r"uri:\S+", bake_command("apply")))
    read_only = granted - {"uri:/lnrpc.Lightning/UpdateChannelPolicy"}
    assert read_only == set(re.findall(r"uri:\S+", bake_command("read")))
    assert "--root_key_id=4711" in sh


def test_readme_lists_every_optional_permission_with_the_keys_that_need_it():
    from lnlens_lnd.rpc import METHODS, OPTIONAL_METHODS, OPTIONAL_WRITE_METHODS

    for name in OPTIONAL_WRITE_METHODS:  # the optional write is explained in its own paragraph
        assert f"`uri:{METHODS[name].path}` to the end of the bake line" in _section()

    rows = re.findall(r"^\| `uri:(\S+)` \| (.+?) \|", _section(), re.MULTILINE)
    assert [path for path, _ in rows] == [METHODS[m].path for m in OPTIONAL_METHODS]
    for (_, keys), name in zip(rows, OPTIONAL_METHODS, strict=True):
        assert keys.replace("`", "") == METHODS[name].needed_by


def _shape(text: str) -> str:
    """The output with numbers and padding blurred: the simulator behind the fake lnd is tuned by others, and
    its exact figures may drift; commands, fields, columns and row counts may not."""
    text = re.sub(r"\d+", "0", text)
    return "\n".join(re.sub(r"[ ─━]+", " ", line).strip() for line in text.splitlines())


def test_readme_example_is_generated_output():
    block = START.search(_section())[0]
    fresh = generate()
    assert _shape(block) == _shape(fresh), "run: python -m lnlens_testing.lnd.example --write README.md"
