"""Runs charge-lnd 0.3.1 and lnlens on the same node state and puts their decisions side by side.

charge-lnd runs live (not ``--dry-run``) against a frozen fake lnd: every UpdateChannelPolicy and
UpdateChanStatus it sends is recorded on the wire, field by field, and answered as lnd would, while the
node stays as it was for the next config. Its ``-v`` report gives the policy and strategy per channel and
its notes on standard error the per-channel errors. lnlens plans (``plan_or_apply(apply=False)``, what
``lnlens policy plan`` runs) through its LND backend against the same fake and through the simulator
backend directly. A decision is one channel under one config in one state; its outcome is the policy the
channel would have after the run, all eight fields.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lnlens_core.domain import Channel, ChannelPolicy

FIELDS = (
    "base_fee_msat", "fee_ppm", "inbound_base_fee_msat", "inbound_fee_ppm",
    "min_htlc_msat", "max_htlc_msat", "cltv_delta", "disabled",
)  # fmt: skip
DRIVER = Path(__file__).with_name("chargelnd_driver.py")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_HEADER = re.compile(r"^(\d+x\d+x\d+)\s*\[")
_CRITERIA_ERROR = re.compile(r"^Error evaluating criteria for channel (\d+x\d+x\d+) ")
_NO_INFO = re.compile(r"^could not lookup channel info for (\d+x\d+x\d+)")


def policy_fields(policy: ChannelPolicy) -> dict[str, Any]:
    out = {f: getattr(policy, f) for f in FIELDS}
    out["max_htlc_msat"] = out["max_htlc_msat"] or 0  # lnd: 0 is "no limit below the capacity"
    return out


@dataclass
class ClChannel:
    """What charge-lnd's report and notes say about one channel in one run."""

    policy: str | None = None
    strategy: str | None = None
    errors: list[str] = field(default_factory=list)
    no_chan_info: bool = False


@dataclass
class ClRun:
    tag: str
    exit: str
    text: str
    channels: dict[str, ClChannel]
    writes: list[tuple[str, Any]]
    """(method, request) in the order charge-lnd sent them."""


def parse_report(text: str) -> dict[str, ClChannel]:
    """charge-lnd's ``-v`` report with its notes, per channel."""
    out: dict[str, ClChannel] = {}
    pending: list[str] = []
    current: ClChannel | None = None
    for raw in text.splitlines():
        line = _ANSI.sub("", raw)
        if m := _CRITERIA_ERROR.match(line):
            out.setdefault(m[1], ClChannel()).errors.append(line)
            continue
        if line.startswith("Error executing strategy") or line.startswith("Unknown strategy"):
            pending.append(line)
            continue
        if m := _NO_INFO.match(line):
            ch = out.setdefault(m[1], ClChannel())
            ch.no_chan_info, ch.errors = True, ch.errors + pending
            pending, current = [], None
            continue
        if m := _HEADER.match(line):
            current = out.setdefault(m[1], ClChannel())
            current.errors += pending
            pending = []
            continue
        if current is not None and (m := re.match(r"^  (policy|strategy):\s+(.*)$", line)):
            setattr(current, m[1], m[2].strip())
    return out


def run_chargelnd(fake, jobs: Sequence[tuple[str, Path]], cwd: Path) -> subprocess.Popen:
    """Start charge-lnd on every ``(tag, config)`` against ``fake``; :func:`collect` reads the result."""
    from lnlens_testing.lnd import ADMIN

    listing = []
    for n, (tag, config) in enumerate(jobs):
        macaroon = fake.write_macaroon(f"charge-lnd-{n}.macaroon", ADMIN, root_key_id=10_000 + n)
        argv = ["--grpc", fake.host, "--tlscert", str(fake.cert_path), "--macaroon", str(macaroon),
                "-c", str(config), "-v"]  # fmt: skip
        listing.append({"tag": tag, "cwd": str(cwd), "argv": argv})
    jobs_file = fake.folder / "charge-lnd-jobs.json"
    jobs_file.write_text(json.dumps(listing))
    env = dict(os.environ, PYTHONPATH=os.environ["LNLENS_CHARGE_LND_SRC"], PYTHONDONTWRITEBYTECODE="1",
               PYTHONUNBUFFERED="1", NO_COLOR="1")  # fmt: skip
    return subprocess.Popen(
        [os.environ["LNLENS_CHARGE_LND_PYTHON"], str(DRIVER), str(jobs_file)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
    )  # fmt: skip


def collect(proc: subprocess.Popen, fake, jobs: Sequence[tuple[str, Path]]) -> dict[str, ClRun]:
    out, _ = proc.communicate(timeout=600)
    frames = re.findall(r"^@@@ start (\S+)\n(.*?)^@@@ end \1 (\S+)$", out, flags=re.M | re.S)
    if len(frames) != len(jobs):
        raise AssertionError(f"charge-lnd's driver ended early (exit {proc.returncode}):\n{out[-3000:]}")
    by_key: dict[int, list[tuple[str, Any]]] = {}
    for key, method, request in fake.writes:
        by_key.setdefault(key, []).append((method, request))
    runs = {}
    for n, (tag, text, code) in enumerate(frames):
        runs[tag] = ClRun(tag, code, text, parse_report(text), by_key.get(10_000 + n, []))
    return runs


def chargelnd_outcome(channel: Channel, point: tuple[str, int], writes: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """The channel's policy after charge-lnd's writes to it."""
    new = policy_fields(channel.local_policy)
    for method, r in writes:
        if (r.chan_point.funding_txid_str, r.chan_point.output_index) != point:
            continue
        if method == "UpdateChanStatus":
            new["disabled"] = r.action == 1  # DISABLE; ENABLE and AUTO (on an active channel) enable
            continue
        new.update(
            base_fee_msat=r.base_fee_msat,
            fee_ppm=r.fee_rate_ppm or int(round(r.fee_rate * 1e6)),
            cltv_delta=r.time_lock_delta,
        )
        if r.max_htlc_msat:  # lnd: 0 leaves the maximum as it is
            new["max_htlc_msat"] = r.max_htlc_msat
        if r.min_htlc_msat_specified:
            new["min_htlc_msat"] = r.min_htlc_msat
        if r.HasField("inbound_fee"):
            new.update(inbound_base_fee_msat=r.inbound_fee.base_fee_msat, inbound_fee_ppm=r.inbound_fee.fee_rate_ppm)
    return new


def lnlens_outcome(channel: Channel, row: Mapping[str, Any] | None, *, proposed: bool = False) -> dict[str, Any]:
    """The channel's policy after lnlens's plan row would be applied (``proposed``: before the rails)."""
    new = policy_fields(channel.local_policy)
    if row is None:
        return new
    if proposed:
        values = row["proposed"] or {}
    else:
        values = {k: v["new"] for k, v in row["changes"].items()}
    for k, v in values.items():
        new[k] = v if not (k == "max_htlc_msat" and v is None) else 0
    return new
