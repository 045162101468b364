"""The shipped packages' import graph: no circles, adapters that know only the core, a core that knows no adapter.

The graph is grimp's, read from the source files: every import counts, those inside functions and under
``if TYPE_CHECKING:`` included, since a circle hidden behind a lazy import is still a circle a reader must untangle.
The core finds adapter commands and backends through entry points (``lnlens.cli``, ``lnlens.backends``), never by
importing them. The test doubles (``lnlens_testing``) may import what they stand in front of.
"""

from __future__ import annotations

import graphlib
import sys
from pathlib import Path

import grimp
import pytest

CORE = "lnlens_core"
ADAPTERS = ("lnlens_cln", "lnlens_lnd", "lnlens_sim")
SHIPPED = (CORE, *ADAPTERS, "lnlens_testing", "lnlens_models")


def import_graph(*packages: str) -> grimp.ImportGraph:
    return grimp.build_graph(*packages, include_external_packages=False, exclude_type_checking_imports=False,
                             cache_dir=None)  # fmt: skip


def edges(graph: grimp.ImportGraph) -> dict[str, set[str]]:
    return {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}


def circle(graph: grimp.ImportGraph) -> list[str] | None:
    """One import circle as the modules along it (first and last the same), or None when there is none."""
    try:
        graphlib.TopologicalSorter(edges(graph)).prepare()
    except graphlib.CycleError as err:
        return list(err.args[1])
    return None


def package(module: str) -> str:
    return module.split(".", 1)[0]


@pytest.fixture(scope="module")
def shipped() -> grimp.ImportGraph:
    return import_graph(*SHIPPED)


def test_no_import_circle_in_shipped_code(shipped: grimp.ImportGraph) -> None:
    found = circle(shipped)
    assert found is None, "import circle: " + " -> ".join(reversed(found or []))


def test_adapters_import_only_the_core(shipped: grimp.ImportGraph) -> None:
    wrong = sorted(f"{a} imports {b}" for a, bs in edges(shipped).items() for b in bs
                   if package(a) in ADAPTERS and package(b) not in (package(a), CORE))  # fmt: skip
    assert not wrong, "\n".join(wrong)


def test_the_core_imports_no_other_package(shipped: grimp.ImportGraph) -> None:
    wrong = sorted(f"{a} imports {b}" for a, bs in edges(shipped).items() for b in bs
                   if package(a) == CORE and package(b) != CORE)  # fmt: skip
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("late", ["def f():\n    from . import a\n", "from typing import TYPE_CHECKING\n"
                                  "if TYPE_CHECKING:\n    from .a import x\n"])  # fmt: skip
def test_a_circle_is_found_even_behind_a_lazy_or_typing_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                late: str) -> None:  # fmt: skip
    """The check itself can fail: a probe package whose two modules import each other, one of them late."""
    probe = tmp_path / "lnlens_probe_circle"
    probe.mkdir()
    (probe / "__init__.py").write_text("")
    (probe / "a.py").write_text("from .b import y\nx = 1\n")
    (probe / "b.py").write_text(late + "y = 2\n")
    (probe / "c.py").write_text("from . import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = circle(import_graph("lnlens_probe_circle"))
    assert found is not None and set(found) == {"lnlens_probe_circle.a", "lnlens_probe_circle.b"}
    sys.modules.pop("lnlens_probe_circle", None)


def test_a_probe_without_a_circle_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    probe = tmp_path / "lnlens_probe_line"
    probe.mkdir()
    (probe / "__init__.py").write_text("")
    (probe / "a.py").write_text("from .b import y\n")
    (probe / "b.py").write_text("y = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert circle(import_graph("lnlens_probe_line")) is None
