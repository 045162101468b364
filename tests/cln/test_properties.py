"""Property: every ``lens-*`` method, called through lightningd's JSON-RPC path with generated bad parameters
(positional or named, any JSON type), answers with a result or a documented error code, and the plugin lives on."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lnlens_cln.methods import METHODS
from lnlens_cln.replies import ERROR_CODES
from lnlens_testing.cln.lightningd import PluginError

TEXT = ["-1", "0", "1", "", "x", "[/]", "$a$", "\x1b[2J", "24h", "7d", "0s", "800000x1x0", "1x1x1", "true",
        "false", "1e309", "9" * 30, "é|<b>"]  # fmt: skip
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(TEXT))  # fmt: skip
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=2), st.dictionaries(st.sampled_from(TEXT), SCALARS, max_size=2))
NAMES = sorted({p.name for m in METHODS for p in m.params} | {"bogus", "request"})


@st.composite
def calls(draw):
    method = draw(st.sampled_from(METHODS))
    if draw(st.booleans()):
        return method.name, draw(st.lists(VALUES, max_size=len(method.params) + 1))
    own = [p.name for p in method.params]
    keys = st.sampled_from(own) if own and draw(st.integers(0, 3)) else st.sampled_from(NAMES)
    return method.name, draw(st.dictionaries(keys, VALUES, max_size=3))


@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(call=calls())
def test_every_method_answers_bad_parameters_with_a_documented_error(running, call):
    method, params = call
    try:
        running.plugin.call(method, params, timeout=60)
    except PluginError as exc:
        assert exc.code in ERROR_CODES, (method, params, exc.error)
        assert isinstance(exc.message, str) and "Traceback" not in exc.message and "\n" not in exc.message.strip()
    assert running.plugin.call("lens-status")["worker"] == "running"
