"""The deliberate differences between lnlens and charge-lnd 0.3.1, as rules a decision can be checked against.

Each rule names its row in docs/charge-lnd.md's table ("Where lnlens differs from charge-lnd 0.3.1") and says,
from what both tools reported and what the node state holds, when a decision differs *because of it*. A
difference no rule explains is a failure of the suite. Rules are narrow on purpose: they look at the fields
that differ and at what charge-lnd itself said (its notes on standard error), so that a bug on a channel
that also meets a quirk is not hidden by it.
"""

from __future__ import annotations

import configparser
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lnlens_core.fees.chargelnd.keys import to_duration_s

from .run import CORPUS, Decision

_PEER_POLICY_KEYS = ("chan.min_fee_ppm", "chan.max_fee_ppm", "chan.min_base_fee_msat", "chan.max_base_fee_msat",
                     "chan.disabled", "match_peer")  # fmt: skip


@dataclass(frozen=True)
class Deliberate:
    row: int
    """The row of docs/charge-lnd.md's table of differences."""
    name: str
    applies: Callable[[Decision, str], bool]

    @property
    def slug(self) -> str:
        return f"{self.row}-{self.name}"


def differing(d: Decision, path: str) -> set[str]:
    return {f for f, v in d.charge_lnd.items() if d.lnlens[path][f] != v}


def _skipped(d: Decision, text: str) -> bool:
    """charge-lnd said ``text`` about the channel and left it exactly as it was."""
    return any(text in e for e in d.charge_lnd_info.errors) and d.charge_lnd == d.current


@cache
def _sections(config: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=configparser.ExtendedInterpolation())
    parser.read(Path(CORPUS, f"{config}.conf"))
    return parser


def _young_admitted(d: Decision, path: str) -> bool:
    """Quirk 4: charge-lnd's section admits young channels on ``activity_period_ignore_channel_age = false``."""
    name, row = d.charge_lnd_info.policy, d.rows[path]
    if not name or name not in _sections(d.config) or (row and row["policy"] == name):
        return False
    section = _sections(d.config)[name]
    flag = section.get("chan.activity_period_ignore_channel_age")
    period = section.get("chan.activity_period")
    return flag is not None and period is not None and d.facts["age_blocks"] * 600 < to_duration_s(period)


def _sub_delta(d: Decision, path: str) -> bool:
    """Quirk 5: charge-lnd sends a fee_ppm move below min_fee_ppm_delta along with another change."""
    row = d.rows[path]
    others = {f for f, v in d.charge_lnd.items() if f != "fee_ppm" and v != d.current[f]}
    notes = " ".join(row["notes"]) if row else ""
    return differing(d, path) == {"fee_ppm"} and bool(others) and "below min_fee_ppm_delta" in notes


def _batch_cost(d: Decision, path: str) -> bool:
    """Row 16: charge-lnd's cost charges each channel of a batch open the whole transaction's fee."""
    row = d.rows[path]
    return (
        d.charge_lnd_info.strategy == "cost" and row is not None and row["strategy"] == "cost"
        and d.facts["batch_outputs"] > 1 and differing(d, path) == {"fee_ppm"}
        and d.charge_lnd["fee_ppm"] > d.lnlens[path]["fee_ppm"]
    )  # fmt: skip


def _peer_policy_unknown(d: Decision, path: str) -> bool:
    """Row 20: charge-lnd reads an unannounced peer policy as all zeros."""
    text = Path(CORPUS, f"{d.config}.conf").read_text()
    return not d.facts["peer_policy_known"] and d.facts["in_graph"] and any(k in text for k in _PEER_POLICY_KEYS)


DELIBERATE: tuple[Deliberate, ...] = (
    Deliberate(1, "chan.disabled", lambda d, p: _skipped(d, "has no attribute 'getbool'")),
    Deliberate(4, "activity_period_ignore_channel_age", _young_admitted),
    Deliberate(5, "sub-delta fee_ppm", _sub_delta),
    Deliberate(7, "0/0 ratios", lambda d, p: _skipped(d, "division by zero")),
    Deliberate(16, "cost of a batch open", _batch_cost),
    Deliberate(20, "unknown peer policy", _peer_policy_unknown),
)


def explain(d: Decision, path: str) -> Deliberate | None:
    """The deliberate difference that explains why ``d`` differs on ``path`` (None: none does)."""
    return next((rule for rule in DELIBERATE if rule.applies(d, path)), None)
