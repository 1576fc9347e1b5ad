/* The dashboard's playlist builder: search a seed song, pick a strategy and an order, build,
   download M3U8. A link like /dashboard#seed=miles&strategy=radio&order=energy_arc&build=1 fills
   the form and builds at once. */
"use strict";

const Builder = (() => {
  const $ = id => document.getElementById(id);
  let strategies = [];
  let seeds = [];                // [{id, label}]
  let lastRequest = null;        // the body of the last successful build, for the M3U8 download
  let searchTimer = null;

  const listOf = (body, ...keys) => Array.isArray(body) ? body :
    keys.map(k => body && body[k]).find(Array.isArray) || [];
  const trackLabel = t => `${t.artist || "Unknown artist"} – ${t.title || basename(t.path)}`;
  // round first, then split: 179.99 s is 3:00, never 2:60
  const mmss = s => { const t = Math.round(s || 0); return t ? `${Math.floor(t / 60)}:${String(t % 60).padStart(2, "0")}` : ""; };

  function status(text, isError = false) {
    const el = $("builder-status");
    el.textContent = text;
    el.style.color = isError ? "var(--bad)" : "";
  }

  async function post(url, body) {
    const r = await fetch(url, { method: "POST", headers: apiHeaders({ "Content-Type": "application/json" }),
                                 body: JSON.stringify(body) });
    if (!r.ok) {
      let msg = `HTTP ${r.status}`;
      try { const e = (await r.json()).error; msg = e.message + (e.hint ? ` — ${e.hint}` : ""); } catch (_) { /* not JSON */ }
      throw new Error(msg);
    }
    return r;
  }

  async function loadStrategies() {
    const body = await getJSON("/api/v1/playlists/strategies");
    strategies = listOf(body, "strategies");
    if (!strategies.length && body && typeof body === "object") {   // {name: {...}} form
      strategies = Object.entries(body).map(([name, s]) => ({ name, ...s }));
    }
    const sel = $("strategy");
    sel.textContent = "";
    for (const s of strategies) {
      const o = document.createElement("option");
      o.value = s.name;
      o.textContent = s.name;
      sel.appendChild(o);
    }
    if (strategies.some(s => s.name === "radio")) sel.value = "radio";
    renderParams();
  }

  function current() { return strategies.find(s => s.name === $("strategy").value) || {}; }

  function renderParams() {
    const s = current();
    $("strategy-help").textContent = [s.description, s.seeds ? `Seeds: ${s.seeds}.` : ""].filter(Boolean).join(" ");
    const box = $("params");
    box.textContent = "";
    for (const p of s.parameters || []) {
      const label = document.createElement("label");
      label.className = "field";
      label.title = p.description || "";
      label.append(p.name);
      let input;
      if (p.choices || p.type === "boolean") {
        input = document.createElement("select");
        for (const c of p.choices || [true, false]) {
          const o = document.createElement("option");
          o.value = JSON.stringify(c);
          o.textContent = String(c);
          input.appendChild(o);
        }
        input.value = JSON.stringify(p.default);
      } else {
        input = document.createElement("input");
        input.type = p.type === "integer" || p.type === "number" ? "number" : "text";
        if (p.type === "number") input.step = "any";
        if (p.minimum !== undefined) input.min = p.minimum;
        if (p.maximum !== undefined) input.max = p.maximum;
        const d = p.default;
        input.value = d === null || d === undefined ? "" : Array.isArray(d) ? d.join(", ") : String(d);
        if (p.type === "array") input.placeholder = "comma-separated";
      }
      input.dataset.param = p.name;
      label.appendChild(input);
      box.appendChild(label);
    }
  }

  function readParams() {
    const out = {};
    for (const p of current().parameters || []) {
      const input = document.querySelector(`[data-param="${p.name}"]`);
      if (!input || input.value === "") continue;
      let v;
      if (input.tagName === "SELECT") v = JSON.parse(input.value);
      else if (p.type === "integer") v = parseInt(input.value, 10);
      else if (p.type === "number") v = parseFloat(input.value);
      else if (p.type === "array") v = input.value.split(",").map(x => x.trim()).filter(Boolean);
      else if (p.type === "numbers") v = input.value.split(",").map(x => parseFloat(x)).filter(x => !isNaN(x));
      else v = input.value;
      if (JSON.stringify(v) !== JSON.stringify(p.default)) out[p.name] = v;   // send only what changed
    }
    return out;
  }

  async function search(q) {
    const ul = $("seed-results");
    if (!q.trim()) { ul.textContent = ""; return []; }
    const body = await getJSON(`/api/v1/tracks?q=${encodeURIComponent(q)}&limit=8`);
    const tracks = listOf(body, "tracks", "items", "results");
    ul.textContent = "";
    for (const t of tracks) {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = `${trackLabel(t)}${t.bpm ? ` · ${Math.round(t.bpm)} BPM` : ""}${t.camelot ? ` · ${t.camelot}` : ""}`;
      b.addEventListener("click", () => addSeed(t));
      li.appendChild(b);
      ul.appendChild(li);
    }
    if (!tracks.length) ul.innerHTML = `<li class="muted small">no match</li>`;
    return tracks;
  }

  function addSeed(t) {
    if (!seeds.some(s => s.id === t.id)) seeds.push({ id: t.id, label: trackLabel(t) });
    $("seed-results").textContent = "";
    $("seed-q").value = "";
    renderSeeds();
  }

  function renderSeeds() {
    const box = $("seeds");
    box.textContent = "";
    seeds.forEach((s, i) => {
      const chip = document.createElement("span");
      chip.className = "chip";
      chip.dataset.trackId = s.id;
      chip.textContent = s.label;
      const x = document.createElement("button");
      x.type = "button";
      x.textContent = "×";
      x.setAttribute("aria-label", `remove ${s.label}`);
      x.addEventListener("click", () => { seeds.splice(i, 1); renderSeeds(); });
      chip.appendChild(x);
      box.appendChild(chip);
    });
  }

  function request() {
    const body = { strategy: $("strategy").value, size: parseInt($("size").value, 10) || 20 };
    if (seeds.length && current().seeds !== "none") body.seeds = seeds.map(s => s.id);
    const params = readParams();
    if (Object.keys(params).length) body.params = params;
    if ($("order").value) body.order = $("order").value;
    return body;
  }

  async function build() {
    const body = request();
    status("building…");
    $("playlist").textContent = "";
    try {
      const data = await (await post("/api/v1/playlists", body)).json();
      lastRequest = body;
      $("download").disabled = false;
      $("download").dataset.request = JSON.stringify(body);   // what the M3U8 download will send
      renderPlaylist(data);
    } catch (e) {
      lastRequest = null;
      $("download").disabled = true;
      status(e.message, true);
    }
  }

  function renderPlaylist(data) {
    const tracks = listOf(data, "tracks");
    const ol = $("playlist");
    ol.dataset.count = tracks.length;
    let total = 0;
    for (const t of tracks) {
      total += t.duration_s || 0;
      const li = document.createElement("li");
      li.dataset.trackId = t.id;
      const name = document.createElement("div");
      name.textContent = trackLabel(t);
      const meta = document.createElement("div");
      meta.className = "meta";
      meta.textContent = [t.album, t.bpm && `${Math.round(t.bpm)} BPM`, t.camelot,
                          t.energy !== null && t.energy !== undefined && `energy ${t.energy.toFixed(2)}`,
                          mmss(t.duration_s),
                          typeof t.transition_cost === "number" && `transition ${t.transition_cost.toFixed(2)}`]
        .filter(Boolean).join(" · ");
      li.append(name, meta);
      ol.appendChild(li);
    }
    const p = data.playlist || {};
    const tr = p.transitions && p.transitions.mean !== null && p.transitions.mean !== undefined
      ? `, ${p.order} order: transition cost mean ${p.transitions.mean.toFixed(2)}, worst ${p.transitions.worst.toFixed(2)}`
      : "";
    status(`${tracks.length} tracks, ${mmss(total)}${tr}${p.name ? ` — ${p.name}` : ""}`);
  }

  async function download() {
    if (!lastRequest) return;
    try {
      const r = await post("/api/v1/playlists?format=m3u8", lastRequest);
      const url = URL.createObjectURL(await r.blob());
      const a = document.createElement("a");
      a.href = url;
      a.download = `playlist-${lastRequest.strategy}.m3u8`;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 5000);
    } catch (e) {
      status(e.message, true);
    }
  }

  async function fromHash() {
    const h = new URLSearchParams(location.hash.slice(1));
    if (h.get("strategy")) $("strategy").value = h.get("strategy");
    renderParams();
    if (h.get("size")) $("size").value = h.get("size");
    if (h.get("order")) $("order").value = h.get("order");
    if (h.get("seed")) {
      const found = await search(h.get("seed"));
      if (found.length) addSeed(found[0]);
    }
    if (h.get("build")) await build();
  }

  let bound = false;

  async function init() {
    if (!bound) bindEvents();
    try {
      await loadStrategies();
      await fromHash();
    } catch (e) {
      status(`playlist builder unavailable: ${e.message}`, true);
    }
  }

  function bindEvents() {
    bound = true;
    $("strategy").addEventListener("change", renderParams);
    $("seed-q").addEventListener("input", e => {
      clearTimeout(searchTimer);
      const q = e.target.value;
      searchTimer = setTimeout(() => search(q).catch(err => status(err.message, true)), 250);
    });
    $("builder").addEventListener("submit", e => { e.preventDefault(); build(); });
    $("download").addEventListener("click", download);
  }

  return { init };
})();
