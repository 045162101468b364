// lnlens dashboard: every figure comes from the API (/api/v1/...); the stream only says when to refetch,
// and carries the acknowledgements of rebalance suggestions. No build step, no dependencies.
"use strict";
const TOKEN = new URLSearchParams(location.search).get("token") || "";
const HEADERS = { Authorization: "Bearer " + TOKEN };
const $ = (id) => document.getElementById(id);
const sat = (msat) => msat == null ? "-" : Math.floor(msat / 1000).toLocaleString("en-US");
const sats3 = (msat) => msat == null ? "-" : (msat / 1000).toLocaleString("en-US", { maximumFractionDigits: 3 });
// expected gain / route cost / budget (max fee), sat: the model's suggestions carry all three, the rules' a budget at most
const money = (s) => [(s.evidence || {}).expected_gain_msat, (s.evidence || {}).route_cost_msat, s.max_fee_msat].map(sats3).join(" / ");
const pct = (r) => r == null ? "-" : Math.round(r * 100) + "%";
const when = (t) => t == null ? "-" : new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19) + "Z";
let acks = false, socket = null, pending = null, seriesChannel = null;
const aliases = new Map();  // channel id -> peer alias, from the channels panel's snapshot
const chan = (id) => id == null ? "-" : aliases.get(id) ? `${id} ${aliases.get(id)}` : id;
const state = { loads: 0 };

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("data-")) e.setAttribute(k, v); else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

async function api(path) {
  const r = await fetch("/api/v1/" + path, { headers: HEADERS });
  const body = await r.json();
  if (!r.ok && r.status !== 409) throw new Error(body.error || r.status);
  return body;
}

function rows(tableId, items, render, empty) {
  const body = $(tableId).querySelector("tbody");
  const span = $(tableId).querySelectorAll("thead th").length;
  body.replaceChildren(...(items.length ? items.map(render) : [el("tr", { class: "empty" }, Object.assign(el("td", {}, empty), { colSpan: span }))]));
}

function drawChannels(data) {
  $("channels-count").textContent = `(${data.channels.length}, snapshot ${when(data.time)})`;
  aliases.clear();
  for (const c of data.channels) if (c.peer_alias) aliases.set(c.short_channel_id, c.peer_alias);
  const sorted = [...data.channels].sort((a, b) => (a.balance_ratio ?? 0) - (b.balance_ratio ?? 0));
  $("channels").replaceChildren(...sorted.map((c) => el("div",
    { class: "bar-row", "data-channel": c.short_channel_id, title: `${c.peer_alias || c.peer_id} · ${c.fee_ppm} ppm` },
    el("span", { class: "channel" }, chan(c.short_channel_id)),
    el("div", { class: "bar" }, Object.assign(el("div", { class: "fill" }), { style: `width:${(c.balance_ratio ?? 0) * 100}%` })),
    el("span", { class: "local-sat num" }, sat(c.local_balance_msat)))));
}

function drawOpportunities(data) {
  rows("opportunities", data.opportunities, (o) => el("tr", { "data-channel": o.short_channel_id },
    el("td", { class: "channel" }, chan(o.short_channel_id)), el("td", { class: "num urgency" }, o.urgency),
    el("td", { class: "num missed" }, sat(o.missed_revenue_msat)), el("td", {}, o.cause ?? "-"),
    el("td", { class: "reason" }, o.recommendations.map((r) => r.type).join(", ") || "-")), "no opportunity in the latest run");
}

function drawSuggestions(data, live) {
  rows("suggestions", data.suggestions, (s) => {
    const button = el("button", { disabled: !acks || s.status !== "open" }, "execute");
    button.onclick = () => { socket.send(JSON.stringify({ type: "ack", suggestion_id: s.id })); button.disabled = true; };
    return el("tr", { "data-suggestion": s.id }, el("td", {}, s.id), el("td", {}, s.origin),
      el("td", { class: "channel" }, `${chan(s.source_channel)} →`, el("br"), chan(s.target_channel)), el("td", { class: "num" }, sat(s.amount_msat)),
      el("td", { class: "num money" }, money(s)), el("td", { class: "status" }, s.status), el("td", {}, button));
  }, data.suggestions_time != null ? `none in the model's latest run (${when(data.suggestions_time)})`
    : live ? "none yet: the model suggests rebalances at each analysis interval"
    : "none: this server reads a database only; rebalance suggestions come from a running node (lnlens serve --simulate, or the CLN plugin with lens-http-port)");
}

function drawForwards(data) {
  rows("forwards", data.forwards, (f) => el("tr", { "data-key": f.key },
    el("td", {}, when(f.received_time)), el("td", { class: "channel" }, `${chan(f.in_channel)} → ${chan(f.out_channel)}`),
    el("td", { class: "num" }, sat(f.out_msat ?? f.in_msat)), el("td", { class: "num" }, f.fee_msat ?? "-"),
    el("td", { class: "status-" + f.status }, f.failure_reason ? `${f.status} (${f.failure_reason})` : f.status)), "no forwards stored");
}

function drawFailures(data) {
  const counts = Object.entries(data.failures).sort((a, b) => b[1] - a[1]);
  const top = counts.length ? counts[0][1] : 1;
  $("failures").replaceChildren(...counts.map(([cause, n]) => el("div", { class: "bar-row", "data-cause": cause },
    el("span", {}, cause),
    el("div", { class: "bar" }, Object.assign(el("div", { class: "fill" }), { style: `width:${(n / top) * 100}%;background:var(--bad)` })),
    el("span", { class: "count num" }, n.toLocaleString("en-US")))));
}

function drawFees(data) {
  rows("fees", [...data.changes].reverse().slice(0, 20), (c) => {
    const oldP = JSON.parse(c.old_policy), newP = JSON.parse(c.new_policy), o = c.outcome;
    return el("tr", { "data-journal": c.id }, el("td", { class: "channel" }, chan(c.channel_id)),
      el("td", { class: "num" }, `${oldP.fee_ppm} → ${newP.fee_ppm}`), el("td", {}, c.state),
      el("td", { class: "num" }, o ? `${sat(o.before.revenue_msat)} → ${sat(o.after.revenue_msat)}` : "-"),
      el("td", { class: "num" }, o ? `${sat(o.revenue_delta_msat)} ± ${sat(o.revenue_band_msat)}` : "-"));
  }, "no fee changes in the journal");
}

function drawModel(model, preds) {
  const s = model.serving;
  $("model-name").textContent = s.name ? `${s.name}-${s.version}` : `(not serving: ${s.unavailable})`;
  $("model").replaceChildren(...preds.latest.map((p) => {
    const bar = el("div", { class: "bar" }, Object.assign(el("div", { class: "fill" }), { style: `width:${(p.current_ratio ?? 0) * 100}%` }));
    if (p.predicted_ratio != null) bar.append(Object.assign(el("div", { class: "mark" }), { style: `left:calc(${p.predicted_ratio * 100}% - 1px)` }));
    const row = el("div", { class: "bar-row", "data-channel": p.channel_id, title: "bar: current local share; mark: model's optimum" },
      el("span", { class: "channel" }, chan(p.channel_id)), bar, el("span", { class: "ratios num" }, `${pct(p.current_ratio)} → ${pct(p.predicted_ratio)}`));
    row.onclick = () => { seriesChannel = p.channel_id; drawSeries().catch(showError); };
    return row;
  }));
  $("model-versions").textContent = model.versions.length ? model.versions.map((v) => `${v.name}-${v.version}${v.active ? " (active)" : ""}`).join(", ") : "none (the shipped model serves)";
  if (seriesChannel === null && preds.latest.length) seriesChannel = preds.latest[0].channel_id;
}

// SEEDS 67: the model's optimum and the channel's ratio over time, one line each, from the stored predictions.
async function drawSeries() {
  if (seriesChannel === null) return;
  const data = await api(`model/predictions?channel=${encodeURIComponent(seriesChannel)}&limit=1000`);
  const pts = data.series;
  $("series-channel").textContent = `${chan(seriesChannel)} (${pts.length} predictions)`;
  const t0 = pts.length ? pts[0].time : 0, t1 = pts.length ? pts[pts.length - 1].time : 1;
  const x = (t) => t1 > t0 ? ((t - t0) / (t1 - t0)) * 500 : 250;
  const line = (key, cls) => {
    const poly = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    poly.setAttribute("class", cls);
    poly.setAttribute("points", pts.filter((p) => p[key] != null).map((p) => `${x(p.time).toFixed(1)},${(120 - p[key] * 120).toFixed(1)}`).join(" "));
    return poly;
  };
  $("series").replaceChildren(line("current_ratio", "current"), line("predicted_ratio", "predicted"));
  $("series").dataset.points = pts.length;
}

async function refresh() {
  const [node, channels, opps, recs, fwd, fails, hist, model, preds] = await Promise.all([
    api("node"), api("channels"), api("opportunities?limit=10"), api("recommendations"), api("forwards?limit=12"),
    api("forwards/failures?since=24h"), api("policy/history"), api("model"), api("model/predictions?limit=1"),
  ]);
  const n = node.node;
  $("node").textContent = n ? `${n.alias} (${n.backend}, block ${n.block_height})` : node.database.path;
  $("data-time").textContent = when(node.time);
  drawChannels(channels); drawOpportunities(opps); drawSuggestions(recs, n != null); drawForwards(fwd);
  drawFailures(fails); drawFees(hist); drawModel(model, preds);
  await drawSeries();
  state.loads += 1;
  document.body.dataset.loads = state.loads;
}

function schedule() {  // at most one refetch per second, however busy the stream
  if (pending) return;
  pending = setTimeout(() => { pending = null; refresh().catch(showError); }, 1000);
}

function showError(e) { $("stream").textContent = "error: " + e.message; }

function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${proto}://${location.host}/api/v1/stream?token=${encodeURIComponent(TOKEN)}`);
  socket.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (m.type === "hello") { acks = m.data.acks; $("stream").textContent = "stream: live"; $("stream").classList.add("live"); schedule(); }
    else if (m.type === "rebalance_result") {
      const d = m.data;
      $("rebalance-result").textContent = `#${d.suggestion_id}: ${d.ok ? "moved " + sat(d.amount_msat) + " sat for " + d.fee_msat + " msat" : "failed: " + d.reason}`;
      schedule();
    } else if (m.type === "error") { $("rebalance-result").textContent = m.data.message; }
    else if (m.type !== "heartbeat") schedule();
  };
  socket.onclose = (ev) => {
    $("stream").textContent = `stream: closed (${ev.code}${ev.reason ? ", " + ev.reason : ""}), reconnecting`;
    $("stream").classList.remove("live");
    setTimeout(connect, 3000);
  };
}

refresh().catch(showError);
connect();
