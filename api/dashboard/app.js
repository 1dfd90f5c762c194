// tocsin's dashboard: the events already there (GET /v1/events), then the
// live stream (GET /v1/stream), the API for answers and replays, /metrics
// for each endpoint's backlog. No build step, no framework; Chart.js
// (embedded in the binary) draws the charts.
"use strict";

const severities = ["info", "low", "medium", "high", "critical"];
// Rows the feed keeps besides open critical events, which stay however many.
const maxRows = 200;
const stateRank = { open: 0, acknowledged: 1, resolved: 2 };
const state = { token: null, lastSeq: null, ws: null, retry: 1000,
                events: new Map(), endpoints: new Map(), buckets: new Map(),
                // Until the stored events are shown, frames wait here.
                loading: true, loadStarted: false, early: [] };

// A parameter of the URL fragment ("#token=...&event=..."), or null.
function fragmentParam(name) {
  const m = new RegExp("(?:^|&)" + name + "=([^&]*)")
    .exec(location.hash.slice(1));
  if (!m) return null;
  try { return decodeURIComponent(m[1]); } catch (e) { return null; } // bad %
}

// --- the token: from the URL fragment once (then off the address bar; the
// rest of the fragment, e.g. #event=..., stays), else this tab's session
// storage, else asked for.
function takeToken() {
  const t = fragmentParam("token");
  if (t !== null) {
    sessionStorage.setItem("tocsin.token", t);
    const rest = location.hash.slice(1).split("&")
      .filter((p) => p && !p.startsWith("token=")).join("&");
    history.replaceState(null, "", location.pathname + location.search +
                                    (rest ? "#" + rest : ""));
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
                      state.retry = 1000; loadEventsOnce(); };
  ws.onmessage = (m) => onFrame(JSON.parse(m.data));
  ws.onclose = () => {
    loadEventsOnce(); // the stream is down: show what is stored anyway
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
  if (state.loading) { state.early.push(f); return; }
  switch (f.type) {
  case "event.accepted": {
    bucket().accepted++;
    const ev = f.event || {};
    showEventRow({ id: ev.id, type: ev.type, severity: ev.severity,
                   agent_id: ev.agent_id, summary: ev.summary,
                   timestamp: ev.timestamp || f.at, state: "open" });
    break;
  }
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

// --- the feed: the stored events first, newest first, then the stream's.
// The stream is subscribed to before the stored events are read (see
// connect), so that nothing accepted in between is missed; what both bring
// is shown once (by id), and states only move forward.

// The stored events (GET /v1/events): the latest, and every open critical
// one however old; then the frames that came meanwhile.
function loadEventsOnce() {
  if (state.loadStarted) return;
  state.loadStarted = true;
  loadEvents();
}

async function loadEvents() {
  try {
    const pages = await Promise.all([
      api("GET", "/v1/events?limit=" + maxRows),
      api("GET", "/v1/events?state=open&severity=critical&limit=500")]);
    const all = new Map();
    for (const text of pages)
      for (const e of JSON.parse(text).events) all.set(e.id, e);
    const newestFirst = [...all.values()]
      .sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    for (const e of newestFirst)
      showEventRow({ id: e.id, type: e.type, severity: e.severity,
                     agent_id: e.agent_id, summary: e.summary,
                     timestamp: e.timestamp || e.accepted_at, state: e.state,
                     by: e[e.state] ? e[e.state].by : "" }, false);
    trimFeed();
  } catch (e) { notice("stored events not shown: " + e.message); }
  state.loading = false;
  document.getElementById("feed").dataset.loaded = "true";
  const early = state.early;
  state.early = [];
  for (const f of early) onFrame(f);
}

function eventRow(ev) {
  const sev = ev.severity || "info";
  return el("tr", { class: "ev", "data-id": ev.id, "data-type": ev.type,
                    "data-severity": severities.indexOf(sev),
                    "data-agent": ev.agent_id || "", "data-state": "open",
                    onclick: () => showEvent(ev.id) },
    el("td", { title: ev.timestamp || "" }, (ev.timestamp || "").slice(11, 19)),
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
}

// Shows an event once: a new row in id order (ids are time-ordered, so
// newest first is descending id order), or its state on the row it has.
// `trim`: drop the rows past the feed's size (see trimFeed).
function showEventRow(ev, trim = true) {
  if (!ev.id) return;
  let row = state.events.get(ev.id);
  if (!row) {
    row = eventRow(ev);
    const body = document.querySelector("#feed tbody");
    const first = body.firstElementChild, last = body.lastElementChild;
    if (!first || first.dataset.id < ev.id) body.prepend(row);
    else if (last.dataset.id > ev.id) body.append(row);
    else {
      let r = first;
      while (r && r.dataset.id > ev.id) r = r.nextElementSibling;
      body.insertBefore(row, r);
    }
    state.events.set(ev.id, row);
  }
  if (ev.state && ev.state !== "open") setEventState(ev.id, ev.state, ev.by);
  if (trim) trimFeed();
  applyFilters(row);
}

// Keeps maxRows rows besides the open critical ones (what needs attention
// stays on the page), dropping the oldest.
function needsAttention(row) {
  return Number(row.dataset.severity) === severities.length - 1 &&
         row.dataset.state === "open";
}

function trimFeed() {
  const body = document.querySelector("#feed tbody");
  let extra = -maxRows;
  for (const r of body.rows) if (!needsAttention(r)) extra++;
  for (let r = body.lastElementChild; r && extra > 0;) {
    const before = r.previousElementSibling;
    if (!needsAttention(r)) {
      state.events.delete(r.dataset.id);
      r.remove();
      extra--;
    }
    r = before;
  }
}

function setEventState(id, st, by) {
  const row = state.events.get(id);
  if (!row || !(st in stateRank)) return;
  // Answers only move forward (a frame that comes late changes nothing).
  if (stateRank[st] < stateRank[row.dataset.state || "open"]) return;
  row.dataset.state = st;
  const cell = row.querySelector(".state");
  cell.textContent = st + (by ? " by " + by : "");
  cell.className = "state state-" + st;
  if (st === "resolved" || st === "acknowledged")
    row.querySelector(".ack").disabled = true;
  if (st === "resolved") row.querySelector(".resolve").disabled = true;
  applyFilters(row);
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
  const openOnly = document.getElementById("f-open").checked;
  const show = (!type || row.dataset.type === type) &&
               Number(row.dataset.severity) >= sev &&
               (!agent || row.dataset.agent.includes(agent)) &&
               (!openOnly || row.dataset.state === "open");
  row.hidden = !show;
}

// An event's details: its fields, its state and who answered, and its
// deliveries' attempts (GET /v1/events/{id}: it need not be in the feed).
async function showEvent(id) {
  const box = document.getElementById("detail");
  for (const r of document.querySelectorAll("#feed tr.selected"))
    r.classList.remove("selected");
  const row = state.events.get(id);
  if (row) row.classList.add("selected");
  box.dataset.id = id;
  try {
    const ev = JSON.parse(await api("GET", "/v1/events/" + encodeURIComponent(id)));
    if (box.dataset.id !== id) return; // another was asked for meanwhile
    const body = ev.event || {};
    box.replaceChildren(el("strong", {}, id + " — " + ev.state),
      el("div", { class: "meta" },
         [body.severity, body.type, body.agent_id,
          "accepted " + ev.accepted_at].filter(Boolean).join(" · ")),
      el("div", { class: "summary" }, body.summary || ""));
    for (const st of ["acknowledged", "resolved"])
      if (ev[st])
        box.append(el("div", { class: "answer" }, st + " by " + ev[st].by +
          " (" + ev[st].source + ") at " + ev[st].at +
          (ev[st].note ? ": " + ev[st].note : "")));
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
  box.scrollIntoView({ block: "nearest" });
}

// A link to one event (#event=evt_..., as Slack and PagerDuty messages
// carry): its details, whether or not it is in the feed.
function showLinkedEvent() {
  const id = fragmentParam("event");
  if (id) showEvent(id);
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
      // In flight / the limit the receiver's answers set (on this node).
      const fl = ep.in_flight
        ? ep.in_flight.current + " / " + ep.in_flight.limit : "—";
      body.append(el("tr", { "data-id": ep.id }, el("td", {}, ep.id),
        el("td", {}, ep.transport), el("td", {}, m.tocsin_pending_deliveries ?? ""),
        el("td", {}, m.tocsin_oldest_pending_age_seconds
                       ? Math.round(m.tocsin_oldest_pending_age_seconds) + " s" : "—"),
        el("td", {}, total ? Math.round(100 * s.ok / total) + " %" : "—"),
        el("td", {}, s.lastError || "—"),
        el("td", { class: open ? "open" : "" }, open ? "open" : "closed"),
        el("td", { class: "in-flight" }, fl), el("td", {}, rl)));
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
  showLinkedEvent();
  refreshEndpoints(); refreshDeadLetters();
  setInterval(refreshEndpoints, 5000);
  setInterval(refreshDeadLetters, 5000);
}

for (const id of ["f-type", "f-severity", "f-agent", "f-open"])
  document.getElementById(id).addEventListener("input", () =>
    document.querySelectorAll("#feed tbody tr").forEach(applyFilters));
window.addEventListener("hashchange", () => { if (state.token) showLinkedEvent(); });
makeCharts();
setInterval(tick, 1000);
const t = takeToken();
if (t) start(t); else askToken();
