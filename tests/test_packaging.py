"""The built wheel holds only lnlens_* packages: backends/, plugins/, models/, testing/ never leak in."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_top_level_names_are_only_lnlens_packages(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("lnlens-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        top = {name.split("/")[0] for name in names}
    packages = {t for t in top if not t.endswith(".dist-info")}
    assert packages and all(p.startswith("lnlens_") for p in packages), packages
    assert "lnlens_core" in packages
    # The test doubles ship as their own package (the testing extra), never inside an adapter.
    doubles = {"lnlens_testing/__init__.py", "lnlens_testing/cln/__init__.py", "lnlens_testing/lnd/example.py"}
    assert "lnlens_testing" in packages and doubles <= names
    assert not any(n.startswith(("lnlens_cln/standin/", "lnlens_lnd/testing/", "lnlens_lnd/example.py")) for n in names)
    # The LND message modules are committed, not generated at install: the wheel must carry them.
    assert {"lnlens_lnd/_proto/lightning_pb2.py", "lnlens_lnd/_proto/router_pb2.py"} <= names
    # Both shipped models are package data the daemons load through importlib.resources.
    assert {"lnlens_models/liquidity-default.onnx", "lnlens_models/fee-response-default.onnx"} <= names
    assert not {"backends", "plugins", "models", "testing", "tests", "contrib"} & top
