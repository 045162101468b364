"""The read-only API: every endpoint against the store it reads, auth failures, bad parameters."""

from __future__ import annotations

import json
import stat

import pytest

from lnlens_core.errors import ConfigError
from lnlens_core.storage import Store
from lnlens_core.web.auth import TOKEN_FILE, ensure_token
from lnlens_core.web.views import ROUTES


def _get(client, path, **params):
    r = client.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_token_file_is_private_and_stable(tmp_path):
    path, token = ensure_token(tmp_path / "d")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(token) >= 32
    assert ensure_token(tmp_path / "d") == (path, token)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        ensure_token(tmp_path / "d")


@pytest.mark.parametrize("path", [*ROUTES, "/api/v1/openapi.json", "/api/v1/nosuch"])
def test_every_path_needs_the_token(web, path):
    client, token, token_path, _ = web
    for headers, problem in (
        ({"Authorization": ""}, "missing API token"),
        ({"Authorization": "Bearer wrong"}, "wrong API token"),
        ({"Authorization": f"Basic {token}"}, "must be 'Bearer <token>'"),
    ):
        r = client.get(path, headers=headers)
        assert r.status_code == 401
        message = r.json()["error"]
        assert problem in message and "Authorization: Bearer <token>" in message
        # An unauthenticated client learns how to send a token, never where the server keeps it.
        assert str(token_path) not in message and str(token_path.parent) not in message and TOKEN_FILE not in message
    # ?token= is for the page and the stream only, never for the JSON API.
    assert client.get(path, params={"token": token}, headers={"Authorization": ""}).status_code == 401


def test_no_write_endpoints(web):
    client = web[0]
    for method in ("post", "put", "delete", "patch"):
        r = getattr(client, method)("/api/v1/channels")
        assert r.status_code == 405 and "read-only" in r.json()["error"]
    r = client.get("/api/v1/nosuch")
    assert r.status_code == 404 and "openapi.json" in r.json()["error"]


def test_node_reports_the_database(web):
    client, _, _, db = web
    data = _get(client, "/api/v1/node")
    store = Store(db)
    assert data["node"] is None  # a database-only server knows no node
    assert data["database"]["clock"] == "simulated"
    assert data["time"] == data["database"]["latest_data_time"] == store.latest_data_time()
    assert data["database"]["rows"]["forwards"] == store.row_counts()["forwards"] > 0


def test_channels_are_the_newest_snapshot(web):
    client, _, _, db = web
    data = _get(client, "/api/v1/channels")
    when, channels = Store(db).latest_channels()
    assert data["time"] == when
    assert [c["short_channel_id"] for c in data["channels"]] == [str(c.channel_id) for c in channels]
    first, ch = data["channels"][0], channels[0]
    assert (first["local_balance_msat"], first["fee_ppm"]) == (ch.local_balance_msat, ch.local_policy.fee_ppm)


def test_forwards_page_through_everything_once(web):
    client, _, _, db = web
    total = Store(db).row_counts()["forwards"]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 997} | ({"cursor": cursor} if cursor else {})
        page = _get(client, "/api/v1/forwards", **params)
        seen.extend(f["key"] for f in page["forwards"])
        times = [f["received_time"] for f in page["forwards"]]
        assert times == sorted(times, reverse=True)
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == total and pages == total // 997 + 1


def test_forwards_filters(web):
    client, _, _, db = web
    failed = _get(client, "/api/v1/forwards", status="local_failed", limit=1000)["forwards"]
    assert failed and {f["status"] for f in failed} == {"local_failed"}
    cid = failed[0]["out_channel"]
    through = _get(client, "/api/v1/forwards", channel=cid, limit=1000)["forwards"]
    assert through and all(cid in (f["in_channel"], f["out_channel"]) for f in through)


def test_failures_by_cause_match_the_store(web):
    client, _, _, db = web
    data = _get(client, "/api/v1/forwards/failures", since="30d")
    sql = "SELECT failure_reason, count(*) FROM forwards WHERE status IN ('failed','local_failed') GROUP BY 1"
    assert data["failures"] == dict(Store(db).db.execute(sql).fetchall()) and data["window_s"] == 30 * 86_400


def test_opportunities_and_recommendations_are_the_latest_run(web):
    client, _, _, db = web
    when, stored = Store(db).latest_opportunities()
    data = _get(client, "/api/v1/opportunities", limit=1000)
    per_channel = [o for o in stored if o["in_channel"] is None]
    assert data["run_time"] == when and per_channel and data["opportunities"] == per_channel
    assert data["pairs"] == [o for o in stored if o["in_channel"] is not None]
    top = _get(client, "/api/v1/opportunities", limit=2, min_urgency=1)["opportunities"]
    assert len(top) <= 2 and all(o["urgency"] >= 1 for o in top)
    recs = _get(client, "/api/v1/recommendations")
    assert recs["rules"] == [r for o in per_channel for r in o["recommendations"]]
    assert recs["model"] == recs["suggestions"] == [] and recs["suggestions_time"] is None  # none offered here


def test_alerts(web):
    client, _, _, db = web
    assert _get(client, "/api/v1/alerts")["alerts"] == json.loads(json.dumps(Store(db).alerts()))


def test_plan_needs_a_node(web):
    r = web[0].get("/api/v1/policy/plan")
    assert r.status_code == 409 and "--simulate" in r.json()["error"]


def test_fee_history_has_the_change_and_its_outcome(web):
    data = _get(web[0], "/api/v1/policy/history")
    (change,) = data["changes"]
    assert change["reason"] == "test change" and change["state"] == "applied" and change["outcome"] is not None
    assert _get(web[0], "/api/v1/policy/history", channel="1x1x1")["changes"] == []


def test_model_and_predictions(web):
    client = web[0]
    model = _get(client, "/api/v1/model")
    assert model["versions"] == [] and model["active"] is None
    assert model["serving"]["name"] or model["serving"]["unavailable"]
    # No daemon measured anything in this database: no drift, and why.
    assert model["serving"]["drift"] is None and "no drift measured" in model["serving"]["drift_note"]
    preds = _get(client, "/api/v1/model/predictions")
    assert preds["latest"] and all(p["predicted_ratio"] == 0.5 and p["model"] == "m-1" for p in preds["latest"])
    one = preds["latest"][0]["channel_id"]
    assert {p["channel_id"] for p in _get(client, "/api/v1/model/predictions", channel=one)["series"]} == {one}


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/api/v1/forwards", {"limit": "0"}, "limit: must be between 1 and 1000"),
        ("/api/v1/forwards", {"limit": "ten"}, "limit: not an integer"),
        ("/api/v1/forwards", {"cursor": "nope"}, "cursor: not a cursor"),
        ("/api/v1/forwards", {"status": "lost"}, "status: must be one of"),
        ("/api/v1/forwards", {"channel": "abc"}, "channel: not a short channel id"),
        ("/api/v1/forwards", {"sort": "x"}, "unknown query parameter(s) sort"),
        ("/api/v1/forwards/failures", {"since": "yesterday"}, "since: not a duration"),
        ("/api/v1/forwards/failures", {"since": "0"}, "since: must be at least 1s"),
        ("/api/v1/opportunities", {"min_urgency": "101"}, "min_urgency: must be between 0 and 100"),
        ("/api/v1/node", {"x": "1"}, "(accepted: none)"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(web, path, params, message):
    r = web[0].get(path, params=params)
    assert r.status_code == 400 and message in r.json()["error"]


def test_repeated_parameter_is_refused(web):
    r = web[0].get("/api/v1/forwards?limit=1&limit=2")
    assert r.status_code == 400 and "limit: given 2 times" in r.json()["error"]


def test_openapi_lists_every_endpoint(web):
    doc = _get(web[0], "/api/v1/openapi.json")
    assert set(doc["paths"]) == set(ROUTES) and doc["openapi"].startswith("3.")
    assert all(list(item) == ["get"] for item in doc["paths"].values())


def _serve_in_thread(argv, monkeypatch):
    """Run ``lnlens ARGV`` (a serve command) on a thread; returns (server, thread, exit codes)."""
    import threading

    from lnlens_core.cli import main
    from lnlens_core.web.server import WebServer

    started: list[WebServer] = []
    real_start = WebServer.start

    def start(self, **kw):
        real_start(self, **kw)
        started.append(self)

    monkeypatch.setattr(WebServer, "start", start)
    done: list[int] = []
    thread = threading.Thread(target=lambda: done.append(main(argv)))
    thread.start()
    for _ in range(1500):
        if started:
            break
        threading.Event().wait(0.02)
    (server,) = started
    return server, thread, done


def test_lnlens_serve_answers_over_http_on_localhost(db_copy, tmp_path, monkeypatch):
    import httpx2

    monkeypatch.setenv("LNLENS_DATA_DIR", str(tmp_path / "data"))
    server, thread, done = _serve_in_thread(["--db", str(db_copy), "serve", "--port", "0"], monkeypatch)
    try:
        assert server.host == "127.0.0.1"
        token = (tmp_path / "data" / "http-token").read_text().strip()
        url = f"{server.url}/api/v1/channels"
        assert httpx2.get(url).status_code == 401
        r = httpx2.get(url, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["channels"]
    finally:
        server.stop()
        thread.join(10)
    assert done == [0]


def test_lnlens_serve_simulate_plans_on_the_live_node(tmp_path, monkeypatch):
    import httpx2

    monkeypatch.setenv("LNLENS_DATA_DIR", str(tmp_path / "data"))
    from lnlens_core.fees.sample import SAMPLE_POLICY

    (tmp_path / "policy.ini").write_text(SAMPLE_POLICY)
    settings = tmp_path / "lnlens.toml"
    settings.write_text(f'policy = "{tmp_path / "policy.ini"}"\n'
                        '[sim]\nnetwork = "synthetic"\nnodes = 150\nseed = 5\npayments_per_hour = 4000\n')  # fmt: skip
    argv = ["--config", str(settings), "--db", str(tmp_path / "live.sqlite3"), "serve", "--simulate", "--port", "0",
            "--speed", "1e7", "--interval", "1h"]  # fmt: skip
    server, thread, done = _serve_in_thread(argv, monkeypatch)
    try:
        headers = {"Authorization": f"Bearer {server.token}"}
        node = httpx2.get(f"{server.url}/api/v1/node", headers=headers).json()
        assert node["node"]["backend"] == "sim" and node["database"]["clock"] == "simulated"
        plan = httpx2.get(f"{server.url}/api/v1/policy/plan", headers=headers)
        assert plan.status_code == 200 and plan.json()["backend"] == "sim"
        first = httpx2.get(f"{server.url}/api/v1/channels", headers=headers).json()["time"]
        for _ in range(500):  # the simulation goes on while the server answers
            if httpx2.get(f"{server.url}/api/v1/channels", headers=headers).json()["time"] > first:
                break
        else:
            raise AssertionError("no new snapshot from the running simulation")
    finally:
        server.stop()
        thread.join(30)
    assert done == [0]


def test_dashboard_page_is_one_self_contained_document(web):
    client, token = web[0], web[1]
    assert client.get("/", headers={"Authorization": ""}).status_code == 401
    r = client.get("/", params={"token": token}, headers={"Authorization": ""})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-store" and r.headers["referrer-policy"] == "no-referrer"
    assert "/*CSS*/" not in r.text and "/*JS*/" not in r.text and "function refresh()" in r.text
    assert "<script src" not in r.text and "<link" not in r.text  # nothing else to fetch with the token


def _report(name: str, *, time: float, psi: float) -> dict:
    """A drift report as lnlens_core.model.learning.drift_report writes it (one feature shown)."""
    return {"model": name, "time": time, "window": {"window_s": 86_400.0, "samples": 40, "from": 1.0, "to": 2.0},
            "inputs": {"status": "shifted" if psi >= 0.25 else "stable", "reason": None, "live_rows": 40,
                       "max_psi": psi, "shifted": ["balance_ratio"] if psi >= 0.25 else [], "moderate": [],
                       "features": {"balance_ratio": {"psi": psi, "mean_shift": 1.2, "reason": None}}},
            "error": {"status": None, "reason": "40 matured samples; not enough", "samples": 40, "live_mae": None,
                      "validation_mae": 0.01, "ratio": None, "current_ratio_mae": None}}  # fmt: skip


def test_model_endpoint_shows_each_versions_newest_stored_drift(web):
    import jsonschema

    from lnlens_core.web.openapi import RESPONSES

    client, _, _, db = web
    serving = _get(client, "/api/v1/model")["serving"]
    store = Store(db)
    try:
        vid = store.add_model_run(time=1.0, name="online", version="7-1", path="/nowhere.onnx", metrics={})
        store.add_model_run(time=1.0, name="online", version="8-1", path="/nowhere.onnx", metrics={})
        store.save_drift(_report("online-7-1", time=10.0, psi=0.02), time=10.0)
        store.save_drift(_report("online-7-1", time=20.0, psi=0.4), time=20.0)
        served = f"{serving['name']}-{serving['version']}"
        store.save_drift(_report(served, time=30.0, psi=0.05), time=30.0)
    finally:
        store.close()
    model = _get(client, "/api/v1/model")
    jsonschema.validate(model, RESPONSES["/api/v1/model"])
    by_id = {v["id"]: v for v in model["versions"]}
    first = by_id[vid]["drift"]
    assert first["time"] == 20.0 and first["inputs"]["max_psi"] == 0.4
    assert first["inputs"]["shifted"] == ["balance_ratio"]
    assert by_id[vid]["drift_note"] is None and "no drift measured" in by_id[vid + 1]["drift_note"]
    assert model["serving"]["drift"]["time"] == 30.0 and model["serving"]["drift_note"] is None
    assert model["serving"]["drift"]["inputs"]["features"]["balance_ratio"]["mean_shift"] == 1.2


def test_opportunities_are_listed_once_however_often_a_run_is_stored(web):
    client, _, _, db = web
    before = _get(client, "/api/v1/opportunities", limit=1000)
    assert before["opportunities"]
    store = Store(db)
    when, items = store.latest_opportunities()
    # A simulator's database: every analysis command's "now" is the newest data, so runs share a time.
    store.save_opportunities(items, run_time=when)
    store.save_opportunities(items, run_time=when)
    # A database written before runs replaced each other: the same run stored twice at one time.
    raw = [(when, o["short_channel_id"], o.get("in_channel"), o["window_s"], o["urgency"], o["missed_revenue_msat"],
            json.dumps(o)) for o in items]  # fmt: skip
    store.db.conn.executemany("INSERT INTO opportunities (run_time, out_channel, in_channel, window_s, urgency,"
                              " missed_revenue_msat, body) VALUES (?, ?, ?, ?, ?, ?, ?)", raw)  # fmt: skip
    store.db.conn.commit()
    store.close()
    after = _get(client, "/api/v1/opportunities", limit=1000)
    assert after["opportunities"] == before["opportunities"] and after["pairs"] == before["pairs"]
    keys = [(o["short_channel_id"], o["in_channel"]) for o in after["opportunities"] + after["pairs"]]
    assert len(keys) == len(set(keys))
    assert len(_get(client, "/api/v1/recommendations")["rules"]) == len(
        [r for o in before["opportunities"] for r in o["recommendations"]]
    )


@pytest.mark.parametrize(("host", "warned"), [("0.0.0.0", True), ("::", True), ("127.0.0.1", False), ("::1", False)])
def test_serve_on_a_non_loopback_host_warns_that_the_token_travels_in_clear_text(
    db_copy, tmp_path, monkeypatch, capsys, host, warned
):
    from lnlens_core.cli.serve_cmd import _loopback

    assert _loopback(host) is not warned
    if host != "0.0.0.0":
        return  # one real server is enough: the rest is the same check
    monkeypatch.setenv("LNLENS_DATA_DIR", str(tmp_path / "data"))
    server, thread, done = _serve_in_thread(["--db", str(db_copy), "serve", "--host", host, "--port", "0"], monkeypatch)
    server.stop()
    thread.join(10)
    err = capsys.readouterr().err
    assert done == [0] and "lnlens: warning: listening on 0.0.0.0" in err and "clear text" in err
