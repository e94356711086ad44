// The engine dashboard: polls the engine's Hatchet-compatible REST API once a second.
// The token comes from the URL fragment (#token=...), is kept in sessionStorage, and is sent as a
// bearer token; the tenant is the token's `sub` claim. All data is inserted as text, never as HTML.
"use strict";

const state = {
  token: null,
  tenant: null,
  tab: "runs",
  selectedRun: null,
  selectedTask: null,
  workflows: [],
  runsKey: null,
};

function readToken() {
  const m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem("acf-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  const token = sessionStorage.getItem("acf-token");
  if (!token) return false;
  try {
    const body = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    state.tenant = JSON.parse(atob(body)).sub;
    state.token = token;
    return true;
  } catch (e) {
    return false;
  }
}

async function api(path) {
  const res = await fetch(path, { headers: { Authorization: "Bearer " + state.token } });
  if (res.status === 401) {
    document.getElementById("auth-error").hidden = false;
    throw new Error("unauthorized");
  }
  if (!res.ok) throw new Error(path + ": " + res.status);
  return res.json();
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return node;
}

function svgEl(tag, attrs, text) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text != null) node.textContent = text;
  return node;
}

const badge = (status) => el("span", { class: "status " + status }, status);
const short = (id) => (id || "").slice(0, 8);
const fmtTime = (t) => (t ? new Date(t).toLocaleTimeString() : "—");
function fmtDuration(ms) {
  if (ms == null) return "—";
  if (ms < 1000) return ms + " ms";
  return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
}
function ago(t) {
  if (!t) return "—";
  const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
  return s < 60 ? s.toFixed(1) + " s ago" : Math.round(s / 60) + " min ago";
}
function kv(container, pairs) {
  container.replaceChildren();
  for (const [k, v] of pairs) container.append(el("dt", {}, k), el("dd", {}, v));
}

// ---------- runs ----------

async function loadWorkflows() {
  const list = await api(`/api/v1/tenants/${state.tenant}/workflows?limit=500`);
  const select = document.getElementById("filter-workflow");
  const current = select.value;
  const rows = list.rows || [];
  const key = rows.map((w) => w.metadata.id).join(",");
  if (key === state.workflows.join(",")) return;
  state.workflows = rows.map((w) => w.metadata.id);
  select.replaceChildren(el("option", { value: "" }, "all"));
  for (const w of rows) select.append(el("option", { value: w.metadata.id }, w.name));
  select.value = current;
}

async function loadRuns() {
  const since = new Date(Date.now() - 24 * 3600 * 1000).toISOString();
  const q = new URLSearchParams({ since, limit: "100" });
  const wf = document.getElementById("filter-workflow").value;
  const status = document.getElementById("filter-status").value;
  if (wf) q.append("workflow_ids", wf);
  if (status) q.append("statuses", status);
  const list = await api(`/api/v1/stable/tenants/${state.tenant}/workflow-runs?${q}`);
  // Rebuild the table only when what it shows changed: a row replaced under the pointer
  // swallows the click a user (or a WebDriver) aimed at it.
  const rows = list.rows || [];
  const key = JSON.stringify([
    state.selectedRun,
    rows.map((r) => [r.workflowRunExternalId, r.status, r.duration]),
  ]);
  if (key === state.runsKey) return;
  state.runsKey = key;
  const tbody = document.querySelector("#runs-table tbody");
  tbody.replaceChildren();
  for (const r of rows) {
    const id = r.workflowRunExternalId;
    const tr = el(
      "tr",
      { "data-run-id": id, class: id === state.selectedRun ? "selected" : "" },
      el("td", { class: "mono" }, short(id)),
      el("td", {}, r.workflowName || r.displayName),
      el("td", {}, badge(r.status)),
      el("td", {}, fmtTime(r.createdAt)),
      el("td", {}, fmtDuration(r.duration)),
    );
    tr.addEventListener("click", () => selectRun(id));
    tbody.append(tr);
  }
  const total = rows.length;
  document.getElementById("runs-count").textContent = total + (total === 1 ? " run" : " runs");
}

function selectRun(id) {
  state.selectedRun = id;
  state.selectedTask = null;
  document.getElementById("run-detail").hidden = false;
  document.getElementById("task-detail").hidden = true;
  refresh();
}

async function loadRunDetail() {
  if (!state.selectedRun) return;
  const d = await api(`/api/v1/stable/workflow-runs/${state.selectedRun}`);
  const run = d.run;
  const title = document.getElementById("run-title");
  title.replaceChildren(run.displayName + " ", badge(run.status));
  kv(document.getElementById("run-meta"), [
    ["Run id", run.metadata.id],
    ["Created", fmtTime(run.createdAt)],
    ["Started", fmtTime(run.startedAt)],
    ["Finished", fmtTime(run.finishedAt)],
    ["Duration", fmtDuration(run.duration)],
    ["Metadata", JSON.stringify(run.additionalMetadata || {})],
  ]);
  drawDag(d);
  if (state.selectedTask) showTask(d);
}

function drawDag(d) {
  const tasks = new Map(d.tasks.map((t) => [t.taskExternalId, t]));
  const parents = new Map(d.shape.map((s) => [s.stepId, []]));
  for (const s of d.shape) for (const c of s.childrenStepIds) if (parents.has(c)) parents.get(c).push(s.stepId);
  const depth = new Map();
  const depthOf = (step, seen = new Set()) => {
    if (depth.has(step)) return depth.get(step);
    if (seen.has(step)) return 0;
    seen.add(step);
    const ps = parents.get(step) || [];
    const v = ps.length ? 1 + Math.max(...ps.map((p) => depthOf(p, seen))) : 0;
    depth.set(step, v);
    return v;
  };
  const columns = [];
  for (const s of d.shape) {
    const c = depthOf(s.stepId);
    (columns[c] = columns[c] || []).push(s);
  }
  const W = 200, H = 50, GX = 60, GY = 18, PAD = 16;
  const pos = new Map();
  columns.forEach((col, ci) => col.forEach((s, ri) => pos.set(s.stepId, { x: PAD + ci * (W + GX), y: PAD + ri * (H + GY) })));
  const width = PAD * 2 + Math.max(1, columns.length) * (W + GX) - GX;
  const height = PAD * 2 + Math.max(1, ...columns.map((c) => c.length)) * (H + GY) - GY;
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, height: String(height) });
  const defs = svgEl("defs");
  const marker = svgEl("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto" });
  marker.append(svgEl("path", { d: "M0,0 L10,5 L0,10 z", fill: "#9aa5b4" }));
  defs.append(marker);
  svg.append(defs);
  for (const s of d.shape) {
    const a = pos.get(s.stepId);
    for (const c of s.childrenStepIds) {
      const b = pos.get(c);
      if (!b) continue;
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
      svg.append(svgEl("path", { class: "dag-edge", d: `M${x1},${y1} C${x1 + GX / 2},${y1} ${x2 - GX / 2},${y2} ${x2},${y2}` }));
    }
  }
  const colors = { QUEUED: "#8a94a6", RUNNING: "#2f7de1", COMPLETED: "#1f9d55", FAILED: "#d64545", CANCELLED: "#c98a1b" };
  for (const s of d.shape) {
    const t = tasks.get(s.taskExternalId) || {};
    const p = pos.get(s.stepId);
    const g = svgEl("g", {
      class: "dag-node" + (state.selectedTask === s.taskExternalId ? " selected" : ""),
      "data-task": s.taskExternalId,
      "data-status": t.status || "QUEUED",
      transform: `translate(${p.x},${p.y})`,
    });
    g.append(svgEl("rect", { width: String(W), height: String(H), rx: "6", stroke: colors[t.status] || colors.QUEUED }));
    g.append(svgEl("text", { x: "10", y: "20" }, s.taskName));
    const sub = `${t.status || "QUEUED"} · attempt ${t.attempt || 1} · ${fmtDuration(t.duration)}`;
    g.append(svgEl("text", { x: "10", y: "38", class: "sub" }, sub));
    g.addEventListener("click", () => {
      state.selectedTask = s.taskExternalId;
      showTask(d);
      drawDag(d);
    });
    svg.append(g);
  }
  document.getElementById("dag").replaceChildren(svg);
}

function showTask(d) {
  const t = d.tasks.find((x) => x.taskExternalId === state.selectedTask);
  if (!t) return;
  document.getElementById("task-detail").hidden = false;
  document.getElementById("task-title").replaceChildren("Task " + t.displayName + " ", badge(t.status));
  kv(document.getElementById("task-meta"), [
    ["Task id", t.taskExternalId],
    ["Action", t.actionId || "—"],
    ["Attempt", String(t.attempt || 1)],
    ["Started", fmtTime(t.startedAt)],
    ["Finished", fmtTime(t.finishedAt)],
    ["Duration", fmtDuration(t.duration)],
  ]);
  document.getElementById("task-output").textContent = JSON.stringify(t.output, null, 2);
  document.getElementById("task-error-box").hidden = !t.errorMessage;
  document.getElementById("task-error").textContent = t.errorMessage || "";
  const tbody = document.querySelector("#task-events tbody");
  tbody.replaceChildren();
  for (const e of d.taskEvents.filter((e) => e.taskId === t.taskExternalId)) {
    tbody.append(el("tr", {}, el("td", {}, fmtTime(e.timestamp)), el("td", {}, e.eventType), el("td", {}, String(e.attempt || 1)), el("td", {}, e.message)));
  }
}

// ---------- workers ----------

async function loadWorkers() {
  const list = await api(`/api/v1/tenants/${state.tenant}/worker`);
  const tbody = document.querySelector("#workers-table tbody");
  tbody.replaceChildren();
  for (const w of list.rows || []) {
    const slots = Object.entries(w.slotConfig || {}).map(([k, v]) => `${k}: ${v.available} / ${v.limit}`).join(", ");
    tbody.append(el("tr", { "data-worker-id": w.metadata.id },
      el("td", {}, w.name),
      el("td", {}, badge(w.status || "ACTIVE")),
      el("td", {}, slots || "—"),
      el("td", {}, String((w.slots || []).length)),
      el("td", {}, ago(w.lastHeartbeatAt)),
      el("td", { class: "mono" }, (w.actions || []).join(", ")),
    ));
  }
}

// ---------- events ----------

async function loadEvents() {
  const list = await api(`/api/v1/stable/tenants/${state.tenant}/events?limit=100`);
  const tbody = document.querySelector("#events-table tbody");
  tbody.replaceChildren();
  for (const e of list.rows || []) {
    const s = e.workflowRunSummary || {};
    const runs = `${(e.triggeredRuns || []).length} (✓${s.succeeded || 0} ✗${s.failed || 0} ▶${s.running || 0} ⏸${s.queued || 0})`;
    tbody.append(el("tr", { "data-event-id": e.metadata.id },
      el("td", {}, fmtTime(e.seenAt)),
      el("td", { class: "mono" }, e.key),
      el("td", {}, e.scope || "—"),
      el("td", {}, runs),
      el("td", { class: "mono" }, JSON.stringify(e.payload || {})),
    ));
  }
}

// ---------- loop ----------

let busy = false;
let ticks = 0;
async function refresh() {
  if (busy || !state.token) return;
  busy = true;
  try {
    if (state.tab === "runs") {
      if (ticks++ % 5 === 0) await loadWorkflows();
      await loadRuns();
      await loadRunDetail();
    } else if (state.tab === "workers") {
      await loadWorkers();
    } else {
      await loadEvents();
    }
    document.getElementById("conn").textContent = "live · updated " + new Date().toLocaleTimeString();
  } catch (e) {
    document.getElementById("conn").textContent = "error: " + e.message;
  } finally {
    busy = false;
  }
}

function showTab(tab) {
  state.tab = tab;
  for (const b of document.querySelectorAll(".tab")) b.classList.toggle("active", b.dataset.tab === tab);
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== "view-" + tab;
  refresh();
}

for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => showTab(b.dataset.tab));
document.getElementById("filter-workflow").addEventListener("change", refresh);
document.getElementById("filter-status").addEventListener("change", refresh);
document.getElementById("run-close").addEventListener("click", () => {
  state.selectedRun = null;
  document.getElementById("run-detail").hidden = true;
  refresh();
});

if (readToken()) {
  refresh();
  setInterval(refresh, 1000);
} else {
  document.getElementById("auth-error").hidden = false;
  document.getElementById("conn").textContent = "no token";
}
