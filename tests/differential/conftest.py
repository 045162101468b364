"""The differential suite needs charge-lnd 0.3.1's own source and virtualenv (``make test`` prepares them
from ../shared/charge-lnd: scripts/real-things.sh). In CI (CI=true) their absence is a failure; elsewhere
the suite skips and says why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("grpc", reason="the lnd extra is not installed")


def chargelnd_problem() -> str | None:
    python, src = os.environ.get("LNLENS_CHARGE_LND_PYTHON"), os.environ.get("LNLENS_CHARGE_LND_SRC")
    if not python or not src:
        return ("charge-lnd 0.3.1 is not prepared: LNLENS_CHARGE_LND_PYTHON and LNLENS_CHARGE_LND_SRC are unset "
                "(make test sets them from ../shared/charge-lnd/v0.3.1 via scripts/real-things.sh)")  # fmt: skip
    if not Path(python).is_file():
        return f"charge-lnd's virtualenv is missing: {python} does not exist (rerun scripts/real-things.sh)"
    if not (Path(src) / "charge_lnd" / "charge_lnd.py").is_file():
        return f"charge-lnd's source is missing: {src}/charge_lnd/charge_lnd.py does not exist"
    return None


@pytest.fixture(scope="session")
def chargelnd() -> None:
    """Skip (fail in CI) when charge-lnd cannot run."""
    problem = chargelnd_problem()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {problem}", pytrace=False)
    pytest.skip(problem)
