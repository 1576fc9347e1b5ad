/* playlistgen dashboard: polls the JSON API and draws it. Plain JS, no network beyond this server. */
"use strict";

const REFRESH_S = Number(document.body.dataset.refreshS || 5);
const SLOW_EVERY = 6;            // overview + report every 6th refresh (30 s)
const queueHistory = [];         // client-side queue depth history for the sparkline
let tick = 0;

const $ = id => document.getElementById(id);
const setText = (id, v) => { const n = $(id); if (n) n.textContent = v; };

window.addEventListener("error", e => showError(`script error: ${e.message}`));
window.addEventListener("unhandledrejection", e => showError(`script error: ${e.reason}`));

const errors = new Map();        // source → message; cleared when the source works again
function showError(msg, source = msg) {
  errors.set(source, msg);
  renderErrors();
}
function clearError(source) {
  if (errors.delete(source)) renderErrors();
}
function renderErrors() {
  $("errors").textContent = [...errors.values()].join(" · ");
}

/* With api.key set the JSON routes need X-API-Key: the key is asked once and kept in this browser. */
const KEY_ITEM = "playlistgen.apiKey";
function apiHeaders(extra = {}) {
  const key = localStorage.getItem(KEY_ITEM);
  return key ? { ...extra, "X-API-Key": key } : extra;
}
function askForKey() {
  $("keyform").hidden = false;
}
$("keyform").addEventListener("submit", e => {
  e.preventDefault();
  localStorage.setItem(KEY_ITEM, $("apikey").value);
  $("keyform").hidden = true;
  errors.clear();
  renderErrors();
  tick = 0;
  refresh();
  Builder.init();
});

async function getJSON(url, opts = {}) {
  const r = await fetch(url, { ...opts, headers: apiHeaders({ Accept: "application/json" }) });
  if (r.status === 401) askForKey();
  let body = null;
  try { body = await r.json(); } catch (_) { body = null; }
  if (!r.ok && !(opts.allow || []).includes(r.status)) {
    const e = body && body.error;
    throw new Error(e ? `${e.message}${e.hint ? " — " + e.hint : ""}` : `${url}: HTTP ${r.status}`);
  }
  return body;
}

/* ---------- formatting ---------- */
function fmtInt(v) { return v === null || v === undefined ? "–" : Number(v).toLocaleString("en-US"); }
function fmtPct(v) { return v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)}%`; }
function fmtDuration(s) {
  if (s === null || s === undefined) return "–";
  if (s < 1) return "done";
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}
function fmtAgo(t) {
  const s = Date.now() / 1000 - t;
  return s < 60 ? "just now" : `${fmtDuration(s)} ago`;
}
function fmtBytes(b) {
  if (b < 1024) return `${b} B`;
  if (b < 1048576) return `${(b / 1024).toFixed(1)} KB`;
  return `${(b / 1048576).toFixed(b < 10485760 ? 1 : 0)} MB`;
}
function clock(t) { return new Date(t * 1000).toTimeString().slice(0, 5); }
function basename(p) { return String(p || "").split(/[\\/]/).pop(); }

/* ---------- panels ---------- */
function renderHealth(h) {
  const pill = $("health");
  pill.textContent = h.status;
  pill.className = `pill ${!h.ready ? "bad" : h.status === "ok" ? "ok" : "warn"}`;
  const problems = h.problems || [];  // disk full, library root unavailable, ...
  pill.title = problems.join("\n");
  $("health-problems").textContent = problems.join(" · ");
  $("health-problems").hidden = !problems.length;
  setText("uptime", fmtDuration(h.uptime_s));
}

function renderStatus(s) {
  const c = s.counts;
  if (s.preset) setText("preset", s.preset);
  if (s.last_scan) setText("roots", s.last_scan.roots.join(", "));
  setText("stat-total", fmtInt(c.total));
  setText("stat-done", fmtInt(c.done));
  setText("stat-pending", fmtInt(c.pending + (c.analysing || 0)));
  setText("stat-failed", fmtInt(c.failed));
  setText("stat-rate", s.files_per_min === undefined ? "–" : s.files_per_min.toFixed(1));
  setText("stat-eta", fmtDuration(s.eta_s));
  const finished = c.done + c.failed;
  $("progress-bar").style.width = `${c.total ? (100 * finished / c.total).toFixed(1) : 0}%`;
  $("progress-bar").dataset.progress = c.total ? (finished / c.total).toFixed(4) : "0";
  const scan = s.scan ? `scanning: ${fmtInt(s.scan.files_seen)} files seen (${s.scan.trigger})` :
    s.last_scan ? `last scan: ${fmtInt(s.last_scan.seen)} files in ${s.last_scan.seconds.toFixed(2)} s, ` +
      `${fmtInt(s.last_scan.queued)} queued, ${fmtInt(s.last_scan.missing)} missing` : "no scan yet";
  // tracks analysed by an older version being completed in the background (issue 22)
  const up = s.upgrade;
  const upgrade = up && (up.todo || up.upgraded || up.failed) ?
    ` · upgrade: ${fmtInt(up.upgraded)} done, ${fmtInt(up.todo)} to do` +
      (up.failed ? `, ${fmtInt(up.failed)} could not be upgraded` : "") : "";
  setText("scan-line", `${scan} · ${fmtInt(c.missing || 0)} missing files${upgrade}`);
  setText("queue-depth", fmtInt(s.queue_depth));
  setText("queue-inflight", fmtInt(s.in_flight));
  queueHistory.push(s.queue_depth || 0);
  if (queueHistory.length > 120) queueHistory.shift();
  Charts.sparkline($("chart-queue"), queueHistory, { label: "queue depth history" });
}

function renderMetrics(m) {
  const pts = m.throughput.points;
  Charts.bars($("chart-throughput"), pts.map(p => ({
    label: clock(p.t), value: p.analysed, value2: p.failed,
    tip: `${clock(p.t)}: ${p.analysed} analysed, ${p.failed} failed, ${p.audio_s} s of audio`,
  })), { label: "files per minute", maxLabels: 10, height: 160, emptyText: "no analysis finished in the last hour" });
  const g = m.gauges || {};
  setText("queue-writer", fmtInt(g.db_writer_queue));
  const rt = Object.entries(m.realtime_factor || {}).map(([p, v]) =>
    `${p}: ${v.realtime_factor ?? "–"}× realtime, ${v.cpu_s_per_audio_min ?? "–"} CPU s/audio min`).join("; ");
  setText("workers-line", `workers ${g.workers_busy ?? "–"} busy / ${g.workers_alive ?? "–"} alive, ` +
    `${fmtInt(g.worker_restarts ?? m.counters.worker_restarts)} restarts${rt ? " · " + rt : ""}`);
}

function renderCache(c) {
  Charts.donut($("chart-cache"), c.hit_rate, { label: "cache hit rate" });
  setText("cache-hit-rate", fmtPct(c.hit_rate));
  setText("cache-entries", fmtInt(c.entries));
  setText("cache-size", fmtBytes(c.size_bytes));
  setText("cache-max", fmtBytes(c.max_bytes));
  setText("cache-line", `${fmtInt(c.hits)} hits, ${fmtInt(c.misses)} misses, ${fmtInt(c.evictions)} evicted, ` +
    `${fmtInt(c.expirations)} expired · ${c.compression}` +
    (c.compression_ratio ? ` ${c.compression_ratio}:1` : "") + ` · ttl ${c.ttl_s} s`);
}

function renderResources(r) {
  const rows = $("proc-rows");
  rows.textContent = "";
  const maxRss = Math.max(1, ...r.processes.map(p => p.rss_mb));
  for (const p of r.processes) {
    const tr = document.createElement("tr");
    tr.dataset.pid = p.pid;
    const bar = `<div class="cell-bar" style="width:${(100 * p.rss_mb / maxRss).toFixed(0)}%"></div>`;
    tr.innerHTML = `<td class="nw"></td><td class="nw muted"></td>` +
      `<td class="r cpu">${Number.isFinite(p.cpu_percent) ? p.cpu_percent : "–"}</td>` +
      `<td class="r rss">${Number(p.rss_mb) || 0}${bar}</td>`;
    // names, hosts and paths of remote (Dask) workers come from other machines: text only
    tr.cells[0].textContent = p.remote ? `${p.name} @ ${p.host}` : p.name;
    tr.cells[1].textContent = String(p.pid ?? "–");
    if (p.remote) {
      tr.classList.add("remote");
      tr.title = `${p.tasks_done} files, ${p.failures} failures` + (p.current ? ` · now: ${p.current}` : "");
    }
    rows.appendChild(tr);
  }
  const s = r.system;
  const disk = r.disk.map(d => d.error ? `${d.what}: ${d.error}` : `${d.what} ${d.free_gb} GB free`).join(", ");
  setText("system-line", `system CPU ${s.cpu_percent}% of ${s.cpu_count} cores · ` +
    `${fmtInt(s.memory_available_mb)} of ${fmtInt(s.memory_total_mb)} MB free · ${disk} · ` +
    `${r.open_files.daemon ?? "–"} open files`);
}

function renderExecutor(h) {
  const d = h && h.executor && h.executor.dask;
  const line = $("dask-line");
  line.hidden = !d;
  if (!d) return;
  const state = d.connected ? `connected to ${d.scheduler}` :
    `scheduler ${d.scheduler} unreachable, ${d.mode}${d.error ? " (" + d.error + ")" : ""}`;
  line.textContent = `Dask: ${state} · ${d.workers} remote workers · ${fmtInt(d.files_shipped)} files, ` +
    `${fmtBytes(d.bytes_shipped)} shipped · ${fmtInt(d.files_local)} analysed here` +
    (d.refused.length ? ` · ${d.refused.length} refused: ${d.refused[d.refused.length - 1].reason}` : "");
}

function renderPool(p) {
  $("pool-bar").style.width = `${(100 * p.utilisation).toFixed(0)}%`;
  setText("pool-inuse", fmtInt(p.in_use));
  setText("pool-max", fmtInt(p.pool_max));
  setText("pool-waits", fmtInt(p.waits));
  setText("pool-wait-ms", p.avg_wait_ms.toFixed(1));
  setText("pool-busy", fmtInt(p.busy_retries + p.writer.busy_retries));
  const w = p.writer;
  setText("writer-line", `${fmtInt(p.checkouts)} checkouts, ${fmtPct(p.wait_ratio)} waited · writer: ` +
    `${fmtInt(w.batches)} batches, ${w.avg_batch_jobs ?? "–"} jobs/batch, ${w.avg_commit_ms ?? "–"} ms/commit, ` +
    `${fmtInt(w.queue_depth)} queued`);
}

function renderFailures(f) {
  setText("fail-total", f.total ? `${fmtInt(f.total)} in total` : "");
  const rows = $("fail-rows");
  rows.textContent = "";
  if (!f.failed.length) {
    rows.innerHTML = `<tr><td colspan="3" class="muted">no failures</td></tr>`;
    return;
  }
  for (const x of f.failed) {
    const tr = document.createElement("tr");
    const file = document.createElement("td"); file.textContent = basename(x.path); file.title = x.path;
    const why = document.createElement("td"); why.textContent = x.reason;
    const when = document.createElement("td"); when.className = "r"; when.textContent = fmtAgo(x.failed_at);
    tr.append(file, why, when);
    rows.appendChild(tr);
  }
}

function renderOverview(o) {
  Charts.bars($("chart-bpm"), o.bpm_histogram.bins.map(b => ({
    label: String(b.from), value: b.count, tip: `${b.from}–${b.to} BPM: ${b.count}` })),
    { label: "BPM histogram", width: 360, height: 170, maxLabels: 7, emptyText: "no tempos yet" });
  Charts.camelot($("chart-keys"), o.keys);
  Charts.hbars($("chart-tags"), o.top_tags.map(t => ({
    label: t.label, value: t.tracks, tip: `${t.label} (${t.source}): top-${o.tags_per_track} tag of ${t.tracks} ` +
      `tracks, mean probability ${t.mean_probability}` })).slice(0, 12),
    { emptyText: o.tracks ? "no ML tags (preset fast analyses without them)" : "no tracks analysed yet" });
}

function renderReport(r) {
  const ul = $("advice");
  ul.textContent = "";
  for (const rec of r.recommendations) {
    const li = document.createElement("li");
    li.className = "rec";
    li.innerHTML = `<span class="sev ${rec.severity}">${rec.severity}</span>set <code></code> from ` +
      `<b class="cur"></b> to <b class="sug"></b>: <span class="why"></span>`;
    li.querySelector("code").textContent = rec.config_key;
    li.querySelector(".cur").textContent = JSON.stringify(rec.current);
    li.querySelector(".sug").textContent = JSON.stringify(rec.suggested);
    li.querySelector(".why").textContent = rec.reason;
    ul.appendChild(li);
  }
  for (const c of r.checks) {
    const li = document.createElement("li");
    li.innerHTML = `<span class="sev ${c.status}">${c.status.replace("_", " ")}</span><b></b>: <span></span>`;
    li.querySelector("b").textContent = c.area;
    li.querySelector("span:last-child").textContent = c.detail;
    ul.appendChild(li);
  }
}

/* ---------- refresh loop ---------- */
const SOURCES = [
  ["/health", renderHealth, { allow: [503] }],
  ["/api/v1/library/status", renderStatus],
  ["/api/v1/performance/metrics", renderMetrics],
  ["/api/v1/performance/cache/stats", renderCache],
  ["/api/v1/performance/resource-usage", renderResources],
  ["/api/v1/performance/async-processor/health", renderExecutor, { allow: [503] }],
  ["/api/v1/performance/database/pool", renderPool],
  ["/api/v1/tracks/failed?limit=10", renderFailures],
];
const SLOW_SOURCES = [
  ["/api/v1/library/overview", renderOverview],
  ["/api/v1/performance/optimization-report", renderReport],
];

async function load([url, render, opts]) {
  try {
    render(await getJSON(url, opts));
    clearError(url);
  } catch (e) {
    showError(`${url}: ${e.message}`, url);
  }
}

async function refresh() {
  const jobs = SOURCES.map(load);
  if (tick % SLOW_EVERY === 0) jobs.push(...SLOW_SOURCES.map(load));
  tick += 1;
  await Promise.all(jobs);
  setText("updated", new Date().toTimeString().slice(0, 8));
  document.body.dataset.loaded = String(tick);
}

$("cache-clear").addEventListener("click", () =>
  load(["/api/v1/performance/cache", body => renderCache(body.stats), { method: "DELETE" }]));

Builder.init();   // builder.js
refresh();
setInterval(refresh, REFRESH_S * 1000);
