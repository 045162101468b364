"""D.1 and check mode: configparser semantics, and every error naming file, line, section and key."""

from __future__ import annotations

import pytest

from lnlens_core.errors import ConfigError
from lnlens_core.fees.chargelnd import check_policy_file
from lnlens_core.fees.chargelnd.parser import locate, parse_policy_text


def problems_of(harness, text, name="charge.ini"):
    path = harness.write(text, name)
    report = check_policy_file(path, harness.strategies, base_dir=harness.dir)
    return path, report.problems


def test_duplicate_section_names_its_line(harness):
    with pytest.raises(ConfigError) as err:
        harness.load("[a]\nstrategy = ignore\n\n[a]\nstrategy = ignore\n")
    assert err.value.problems == (f"{harness.dir / 'charge.ini'}:4 [a]: duplicate section",)


def test_duplicate_key_names_its_line(harness):
    with pytest.raises(ConfigError) as err:
        harness.load("[a]\nstrategy = static\nfee_ppm = 1\nFEE_PPM = 2\n")
    assert err.value.problems == (f"{harness.dir / 'charge.ini'}:4 [a] fee_ppm: duplicate key in this section",)


def test_key_before_any_section(harness):
    with pytest.raises(ConfigError, match=r"charge.ini:2: a key before any \[section\] header"):
        harness.load("# comment\nfee_ppm = 1\n")


def test_line_that_is_neither_header_nor_key(harness):
    with pytest.raises(ConfigError, match=r"charge.ini:3: not a section header or key = value: 'oops'"):
        harness.load("[a]\nstrategy = ignore\noops\n")


def test_inline_comments_are_not_stripped(harness):
    path, problems = problems_of(harness, "[a]\nstrategy = static\n\nfee_ppm = 5  # five\n")
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:4 [a] fee_ppm: invalid literal for int()")


def test_check_collects_every_problem_with_its_location(harness):
    text = """# a policy file with one problem per section
[unknown-namespace]
chan.min_ratio = 0.1
peer.min_fee = 3
strategy = ignore

[unknown-key]
chan.min_ratoi = 0.5
strategy = ignore

[unknown-strategy]
strategy = proportionnal

[bad-param]
strategy = static
fee_ppm = 10
min_fee_ppm = 3

[bad-values]
chan.initiator = maybe
chan.min_capacity = 1.5
chan.max_ratio = half
chan.activity_period = 3w
strategy = ignore

[activity-without-period]
chan.min_htlcs_in = 1
strategy = ignore

[typo-property]
strategy = static
fee_pmm = 10

[bad-list]
chan.id = 800000x1x0, nonsense
node.id = 02ABCDEF
strategy = ignore

[missing-required]
strategy = proportional
max_fee_ppm = 100
"""
    path, problems = problems_of(harness, text)
    p = str(path)
    expected = [
        f"{p}:4 [unknown-namespace] peer.min_fee: unknown namespace 'peer' (known: chan, node, onchain)",
        f"{p}:8 [unknown-key] chan.min_ratoi: unknown key (did you mean chan.min_ratio?)",
        f"{p}:12 [unknown-strategy] strategy: unknown strategy 'proportionnal' (known: ",
        f"{p}:17 [bad-param] min_fee_ppm: strategy 'static' does not take min_fee_ppm (it accepts: base_fee_msat, "
        "fee_ppm, inbound_base_fee_msat, inbound_fee_ppm;",
        f"{p}:20 [bad-values] chan.initiator: not a boolean (1/yes/true/on or 0/no/false/off): 'maybe'",
        f"{p}:21 [bad-values] chan.min_capacity: invalid literal for int() with base 10: '1.5'",
        f"{p}:22 [bad-values] chan.max_ratio: could not convert string to float: 'half'",
        f"{p}:23 [bad-values] chan.activity_period: not a period",
        f"{p}:27 [activity-without-period] chan.min_htlcs_in: needs chan.activity_period in the same section",
        f"{p}:32 [typo-property] fee_pmm: unknown key (did you mean fee_ppm?)",
        f"{p}:35 [bad-list] chan.id: not a channel id",
        f"{p}:36 [bad-list] node.id: not a node id",
        f"{p}:40 [missing-required] strategy: strategy 'proportional' needs min_fee_ppm, set neither here nor in an "
        "earlier non-final section",
    ]
    assert len(problems) == len(expected), "\n".join(problems)
    for want in expected:
        assert any(problem.startswith(want) for problem in problems), f"{want}\nnot in\n" + "\n".join(problems)
    with pytest.raises(ConfigError) as err:
        harness.load(text)
    assert len(err.value.problems) == len(expected)


def test_required_parameter_from_an_earlier_non_final_section_is_accepted(harness, ref):
    text = "[cond]\nchan.min_ratio = 0.9\nmin_fee_ppm = 10\n\n[p]\nstrategy = proportional\nmax_fee_ppm = 100\n"
    harness.load(text)  # reachable through [cond], so the file is valid
    decision = harness.decide(text)  # but [cond] does not match the reference channel (ratio 0.405)
    assert decision.policy == "p" and decision.update is None
    assert "min_fee_ppm" in decision.error and "[p]" in decision.error


def test_interpolation_errors_name_the_key(harness):
    path, problems = problems_of(harness, "[a]\nstrategy = static\nfee_ppm = ${nothing}\n")
    assert problems == (
        f"{path}:3 [a] fee_ppm: ${{nothing}} refers to a key that does not exist (write $$ for a literal $)",
    )
    path, problems = problems_of(harness, "[a]\nstrategy = static\nfee_ppm = 5$\n")
    assert len(problems) == 1 and problems[0].startswith(f"{path}:3 [a] fee_ppm: bad interpolation")


def test_dollar_dollar_is_a_literal_dollar():
    parsed, problems = parse_policy_text("[a]\nconfig_file = cost$$.ini\n", "x.ini")
    assert problems == [] and parsed.sections[0].get("config_file").value == "cost$.ini"


def test_multi_line_values_comments_and_blank_lines(harness, ref):
    text = """; charge-lnd style comments
# on whole lines only
[pick]
chan.id = 1x1x1,
    799000x5x1,

    2x2x2
strategy = static
fee_ppm = 4
"""
    decision = harness.decide(text)
    assert decision.policy == "pick" and decision.update.fee_ppm == 4
    assert harness.load(text).policies[0].key_lines["fee_ppm"] == 9


def test_numbers_use_python_int_and_float(harness):
    text = "[a]\nchan.min_capacity = +1_000\nchan.max_ratio = 1e0\nchan.max_age = 5_000_0000\nstrategy = static\n"
    text += "fee_ppm = 1_0\n"
    policy = harness.load(text).policies[0]
    assert policy.setting("chan.min_capacity") == 1000
    assert policy.setting("chan.max_ratio") == 1.0
    assert policy.setting("chan.max_age") == 50_000_000
    assert policy.properties["fee_ppm"] == 10
    assert harness.load("[a]\nchan.max_ratio = inf\nstrategy = ignore\n").policies[0].setting("chan.max_ratio") > 1


def test_property_booleans_use_configparser_words(harness):
    """Fixed quirk 2: `sum_peer_chans = false` is false (charge-lnd 0.3.1 reads any non-empty text as true)."""
    text = (
        "[a]\nstrategy = proportional\nmin_fee_ppm = 1\nmax_fee_ppm = 2\nsum_peer_chans = false\ncb_clear_limit = no\n"
    )
    props = harness.load(text).policies[0].properties
    assert props["sum_peer_chans"] is False and props["cb_clear_limit"] is False
    _, problems = problems_of(harness, text.replace("= false", "= nope"))
    assert len(problems) == 1 and "sum_peer_chans: not a boolean" in problems[0]


def test_list_files(harness, ref):
    (harness.dir / "lists").mkdir()
    (harness.dir / "lists" / "chans.txt").write_text(
        "# channels to match\n1x1x1, 799000:5:1  # ours\n\nnot-a-channel\n" + str((2 << 40) | (3 << 16) | 4) + "\n"
    )
    (harness.dir / "nodes.txt").write_text(f"{ref.PEER} # the peer\n{ref.PEER.upper()}\n")
    text = "[a]\nchan.id = file://lists/chans.txt\nnode.id = 03" + "cd" * 32 + ", file://nodes.txt\nstrategy = ignore\n"
    policy_set = harness.load(text)
    ids = policy_set.policies[0].setting("chan.id")
    assert ids == frozenset({"1x1x1", "799000x5x1", "2x3x4"})
    assert policy_set.policies[0].setting("node.id") == frozenset({"03" + "cd" * 32, ref.PEER})
    assert [w.split(": ", 1)[0] for w in policy_set.warnings] == [
        f"{harness.dir / 'lists' / 'chans.txt'}:4",
        f"{harness.dir / 'nodes.txt'}:2",
    ]
    assert harness.decide(text).policy == "a"


def test_missing_list_file(harness):
    path, problems = problems_of(harness, "[a]\nnode.id = file://nope.txt\nstrategy = ignore\n")
    assert problems == (
        f"{path}:2 [a] node.id: cannot read list file {harness.dir / 'nope.txt'}: No such file or directory",
    )


def test_default_criteria_are_reported_as_ignored(harness):
    policy_set = harness.load("[default]\nchan.min_ratio = 0.9\nstrategy = static\nfee_ppm = 1\n")
    assert policy_set.warnings and "criteria are ignored" in policy_set.warnings[0]
    assert harness.decide("[default]\nchan.min_ratio = 0.9\nstrategy = static\nfee_ppm = 1\n").policy == "default"


def test_missing_policy_file(harness):
    report = check_policy_file(harness.dir / "absent.ini", harness.strategies)
    assert report.problems == (f"{harness.dir / 'absent.ini'}: cannot read policy file (No such file or directory)",)
    with pytest.raises(ConfigError, match="cannot read policy file"):
        from lnlens_core.fees.chargelnd import load_policy_file

        load_policy_file(harness.dir / "absent.ini", harness.strategies)


def test_locate_follows_configparser_continuations():
    text = "[a]\nx = 1\n  y = 2\n# c\nz: 3\n[b]\n  w = 4\n"
    sections, keys = locate(text)
    assert sections == {"a": 1, "b": 6}
    assert keys == {("a", "x"): 2, ("a", "z"): 5, ("b", "w"): 7}


def test_third_party_parameters_are_converted_by_annotation(harness, strategies):
    class Ladder:
        name = "ladder"

        def __init__(self, *, steps: int = 3, bump: float = 0.5, label: str = "", wide: bool = False) -> None:
            self.steps, self.bump, self.label, self.wide = steps, bump, label, wide

        def propose(self, channel, ctx):
            return None

    harness.strategies = {**strategies, "ladder": Ladder}
    props = harness.load("[l]\nstrategy = ladder\nsteps = 1_0\nbump = 2e-1\nlabel = x\nwide = yes\n").policies[0]
    assert {k: props.properties[k] for k in ("steps", "bump", "label", "wide")} == {
        "steps": 10,
        "bump": 0.2,
        "label": "x",
        "wide": True,
    }
    _, problems = problems_of(harness, "[l]\nstrategy = ladder\nsteps = many\n")
    assert len(problems) == 1 and "[l] steps: invalid literal for int()" in problems[0]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("86400", 86400),
        ("+60", 60),
        ("1_0m", 600),
        ("12h", 43200),
        ("7d", 604800),
        ("30s", 30),
        (" 2d ", 172800),
        ("7 d", 604800),
    ],  # fmt: skip
)
def test_activity_period_forms(harness, text, seconds):
    policy = harness.load(f"[a]\nchan.activity_period = {text}\nstrategy = ignore\n").policies[0]
    assert policy.setting("chan.activity_period") == seconds
    assert harness.load(f"[a]\nchan.activity_period = {text}\nstrategy = ignore\n").activity_windows_s() == {seconds}


@pytest.mark.parametrize("text", ["3w", "d", "-1d", "1.5h", "d7"])
def test_bad_activity_periods(harness, text):
    _, problems = problems_of(harness, f"[a]\nchan.activity_period = {text}\nstrategy = ignore\n")
    assert len(problems) == 1 and problems[0].split(": ", 1)[0].endswith(":2 [a] chan.activity_period")


def test_problems_in_DEFAULT_are_reported_once_where_they_are_written(harness):
    text = "[DEFAULT]\nfee_ppm = lots\nchan.min_ratoi = 1\nbase_fee_msat = ${nope}\n\n[a]\nstrategy = ignore\n\n[b]\n"
    text += "strategy = ignore\n"
    path, problems = problems_of(harness, text)
    assert [p.split(": ", 1)[0] for p in problems] == [
        f"{path}:4 [DEFAULT] base_fee_msat",
        f"{path}:2 [DEFAULT] fee_ppm",
        f"{path}:3 [DEFAULT] chan.min_ratoi",
    ]


def test_a_file_that_is_not_utf8(harness):
    path = harness.dir / "latin1.ini"
    path.write_bytes(b"[caf\xe9]\nstrategy = ignore\n")
    report = check_policy_file(path, harness.strategies)
    assert report.problems == (f"{path}: not UTF-8 text (invalid continuation byte at byte 4)",)
    harness.write("[o]\nstrategy = use_config\nconfig_file = latin1.ini\n")
    with pytest.raises(ConfigError, match="latin1.ini: not UTF-8 text"):
        harness.load("[o]\nstrategy = use_config\nconfig_file = latin1.ini\n")


def warnings_of(harness, text):
    path = harness.write(text)
    report = check_policy_file(path, harness.strategies, base_dir=harness.dir)
    assert report.problems == ()
    return path, report.warnings


def test_check_warns_about_values_the_engine_clamps(harness):
    text = """[neg]
chan.min_ratio = 0.8
chan.max_ratio = 0.2
strategy = static
fee_ppm = -5
base_fee_msat = -1

[huge]
chan.min_ratio = 1.5
strategy = proportional
min_fee_ppm = 900000
max_fee_ppm = -10
max_htlc_msat_ratio = 2

[bare]
node.max_shared_ratio = -0.1
strategy = static
base_fee_msat = 0
"""
    path, warnings = warnings_of(harness, text)
    assert [w.split(": ", 1)[0] for w in warnings] == [
        f"{path}:17 [bare] strategy",
        f"{path}:6 [neg] base_fee_msat",
        f"{path}:5 [neg] fee_ppm",
        f"{path}:2 [neg] chan.min_ratio",
        f"{path}:12 [huge] max_fee_ppm",
        f"{path}:11 [huge] min_fee_ppm",
        f"{path}:11 [huge] min_fee_ppm",
        f"{path}:13 [huge] max_htlc_msat_ratio",
        f"{path}:9 [huge] chan.min_ratio",
        f"{path}:16 [bare] node.max_shared_ratio",
    ]
    assert "90 % of every forward" in warnings[5] and warnings[3].endswith("never matches")
    assert warnings[0].endswith("static without fee_ppm keeps every channel's current fee rate")


def test_check_warns_about_an_empty_file(harness):
    path, warnings = warnings_of(harness, "# nothing yet\n[DEFAULT]\nfee_ppm = 1\n")
    assert warnings == (f"{path}: no policies in this file: it never changes a channel",)


def test_a_static_section_gets_fee_ppm_from_an_earlier_non_final_one(harness):
    assert warnings_of(harness, "[all]\nfee_ppm = 5\n\n[s]\nstrategy = static\n")[1] == ()


def test_echoed_values_are_cut_to_80_characters(harness):
    long = "9" * 50 + "x" * 100
    path, problems = problems_of(harness, f"[a]\nstrategy = static\nfee_ppm = {long}\n{'y' * 120}\n")
    assert problems == (f"{path}:4: not a section header or key = value: {'y' * 80!r}…",)
    path, problems = problems_of(harness, f"[a]\nstrategy = static\nfee_ppm = {long}\n")
    assert problems == (f"{path}:3 [a] fee_ppm: invalid literal for int() with base 10: {long[:80]!r}…",)


def test_an_error_never_prints_another_files_contents(harness):
    secret = harness.dir / "shadow"
    secret.write_text("root:$6$s3cr3t:19000:0:99999:7:::\n")
    harness.write(f"[o]\nstrategy = use_config\nconfig_file = {secret}\n")
    problems = check_policy_file(harness.dir / "charge.ini", harness.strategies, base_dir=harness.dir).problems
    assert problems == (
        f"{secret}:1: a key before any [section] header (line not shown: it is another file than the one checked)",
    )
    other = harness.dir / "other.ini"
    other.write_text("[p]\nstrategy = s3cr3t\n\n[q]\nfee_ppm = s3cr3t\n${s3cr3t}\n")
    harness.write(f"[o]\nstrategy = use_config\nconfig_file = {other}\n\n[l]\nnode.id = file://{secret}\n")
    report = check_policy_file(harness.dir / "charge.ini", harness.strategies, base_dir=harness.dir)
    assert report.problems and not any("s3cr3t" in p for p in report.problems + report.warnings)
    assert report.warnings[0] == f"{secret}:1: not a node id (66 lower-case hex characters), skipped"
