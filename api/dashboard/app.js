// tocsin's dashboard: the live stream (GET /v1/stream), the API for
// answers and replays, /metrics for each endpoint's backlog. No build step,
// no framework; Chart.js (embedded in the binary) draws the charts.
"use strict";

const severities = ["info", "low", "medium", "high", "critical"];
const maxRows = 200;
const state = { token: null, lastSeq: null, ws: null, retry: 1000,
                events: new Map(), endpoints: new Map(), buckets: new Map() };

// --- the token: from the URL fragment once (then off the address bar), else
// this tab's session storage, else asked for.
function takeToken() {
  const m = /(?:^|&)token=([^&]*)/.exec(location.hash.slice(1));
  if (m) {
    sessionStorage.setItem("tocsin.token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("tocsin.token");
}

function askToken() {
  const form = document.getElementById("login");
  form.hidden = false;
  form.onsubmit = (e) => {
    e.preventDefault();
    const t = document.getElementById("token").value.trim();
    if (!t) return;
    sessionStorage.setItem("tocsin.token", t);
    form.hidden = true;
    start(t);
  };
}

async function api(method, path, body) {
  const r = await fetch(path, {
    method,
    headers: Object.assign({ "Authorization": "Bearer " + state.token },
                           body ? { "Content-Type": "application/json" } : {}),
    body: body ? JSON.stringify(body) : undefined,
  });
  if (r.status === 401) { sessionStorage.removeItem("tocsin.token"); askToken(); }
  const text = await r.text();
  if (!r.ok) throw new Error(r.status + " " + text);
  return text;
}

// Says what went wrong in the header (no alert(): it would block the page).
function notice(text) {
  const n = document.getElementById("notice");
  n.textContent = text;
  n.hidden = false;
  setTimeout(() => { n.hidden = true; }, 8000);
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : String(c ?? ""));
  return e;
}

// --- the stream
function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const since = state.lastSeq !== null ? "?since=" + state.lastSeq : "";
  const ws = new WebSocket(proto + "//" + location.host + "/v1/stream" + since,
                           ["tocsin", state.token]);
  state.ws = ws;
  const conn = document.getElementById("conn");
  ws.onopen = () => { conn.textContent = "live"; conn.className = "conn up";
                      state.retry = 1000; };
  ws.onmessage = (m) => onFrame(JSON.parse(m.data));
  ws.onclose = () => {
    conn.textContent = "reconnecting…"; conn.className = "conn down";
    setTimeout(connect, state.retry);
    state.retry = Math.min(state.retry * 2, 15000);
  };
}

function bucket() {
  const s = Math.floor(Date.now() / 1000);
  if (!state.buckets.has(s))
    state.buckets.set(s, { accepted: 0, delivered: 0, latency: 0, attempts: 0 });
  return state.buckets.get(s);
}

function endpointStats(id) {
  if (!state.endpoints.has(id))
    state.endpoints.set(id, { ok: 0, failed: 0, lastError: "" });
  return state.endpoints.get(id);
}

function onFrame(f) {
  if (typeof f.seq === "number") state.lastSeq = f.seq;
  switch (f.type) {
  case "event.accepted": bucket().accepted++; addEvent(f); break;
  case "delivery.attempted": {
    const b = bucket(); b.attempts++; b.latency += f.latency_ms || 0;
    const s = endpointStats(f.endpoint_id);
    if (f.status >= 200 && f.status < 300) s.ok++;
    else { s.failed++; s.lastError = f.error || ("HTTP " + f.status); }
    break;
  }
  case "delivery.delivered": bucket().delivered++; break;
  case "delivery.dead_lettered": refreshDeadLetters(); break;
  case "event.acknowledged": case "event.resolved":
    setEventState(f.event_id, f.type.slice(6), f.by); break;
  case "stream.lagged": console.warn("stream lagged", f.dropped); break;
  }
}

// --- the feed
function addEvent(f) {
  const ev = f.event || {};
  const sev = ev.severity || "info";
  const row = el("tr", { class: "ev", "data-id": ev.id, "data-type": ev.type,
                         "data-severity": severities.indexOf(sev),
                         "data-agent": ev.agent_id || "",
                         onclick: () => showEvent(ev.id) },
    el("td", { title: ev.timestamp || f.at || "" },
       (ev.timestamp || f.at || "").slice(11, 19)),
    el("td", {}, el("span", { class: "sev sev-" + sev }, sev)),
    el("td", {}, ev.type), el("td", {}, ev.agent_id || ""),
    el("td", {}, ev.summary || ""),
    el("td", { class: "state" }, "open"),
    el("td", {},
       el("button", { class: "ack", onclick: (e) => { e.stopPropagation();
         answer(ev.id, "ack"); } }, "Acknowledge"),
       " ",
       el("button", { class: "resolve", onclick: (e) => { e.stopPropagation();
         answer(ev.id, "resolve"); } }, "Resolve")));
  const body = document.querySelector("#feed tbody");
  body.prepend(row);
  state.events.set(ev.id, row);
  while (body.rows.length > maxRows) {
    state.events.delete(body.lastChild.dataset.id);
    body.lastChild.remove();
  }
  applyFilters(row);
}

function setEventState(id, st, by) {
  const row = state.events.get(id);
  if (!row) return;
  const cell = row.querySelector(".state");
  cell.textContent = st + (by ? " by " + by : "");
  cell.className = "state state-" + st;
  if (st === "resolved" || st === "acknowledged")
    row.querySelector(".ack").disabled = true;
  if (st === "resolved") row.querySelector(".resolve").disabled = true;
}

async function answer(id, verb) {
  try {
    const out = JSON.parse(await api("POST", "/v1/events/" + id + "/" + verb));
    const by = out[out.state] ? out[out.state].by : "";
    setEventState(id, out.state, by);
  } catch (e) { notice("failed: " + e.message); }
}

function applyFilters(row) {
  const type = document.getElementById("f-type").value;
  const sev = Number(document.getElementById("f-severity").value);
  const agent = document.getElementById("f-agent").value.trim();
  const show = (!type || row.dataset.type === type) &&
               Number(row.dataset.severity) >= sev &&
               (!agent || row.dataset.agent.includes(agent));
  row.hidden = !show;
}

async function showEvent(id) {
  const box = document.getElementById("detail");
  try {
    const ev = JSON.parse(await api("GET", "/v1/events/" + id));
    box.replaceChildren(el("strong", {}, id + " — " + ev.state));
    const t = el("table", {}, el("tr", {}, el("th", {}, "endpoint"),
      el("th", {}, "attempt"), el("th", {}, "status"), el("th", {}, "latency ms"),
      el("th", {}, "response / error")));
    for (const d of ev.deliveries)
      for (const a of d.attempts)
        t.append(el("tr", { class: "attempt" }, el("td", {}, d.endpoint_id +
          (d.notice ? " (" + d.notice + ")" : "")), el("td", {}, a.number),
          el("td", {}, a.status), el("td", {}, a.latency_ms),
          el("td", {}, (a.error || a.response || "").slice(0, 200))));
    box.append(t);
    box.hidden = false;
  } catch (e) { box.textContent = e.message; box.hidden = false; }
}

// --- endpoints: definitions, /metrics for the backlog, the stream for the rest
function parseMetrics(text) {
  const out = {};
  for (const line of text.split("\n")) {
    const m = /^(tocsin_\w+)\{endpoint="([^"]*)"\} (\S+)$/.exec(line);
    if (!m) continue;
    (out[m[2]] ??= {})[m[1]] = Number(m[3]);
  }
  return out;
}

async function refreshEndpoints() {
  try {
    const list = JSON.parse(await api("GET", "/v1/endpoints")).endpoints;
    const metrics = parseMetrics(await api("GET", "/metrics"));
    const body = document.querySelector("#endpoints tbody");
    body.replaceChildren();
    for (const ep of list) {
      const m = metrics[ep.id] || {};
      const s = endpointStats(ep.id);
      const total = s.ok + s.failed;
      const open = m.tocsin_circuit_open === 1;
      const rl = ep.rate_limit ? ep.rate_limit.per_second + "/s" : "—";
      body.append(el("tr", { "data-id": ep.id }, el("td", {}, ep.id),
        el("td", {}, ep.transport), el("td", {}, m.tocsin_pending_deliveries ?? ""),
        el("td", {}, m.tocsin_oldest_pending_age_seconds
                       ? Math.round(m.tocsin_oldest_pending_age_seconds) + " s" : "—"),
        el("td", {}, total ? Math.round(100 * s.ok / total) + " %" : "—"),
        el("td", {}, s.lastError || "—"),
        el("td", { class: open ? "open" : "" }, open ? "open" : "closed"),
        el("td", {}, rl)));
    }
  } catch (e) { console.warn(e); }
}

async function refreshDeadLetters() {
  try {
    const dead = JSON.parse(await api("GET", "/v1/dead-letters?limit=50")).dead_letters;
    const body = document.querySelector("#dead tbody");
    body.replaceChildren();
    for (const d of dead)
      body.append(el("tr", { "data-id": d.id }, el("td", {}, d.id),
        el("td", {}, d.endpoint_id), el("td", {}, d.event_id),
        el("td", {}, d.reason), el("td", {}, d.attempts.length),
        el("td", {}, el("button", { class: "replay", onclick: async () => {
          try { await api("POST", "/v1/dead-letters/" + d.id + "/replay");
                refreshDeadLetters(); }
          catch (e) { notice("failed: " + e.message); } } }, "Replay"))));
  } catch (e) { console.warn(e); }
}

// --- charts: the last 60 seconds
let rateChart, latencyChart;
function makeCharts() {
  if (typeof Chart === "undefined") return;
  const opts = { animation: false, maintainAspectRatio: false,
                 scales: { y: { beginAtZero: true } } };
  rateChart = new Chart(document.getElementById("rate"), { type: "line",
    data: { labels: [], datasets: [
      { label: "accepted/s", data: [], borderColor: "#1565c0", pointRadius: 0 },
      { label: "delivered/s", data: [], borderColor: "#2e7d32", pointRadius: 0 }] },
    options: opts });
  latencyChart = new Chart(document.getElementById("latency"), { type: "line",
    data: { labels: [], datasets: [
      { label: "attempt latency (ms, mean)", data: [], borderColor: "#e65100",
        pointRadius: 0 }] },
    options: opts });
}

function tick() {
  const now = Math.floor(Date.now() / 1000);
  for (const k of state.buckets.keys()) if (k < now - 60) state.buckets.delete(k);
  if (!rateChart) return;
  const labels = [], acc = [], del = [], lat = [];
  for (let s = now - 59; s <= now; s++) {
    const b = state.buckets.get(s) || { accepted: 0, delivered: 0, latency: 0, attempts: 0 };
    labels.push(s - now + "s"); acc.push(b.accepted); del.push(b.delivered);
    lat.push(b.attempts ? b.latency / b.attempts : null);
  }
  rateChart.data.labels = labels; latencyChart.data.labels = labels;
  rateChart.data.datasets[0].data = acc; rateChart.data.datasets[1].data = del;
  latencyChart.data.datasets[0].data = lat;
  rateChart.update(); latencyChart.update();
}

function start(token) {
  state.token = token;
  connect();
  refreshEndpoints(); refreshDeadLetters();
  setInterval(refreshEndpoints, 5000);
  setInterval(refreshDeadLetters, 5000);
}

for (const id of ["f-type", "f-severity", "f-agent"])
  document.getElementById(id).addEventListener("input", () =>
    document.querySelectorAll("#feed tbody tr").forEach(applyFilters));
makeCharts();
setInterval(tick, 1000);
const t = takeToken();
if (t) start(t); else askToken();
