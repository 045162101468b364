"""End to end in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright): the dashboard over a
simulator run shows exactly the API's figures, takes an acknowledgement, and is saved as docs/dashboard.png."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import httpx2
import pytest

from lnlens_core.lens import Lens
from lnlens_core.plugins import get_plugin_manager
from lnlens_core.storage import Store
from lnlens_core.web.driver import SimDriver

from .conftest import build_backend
from .test_stream import _server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(
        "Debian's chromium is not installed (apt-get install chromium chromium-driver)", allow_module_level=True
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (PyPI) is not installed")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"


def _sat(msat: int) -> str:
    return f"{msat // 1000:,}"


@pytest.fixture
def live_sim(tmp_path):
    """A simulated node served live, its driver finished after 8 simulated hours (the figures stand still)."""
    node = build_backend({"network": "synthetic", "nodes": 150, "seed": 5, "payments_per_hour": 4000})
    server = _server(tmp_path, clock=node.clock, live_clock=True)
    server.live.backend = node
    config = server.config

    def make_lens() -> Lens:
        store = Store(config.db_path)
        store.set_meta("clock", "simulated")
        return Lens(config, store=store, clock=node.clock, pm=get_plugin_manager(load_entrypoints=False), backend=node)

    driver = SimDriver(make_lens, server.hub, server.live, speed=1e7, interval_s=3600, max_steps=8)
    driver.start()
    driver._thread.join(60)
    assert driver.error is None
    server.start()
    yield server, node
    server.stop()


def test_dashboard_shows_the_api_figures_in_chromium(live_sim, tmp_path):
    server, node = live_sim
    headers = {"Authorization": f"Bearer {server.token}"}

    def api(path):
        return httpx2.get(f"{server.url}/api/v1/{path}", headers=headers).json()

    with sync_api.sync_playwright() as p:
        # A fresh profile each run (Playwright passes it as --user-data-dir).
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=FLAGS, viewport={"width": 1500, "height": 1250}
        )
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{server.url}/?token={server.token}")
            page.wait_for_function("Number(document.body.dataset.loads || 0) >= 2")  # first load, then the stream's
            assert page.inner_text("#stream") == "stream: live"

            channels = api("channels")["channels"]
            shown = {
                r.get_attribute("data-channel"): r.inner_text() for r in page.query_selector_all("#channels .bar-row")
            }
            assert set(shown) == {c["short_channel_id"] for c in channels}
            for c in channels:
                assert shown[c["short_channel_id"]].endswith(_sat(c["local_balance_msat"]))

            opps = api("opportunities?limit=10")["opportunities"]
            rows = page.query_selector_all("#opportunities tbody tr")
            assert [r.get_attribute("data-channel") for r in rows] == [o["short_channel_id"] for o in opps]
            named = {c["short_channel_id"]: f"{c['short_channel_id']} {c['peer_alias']}".strip() for c in channels}
            assert any(c["peer_alias"] for c in channels)
            for r, o in zip(rows, opps, strict=True):
                assert r.query_selector(".channel").inner_text() == named[o["short_channel_id"]]  # id and alias
                assert r.query_selector(".urgency").inner_text() == str(o["urgency"])
                assert r.query_selector(".missed").inner_text() == _sat(o["missed_revenue_msat"])

            failures = api("forwards/failures?since=24h")["failures"]
            counts = {r.get_attribute("data-cause"): r.query_selector(".count").inner_text()
                      for r in page.query_selector_all("#failures .bar-row")}  # fmt: skip
            assert counts == {cause: f"{n:,}" for cause, n in failures.items()} and counts

            keys = [r.get_attribute("data-key") for r in page.query_selector_all("#forwards tbody tr")]
            forwards = api("forwards?limit=12")["forwards"]
            assert keys == [f["key"] for f in forwards]
            paths = [r.query_selector(".channel").inner_text() for r in page.query_selector_all("#forwards tbody tr")]
            assert paths == [f"{named.get(f['in_channel'], f['in_channel'])} → "
                             f"{named.get(f['out_channel'], f['out_channel'] or '-')}" for f in forwards]  # fmt: skip
            assert "no fee changes" in page.inner_text("#fees") and not api("policy/history")["changes"]

            latest = api("model/predictions?limit=1")["latest"]
            ratios = {r.get_attribute("data-channel"): r.query_selector(".ratios").inner_text()
                      for r in page.query_selector_all("#model .bar-row")}  # fmt: skip
            assert set(ratios) == {p["channel_id"] for p in latest}
            for p in latest:
                pct = (
                    "-" if p["predicted_ratio"] is None else f"{math.floor(p['predicted_ratio'] * 100 + 0.5)}%"
                )  # JS Math.round
                assert ratios[p["channel_id"]].endswith(pct)
            # The time series (one point per stored prediction) follows a click on a channel.
            last = latest[-1]["channel_id"]
            page.click(f'#model .bar-row[data-channel="{last}"]')
            page.wait_for_function(f"document.getElementById('series-channel').textContent.startsWith('{last}')")
            series = api(f"model/predictions?channel={last}&limit=1000")["series"]
            assert page.get_attribute("#series", "data-points") == str(len(series)) and len(series) >= 8

            # Execute the first open suggestion from the page: the simulator runs it, the page shows the outcome.
            suggestions = api("recommendations")["suggestions"]
            assert suggestions
            first = suggestions[0]["id"]
            # expected gain / route cost / budget, as the suggestion carries them (the rules' have no gain or route)
            ev = suggestions[0]["evidence"]
            money = page.inner_text(f'#suggestions tr[data-suggestion="{first}"] .money')
            assert money == " / ".join(_sat3(v) for v in (ev.get("expected_gain_msat"), ev.get("route_cost_msat"),
                                                          suggestions[0]["max_fee_msat"]))  # fmt: skip
            page.click(f'#suggestions tr[data-suggestion="{first}"] button')
            page.wait_for_function(f"document.getElementById('rebalance-result').textContent.startsWith('#{first}:')")
            assert node.stats.rebalances == 1
            page.wait_for_function(
                f"document.querySelector('#suggestions tr[data-suggestion=\"{first}\"] .status').textContent !== 'open'"
            )
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            assert not errors, errors
        finally:
            browser.close()
    assert json.loads(json.dumps(api("node")))["node"]["backend"] == "sim"


def test_the_suggestions_panel_of_a_live_simulator_does_not_send_the_user_to_simulate(tmp_path):
    node = build_backend({"network": "synthetic", "nodes": 150, "seed": 5, "payments_per_hour": 4000})
    server = _server(tmp_path, clock=node.clock, live_clock=True)
    server.live.backend = node  # serve --simulate before the model's first suggestions
    server.start()
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM,
                                                           args=FLAGS)  # fmt: skip
            try:
                page = browser.new_page()
                page.goto(f"{server.url}/?token={server.token}")
                page.wait_for_function("Number(document.body.dataset.loads || 0) >= 1")
                text = page.inner_text("#suggestions")
                assert "serve --simulate" not in text and "none yet" in text
            finally:
                browser.close()
    finally:
        server.stop()


def _sat3(msat) -> str:
    """The dashboard's ``sats3``: sats with up to three decimals, thousands separated; ``-`` when absent."""
    return "-" if msat is None else f"{msat / 1000:,.3f}".rstrip("0").rstrip(".")
