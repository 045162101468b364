"""pyln-testing wiring for tests against a real lightningd (REFERENCE.md A4).

The fixtures (node_factory, bitcoind, ...) are imported only when pyln-testing is
installed and ``lightningd`` and ``bitcoind`` are on PATH; otherwise the test module
skips itself with the reason (a conftest cannot skip a directory it is loaded for).
"""

from __future__ import annotations

import importlib.util
import shutil

MISSING = [name for name in ("lightningd", "bitcoind") if shutil.which(name) is None]
if importlib.util.find_spec("pyln.testing") is None:
    MISSING.append("pyln-testing (pip install 'lnlens[dev]')")

if not MISSING:
    from pyln.testing.fixtures import *  # noqa: F403 - pyln-testing's documented wiring
