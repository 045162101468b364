"""Paired statistics over a sweep's results: does a policy earn more than no action, and than the best rule?

Every policy on one (node, seed) saw the same network and traffic, so the unit is the
per-seed difference in net earnings (revenue minus rebalancing fees) between a policy
and its comparator on the same node and seed. For each node, and for all nodes pooled
(pairs by node and seed), and for each comparison:

- the mean difference with its 95 % t-interval (Student's t, n - 1 degrees of freedom);
- the two-sided paired t-test's p-value, and the same after Holm's step-down correction
  over every comparison in the report (one family);
- wins / losses / ties (seeds where the policy earned more / less / the same);
- the seeds needed to detect the observed mean difference with 80 % power at a two-sided
  5 % level: ``ceil(((z_0.975 + z_0.8) · sd / |mean|)²)`` (normal approximation; None when
  the mean difference is 0 or fewer than 2 seeds).

Comparators: ``none`` (no action) and the *best rule baseline*: of the rule policies in
the results, the one with the highest mean net on that node (pooled: over all pairs).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy import stats

from .sweep import RULE_POLICIES

__all__ = ["compare", "holm", "summarise", "POOLED"]

POOLED = "all nodes"
_Z = 1.959963984540054 + 0.8416212335729143  # z_0.975 + z_0.80


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input's order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def compare(differences: Sequence[float]) -> dict[str, Any]:
    """Mean, 95 % t-interval, paired t-test p, wins/losses and seeds needed for one set of paired differences."""
    d = np.asarray(differences, dtype=float)
    n = len(d)
    mean = float(d.mean()) if n else 0.0
    out: dict[str, Any] = {"n": n, "mean_msat": round(mean), "low_msat": None, "high_msat": None, "p": None,
                           "wins": int((d > 0).sum()), "losses": int((d < 0).sum()), "ties": int((d == 0).sum()),
                           "seeds_needed": None}  # fmt: skip
    if n < 2:
        return out
    sd = float(d.std(ddof=1))
    if sd == 0:
        out.update(low_msat=round(mean), high_msat=round(mean), p=1.0 if mean == 0 else 0.0)
        return out
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    p = float(2 * stats.t.sf(abs(mean) / (sd / math.sqrt(n)), n - 1))
    out.update(low_msat=round(mean - half), high_msat=round(mean + half), p=p)
    if mean != 0:
        out["seeds_needed"] = math.ceil((_Z * sd / abs(mean)) ** 2)
    return out


def _net_by(rows: Iterable[dict[str, Any]]) -> dict[str, dict[tuple[str, int], dict[str, Any]]]:
    """policy -> (centre, seed) -> row."""
    out: dict[str, dict[tuple[str, int], dict[str, Any]]] = defaultdict(dict)
    for r in rows:
        out[r["policy"]][(r["centre"], r["seed"])] = r
    return out


def _paired(a: dict, b: dict, pairs: set) -> list[float]:
    common = sorted(pairs & a.keys() & b.keys())
    return [a[k]["net_msat"] - b[k]["net_msat"] for k in common]


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The whole report: per node and pooled, every policy's totals and its comparisons (Holm over all of them)."""
    by = _net_by(rows)
    centres = sorted({r["centre"] for r in rows}, key=lambda c: min(r["channels"] for r in rows if r["centre"] == c))
    aliases = {r["centre"]: r.get("alias") or r["centre"][:16] for r in rows}
    groups: list[tuple[str, set]] = [(c, {k for p in by.values() for k in p if k[0] == c}) for c in centres]
    if len(centres) > 1:
        groups.append((POOLED, {k for p in by.values() for k in p}))
    report: dict[str, Any] = {"groups": [], "rule_policies": [p for p in RULE_POLICIES if p in by]}
    tests: list[dict[str, Any]] = []
    for name, pairs in groups:
        mean_net = {p: float(np.mean([by[p][k]["net_msat"] for k in pairs if k in by[p]] or [0])) for p in by}
        rules = [p for p in RULE_POLICIES if p in by and pairs & by[p].keys()]
        best_rule = max(rules, key=lambda p: mean_net[p]) if rules else None
        group = {"node": name, "alias": aliases.get(name, name), "seeds": len({k[1] for k in pairs}),
                 "channels": next((r["channels"] for r in rows if r["centre"] == name), None),
                 "best_rule": best_rule, "policies": []}  # fmt: skip
        for policy in sorted(by, key=lambda p: (p != "none", -mean_net[p])):
            mine = [by[policy][k] for k in sorted(pairs & by[policy].keys())]
            decided = sum(r["decided"] for r in mine)
            entry: dict[str, Any] = {
                "policy": policy, "runs": len(mine), "mean_net_msat": round(mean_net[policy]),
                "net_msat": sum(r["net_msat"] for r in mine), "revenue_msat": sum(r["revenue_msat"] for r in mine),
                "rebalance_fee_msat": sum(r["rebalance_fee_msat"] for r in mine),
                "success_rate": sum(r["settled"] for r in mine) / decided if decided else None,
                "rebalances": sum(r["rebalances"] for r in mine),
                "rebalances_ok": sum(r["rebalances_ok"] for r in mine),
                "vs_none": None, "vs_best_rule": None,
            }  # fmt: skip
            if policy != "none" and "none" in by:
                entry["vs_none"] = compare(_paired(by[policy], by["none"], pairs))
                tests.append(entry["vs_none"])
            if best_rule is not None and policy not in ("none", best_rule):
                entry["vs_best_rule"] = compare(_paired(by[policy], by[best_rule], pairs))
                tests.append(entry["vs_best_rule"])
            group["policies"].append(entry)
        report["groups"].append(group)
    tested = [t for t in tests if t["p"] is not None]
    for t, adjusted in zip(tested, holm([t["p"] for t in tested]), strict=True):
        t["p_holm"] = adjusted
    for t in tests:
        t.setdefault("p_holm", None)
    report["comparisons"] = len(tested)
    return report
