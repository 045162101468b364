"""``lnlens policy experiment``: seeded A/B on the simulator, the engine's limits, the statistics, the CLI."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("lnlens_sim")

from lnlens_sim.scenario import build_backend  # noqa: E402

from lnlens_core.cli import main  # noqa: E402
from lnlens_core.config import LensConfig  # noqa: E402
from lnlens_core.domain import ChannelId  # noqa: E402
from lnlens_core.events import FeeUpdateApplied, FeeUpdateVetoed  # noqa: E402
from lnlens_core.fees.experiment import compare, run_experiment, split_channels  # noqa: E402
from lnlens_core.fees.outcomes import mean_band  # noqa: E402
from lnlens_core.hookspecs import hookimpl  # noqa: E402
from lnlens_core.plugins import get_plugin_manager  # noqa: E402

# A tiny network and little traffic: a few simulated days per seed run in about a second.
SIM = {"network": "synthetic", "nodes": 60, "payments_per_hour": 400}
GREEDY = "[default]\nstrategy = static\nfee_ppm = 5000\nbase_fee_msat = 0\n"


def test_split_is_by_seed_alone():
    ids = [ChannelId(700000, i, 0) for i in range(12)]
    treat, hold = split_channels(ids, 7, 0.25)
    assert (treat, hold) == split_channels(list(reversed(ids)), 7, 0.25), "same seed, same split"
    assert len(hold) == 3 and set(treat) | set(hold) == set(ids) and not set(treat) & set(hold)
    assert {split_channels(ids, s, 0.5)[1] for s in range(6)} != {hold}, "other seeds split otherwise"
    assert len(split_channels(ids[:2], 1, 0.01)[1]) == 1 and len(split_channels(ids[:2], 1, 0.99)[0]) == 1
    with pytest.raises(ValueError, match="at least two channels"):
        split_channels(ids[:1], 1, 0.5)


def test_mean_band_is_students_t():
    mean, band = mean_band([1.0, 2.0, 3.0])
    assert mean == 2.0 and band == pytest.approx((2 - 2.4841, 2 + 2.4841), abs=1e-3)  # t(0.975, 2) = 4.303
    assert mean_band([5.0]) == (5.0, None)


def test_the_engine_enforces_the_limits_and_the_holdout(tmp_path):
    """A policy that wants 5,000 ppm everywhere; only the engine's rails and a plugin's veto stop it."""
    policy = tmp_path / "greedy.ini"
    policy.write_text(GREEDY)
    rails = {"charge_lnd_rails": True, "max_fee_ppm": 700, "max_step_ppm": 20, "max_step_share": 0.0, "cooldown": "3h",
             "max_changes_per_day": 100, "min_change_ppm": 1}  # fmt: skip
    config = LensConfig(data_dir=tmp_path, db_path=tmp_path / "unused.sqlite3", backends={"policy": rails})
    nodes, initial, seen = {}, {}, []
    vetoed_channel: dict[int, ChannelId] = {}

    class Watch:
        @hookimpl
        def track_event(self, events):
            seen.extend(events)

        @hookimpl
        def check_fee_update(self, channel):
            return "not this one" if channel.channel_id in vetoed_channel.values() else None

    def make_backend(seed):
        nodes[seed] = node = build_backend({**SIM, "seed": seed})
        initial[seed] = {c.channel_id: c.local_policy for c in node.list_channels()}
        treatment, _ = split_channels([c.channel_id for c in node.list_channels()], seed, 0.5)
        vetoed_channel[seed] = treatment[0]
        return node

    def make_pm():
        pm = get_plugin_manager(load_entrypoints=False)
        pm.register(Watch())
        return pm

    result = run_experiment(make_backend, config, policy, seeds=[1, 2], days=1, warmup_s=3600, interval_s=7200,
                            holdout_share=0.5, make_pm=make_pm)  # fmt: skip
    applied = [e for e in seen if isinstance(e, FeeUpdateApplied)]
    assert applied and sum(s.applied for s in result.seeds) == len(applied)
    for e in applied:
        assert e.new.fee_ppm <= 700, "the ceiling is the engine's"
        if e.old.fee_ppm <= 700:
            assert abs(e.new.fee_ppm - e.old.fee_ppm) <= 20, "the step limit is the engine's"
    assert {e.channel_id for e in seen if isinstance(e, FeeUpdateVetoed)} <= set(vetoed_channel.values())
    for s in result.seeds:
        node = nodes[s.seed]
        now = {c.channel_id: c.local_policy for c in node.list_channels()}
        assert s.holdout_changes == 0 and all(now[c] == initial[s.seed][c] for c in s.holdout.channels)
        assert now[vetoed_channel[s.seed]] == initial[s.seed][vetoed_channel[s.seed]], "vetoed: untouched"
        assert s.vetoed > 0 and s.blocked > 0, "the cooldown held channels between runs"
        assert all(now[c].fee_ppm <= 700 for c in s.treatment.channels if c != vetoed_channel[s.seed])
        assert s.engine_runs == 12 and s.treatment.forwards + s.holdout.forwards > 0


def test_compare_reports_significance_from_per_seed_differences():
    from lnlens_core.fees.experiment import GroupResult, SeedResult

    def seed(n, t_rev, h_rev):
        a, b = ChannelId(1, 1, n), ChannelId(1, 2, n)
        t = GroupResult((a,), 1_000_000_000, 1.0, t_rev, 10, 0, 0)
        h = GroupResult((b,), 1_000_000_000, 1.0, h_rev, 10, 10, 0)
        return SeedResult(n, t, h, 1, 0, 0, 0, 0, 0)

    clear = {c.metric: c for c in compare([seed(1, 2000, 1000), seed(2, 2100, 1000), seed(3, 1900, 1000)])}
    assert clear["revenue_ppm_day"].significant and clear["revenue_ppm_day"].difference == pytest.approx(
        1.0
    )  # 1,000 msat on 1e9: 1 ppm
    assert "significantly higher" in clear["revenue_ppm_day"].verdict()
    assert clear["success_rate"].difference == pytest.approx(0.5) and clear["success_rate"].significant
    assert not clear["forwards_per_channel_day"].significant, "no difference at all"
    noisy = {c.metric: c for c in compare([seed(1, 2000, 1000), seed(2, 0, 1000), seed(3, 1100, 1000)])}
    assert not noisy["revenue_ppm_day"].significant and "not significant" in noisy["revenue_ppm_day"].verdict()
    one = {c.metric: c for c in compare([seed(1, 2000, 1000)])}
    assert one["revenue_ppm_day"].band is None and "one seed gives no band" in one["revenue_ppm_day"].verdict()


@pytest.fixture
def cli(tmp_path, capsys):
    settings = tmp_path / "lnlens.toml"
    sim = "".join(f"{k} = {json.dumps(v)}\n" for k, v in SIM.items())
    settings.write_text(f'db = "{tmp_path / "db.sqlite3"}"\n[sim]\n{sim}[policy]\nmax_fee_ppm = 900\n')
    policy = tmp_path / "balance.ini"
    policy.write_text("[balanced]\nstrategy = balance_based\nfee_ppm = 300\n")

    def run(*args):
        rc = main(["--config", str(settings), "policy", "experiment", *args])
        out = capsys.readouterr()
        return rc, out.out, out.err

    return run, policy


def test_cli_json_is_deterministic_and_complete(cli, tmp_path):
    run, policy = cli
    args = [str(policy), "--days", "1", "--seeds", "1", "2", "3", "--warmup", "2h", "--interval", "3h", "--json"]
    rc, out, err = run(*args)
    assert rc == 0, err
    data = json.loads(out)
    assert [s["seed"] for s in data["seeds"]] == [1, 2, 3] and data["holdout_share"] == 0.5
    for s in data["seeds"]:
        assert s["engine_runs"] == 8 and s["holdout_changes"] == 0
        assert len(s["treatment"]["channels"]) >= 1 and len(s["holdout"]["channels"]) >= 1
    metrics = {c["metric"]: c for c in data["comparisons"]}
    assert set(metrics) == {"revenue_ppm_day", "forwards_per_channel_day", "success_rate", "net_change_share"}
    revenue = metrics["revenue_ppm_day"]
    diffs = [s["treatment"]["revenue_ppm_day"] - s["holdout"]["revenue_ppm_day"] for s in data["seeds"]]
    assert revenue["difference"] == pytest.approx(sum(diffs) / 3) and len(revenue["band"]) == 2
    assert revenue["significant"] == (revenue["band"][0] > 0 or revenue["band"][1] < 0)
    assert run(*args)[1] == out, "the same seeds give the same report"
    assert not (tmp_path / "db.sqlite3").exists(), "an experiment never writes the operator's database"


def test_cli_report_and_bad_input(cli, tmp_path):
    run, policy = cli
    rc, out, err = run(str(policy), "--days", "0.5", "--seeds", "4", "--warmup", "1h", "--interval", "4h")
    assert rc == 0, err
    assert "Treatment against holdout" in out and "one seed gives no band; not significant" in out
    bad = tmp_path / "bad.ini"
    bad.write_text("[x]\nstrategy = balance_based\nfee_ppm = 10\nbin = 3\n")
    rc, _, err = run(str(bad), "--days", "1")
    assert rc == 2 and "bad.ini:4 [x] bin: unknown key (did you mean bins?)" in err
    rc, _, err = run(str(tmp_path / "missing.ini"))
    assert rc == 2 and "missing.ini" in err and "cannot read" in err
    rc, _, err = run(str(policy), "--seeds", "1", "1")
    assert rc == 2 and "each seed once" in err
    with pytest.raises(SystemExit):
        run(str(policy), "--holdout", "1")
