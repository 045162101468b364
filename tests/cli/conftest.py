"""A small database with hostile peer aliases, shared by the CLI robustness tests."""

from __future__ import annotations

import pytest

from lnlens_core.clock import SystemClock
from lnlens_core.domain import ChannelId, FailureReason, ForwardStatus, HtlcEvent
from lnlens_core.storage import Store
from lnlens_core.testing import make_channel

# Rich markup that would close, restyle or link; a Markdown pipe, raw HTML and a terminal escape.
EVIL = "[/]x|y [red]R <b>&amp; $a$ \x1b[2J"
OUT, IN = ChannelId.parse("800000x1x0"), ChannelId.parse("800001x2x1")


def hostile_store(path, *, now: float | None = None) -> None:
    """Two channels with hostile aliases; the first depleted and failing forwards for liquidity."""
    now = SystemClock().now() if now is None else now
    store = Store(path)
    store.add_snapshots([
        make_channel(OUT, local_ratio=0.02, peer_alias=EVIL, peer_id="03" + "aa" * 32),
        make_channel(IN, local_ratio=0.9, peer_alias=EVIL + " two", peer_id="03" + "bb" * 32),
    ], time=now - 3600)  # fmt: skip
    events = [HtlcEvent(IN, 50_000_000, ForwardStatus.LOCAL_FAILED, now - 600 - i, in_htlc_id=i, out_channel=OUT,
                        out_msat=49_990_000, failure_reason=FailureReason.INSUFFICIENT_BALANCE) for i in range(20)]
    events += [HtlcEvent(IN, 1_000_000, ForwardStatus.SETTLED, now - 900 - i, in_htlc_id=100 + i, out_channel=OUT,
                         out_msat=999_000, fee_msat=1000, resolved_time=now - 899 - i) for i in range(5)]  # fmt: skip
    store.ingest_forwards(events, source="backfill")
    store.close()


@pytest.fixture
def env(tmp_path, monkeypatch):
    """No settings file or data directory from the machine running the tests."""
    monkeypatch.setenv("LNLENS_DATA_DIR", str(tmp_path / "data"))
    for name in ("LNLENS_CONFIG", "LNLENS_DB_PATH", "LNLENS_POLICY_PATH"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def hostile_db(env):
    path = env / "hostile.sqlite3"
    hostile_store(path)
    return path
