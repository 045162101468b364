"""charge-lnd 0.3.1 itself against lnlens, on the same seeded node states and the same configs.

charge-lnd's real ``main()`` runs as a subprocess in its own virtualenv against the fake lnd (gRPC, TLS,
macaroon) serving each state; lnlens plans the same states through its LND backend (the same fake) and
through the simulator backend. Every field of every decision (fee base, fee ppm, inbound base and ppm,
min/max HTLC, time lock delta, enabled/disabled) is compared, after lnlens's rails: what ``lnlens policy
plan`` would send is what charge-lnd sends. A difference is allowed only when a documented deliberate
difference explains it (differences.py, docs/charge-lnd.md); each of those is named by a test here.

Set LNLENS_DIFFERENTIAL_REPORT=FILE to write the counts as JSON.
"""

from __future__ import annotations

import configparser
import json
import os
from collections import Counter
from pathlib import Path

import pytest

from lnlens_core.fees.chargelnd.keys import CRITERIA, PROPERTIES

from .differences import DELIBERATE, differing, explain
from .run import CONFIGS, CORPUS, PATHS, STRICT, Decision, run_all
from .states import WINDOWS_S

STRATEGIES = ("ignore", "ignore_fees", "static", "match_peer", "proportional", "cost", "onchain_fee", "disable",
              "use_config")  # fmt: skip


@pytest.fixture(scope="module")
def decisions(chargelnd, tmp_path_factory) -> list[Decision]:
    out = run_all(tmp_path_factory.mktemp("differential"))
    report = os.environ.get("LNLENS_DIFFERENTIAL_REPORT")
    if report:
        Path(report).write_text(json.dumps(summary(out), indent=2) + "\n")
    return out


def summary(decisions: list[Decision]) -> dict:
    out: dict = {"decisions": len(decisions), "states": len({d.state for d in decisions}),
                 "configs": len({d.config for d in decisions})}  # fmt: skip
    for path in (*PATHS, STRICT):
        same = sum(1 for d in decisions if d.lnlens[path] == d.charge_lnd)
        before_rails = sum(1 for d in decisions if d.proposed[path] == d.charge_lnd)
        rules = Counter(r.slug if (r := explain(d, path)) else "unexplained"
                        for d in decisions if d.lnlens[path] != d.charge_lnd)  # fmt: skip
        out[path] = {"identical": same, "identical_before_rails": before_rails,
                     "agreement": round(same / len(decisions), 4),
                     "deliberate": dict(sorted(rules.items()))}  # fmt: skip
    return out


def test_every_config_runs_in_both(decisions):
    crashed = {d.config: d.charge_lnd_exit for d in decisions if d.charge_lnd_exit != "0"}
    assert not crashed, f"charge-lnd failed on {crashed}: the corpus must be configs charge-lnd runs"
    refused = {d.config: d.refused[p] for d in decisions for p in PATHS if p in d.refused}
    assert not refused, f"lnlens refuses configs charge-lnd accepts: {refused}"


@pytest.mark.parametrize("path", PATHS)
def test_every_decision_agrees_or_differs_deliberately(decisions, path):
    unexplained = [d for d in decisions if d.lnlens[path] != d.charge_lnd and explain(d, path) is None]
    lines = [
        f"{d.key}: " + ", ".join(f"{f} charge-lnd {d.charge_lnd[f]} lnlens {d.lnlens[path][f]}"
                                 for f in sorted(differing(d, path)))
        + f" [charge-lnd: {d.charge_lnd_info.policy}/{d.charge_lnd_info.strategy} {d.charge_lnd_info.errors}; "
        f"lnlens: {d.rows[path] and {k: d.rows[path][k] for k in ('policy', 'strategy', 'error', 'rails', 'notes')}}]"
        for d in unexplained[:15]
    ]  # fmt: skip
    assert not unexplained, (
        f"{len(unexplained)} of {len(decisions)} decisions differ from charge-lnd ({path}) without a documented "
        "reason:\n" + "\n".join(lines)
    )


def test_the_lnd_and_simulator_paths_decide_alike(decisions):
    apart = [d.key for d in decisions if d.lnlens["lnd"] != d.lnlens["sim"]]
    assert not apart, f"lnlens decides differently through LND and the simulator on {len(apart)}: {apart[:10]}"


@pytest.mark.parametrize("rule", DELIBERATE, ids=lambda r: r.slug)
def test_each_deliberate_difference_occurs_and_explains_only_differences(decisions, rule):
    """The corpus meets every documented difference, on both paths."""
    for path in PATHS:
        hits = [d for d in decisions if d.lnlens[path] != d.charge_lnd and explain(d, path) is rule]
        assert hits, f"row {rule.row} ({rule.name}) never explains a difference on {path}: the corpus misses it"


def test_compat_strict_replicates_quirks_4_and_5(decisions):
    """What rows 4 and 5 explain on the simulator path is exactly what compat = strict gives up."""
    quirks = {r.row: r for r in DELIBERATE}
    for d in decisions:
        rule = explain(d, "sim") if d.lnlens["sim"] != d.charge_lnd else None
        if rule is not None and rule.row in (4, 5):
            assert d.lnlens[STRICT] == d.charge_lnd, f"{d.key}: strict still differs ({rule.name})"
        elif rule is None:
            assert d.lnlens[STRICT] == d.charge_lnd, f"{d.key}: strict differs where lnlens agrees"
    assert quirks[4] and quirks[5]


def test_the_corpus_covers_every_key_strategy_and_form():
    texts = {p.name: p.read_text() for p in CORPUS.rglob("*.conf")}
    keys: set[str] = set()
    strategies: set[str] = set()
    periods: set[int] = set()
    for name, text in texts.items():
        parser = configparser.ConfigParser(interpolation=configparser.ExtendedInterpolation())
        parser.read_string(text, source=name)
        for section in parser.sections():
            for key in parser[section]:
                keys.add(key)
                if key == "strategy":
                    strategies.add(parser[section][key])
                if key == "chan.activity_period":
                    from lnlens_core.fees.chargelnd.keys import to_duration_s

                    periods.add(to_duration_s(parser[section][key]))
    every = {f"{ns}.{k}" for ns, criteria in CRITERIA.items() for k in criteria} | set(PROPERTIES)
    assert every - keys == set(), f"keys no config uses: {sorted(every - keys)}"
    assert set(STRATEGIES) - strategies == set(), f"strategies no config uses: {set(STRATEGIES) - strategies}"
    assert periods <= set(WINDOWS_S), "states.WINDOWS_S must list every activity period of the corpus"
    joined = "\n".join(texts.values())
    for form in ("[DEFAULT]", "${", "${rates:", "file://", "use_config", "\n#", "\n;", "\n    "):
        assert form in joined, f"no config uses {form!r}"
    assert any(line.lstrip().startswith(";") for line in joined.splitlines())
    assert len(CONFIGS) >= 15


def test_a_channel_missing_from_the_graph_is_left_as_charge_lnd_leaves_it(decisions):
    """Formerly a deliberate difference (lnlens planned from zeros lnd had invented): both paths now keep it."""
    from lnlens_core.fees.engine import UNKNOWN_POLICY

    off = [d for d in decisions if not d.facts["in_graph"]]
    assert off, "the corpus lost its channel missing from the graph"
    for d in off:
        assert d.charge_lnd == d.current, f"{d.key}: charge-lnd changed a channel its graph lacks"
        for path in PATHS:
            assert d.lnlens[path] == d.current and d.rows[path]["reason"] == UNKNOWN_POLICY, (d.key, path)
