/* Small inline-SVG charts for the dashboard: no libraries, no network. */
"use strict";

const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";

  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function svg(container, w, h, label) {
    container.textContent = "";
    const root = el("svg", { viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": label || "" }, container);
    return root;
  }

  function title(node, text) {
    el("title", {}, node).textContent = text;
  }

  function empty(root, w, h, text) {
    const t = el("text", { x: w / 2, y: h / 2, "text-anchor": "middle", class: "empty" }, root);
    t.textContent = text;
    root.setAttribute("data-empty", "1");
  }

  /* Vertical bars. items: [{label, value, value2?, tip}]; value2 is stacked on top (e.g. failures). */
  function bars(container, items, opts = {}) {
    // drawn at the container's pixel width, so text stays 10px on a phone and on a wide screen
    const w = Math.max(container.clientWidth || opts.width || 600, 200), h = opts.height || 180;
    const padB = 18, padL = 28, padT = 6;
    const root = svg(container, w, h, opts.label);
    const max = Math.max(1, ...items.map(d => (d.value || 0) + (d.value2 || 0)));
    const total = items.reduce((s, d) => s + (d.value || 0) + (d.value2 || 0), 0);
    root.setAttribute("data-bars", String(items.length));
    root.setAttribute("data-total", String(total));
    el("line", { x1: padL, x2: w, y1: h - padB, y2: h - padB, class: "axis" }, root);
    const yMax = el("text", { x: padL - 4, y: padT + 8, "text-anchor": "end" }, root);
    yMax.textContent = fmtShort(max);
    if (!total) { empty(root, w, h - padB, opts.emptyText || "no data yet"); }
    const bw = (w - padL) / Math.max(items.length, 1);
    const every = Math.max(1, Math.ceil(items.length / (opts.maxLabels || 12)));
    items.forEach((d, i) => {
      const x = padL + i * bw + bw * 0.12, bwi = bw * 0.76;
      const v1 = d.value || 0, v2 = d.value2 || 0;
      const h1 = (h - padB - padT) * v1 / max, h2 = (h - padB - padT) * v2 / max;
      if (v1) {
        const r = el("rect", { x, y: h - padB - h1, width: bwi, height: h1, class: "bar", "data-count": v1 }, root);
        title(r, d.tip || `${d.label}: ${v1}`);
      }
      if (v2) {
        const r = el("rect", { x, y: h - padB - h1 - h2, width: bwi, height: h2, class: "bar fail", "data-count": v2 }, root);
        title(r, `${d.label}: ${v2} failed`);
      }
      if (i % every === 0 && d.label !== undefined) {
        const t = el("text", { x: x + bwi / 2, y: h - 5, "text-anchor": "middle" }, root);
        t.textContent = d.label;
      }
    });
    return root;
  }

  /* A line over the last values (client-side history). */
  function sparkline(container, values, opts = {}) {
    const w = Math.max(container.clientWidth || opts.width || 300, 100), h = opts.height || 50;
    const root = svg(container, w, h, opts.label);
    if (values.length < 2) { empty(root, w, h, "collecting…"); return root; }
    const max = Math.max(1, ...values);
    const step = w / (values.length - 1);
    const pts = values.map((v, i) => `${(i * step).toFixed(1)},${(h - 3 - (h - 6) * v / max).toFixed(1)}`);
    el("polygon", { points: `0,${h} ${pts.join(" ")} ${w},${h}`, class: "area" }, root);
    el("polyline", { points: pts.join(" "), class: "line" }, root);
    const t = el("text", { x: w - 2, y: 10, "text-anchor": "end" }, root);
    t.textContent = `max ${fmtShort(max)}`;
    return root;
  }

  /* A ring gauge for a 0..1 fraction (null = unknown). */
  function donut(container, fraction, opts = {}) {
    const size = 120, r = 46, c = 2 * Math.PI * r;
    const root = svg(container, size, size, opts.label);
    el("circle", { cx: 60, cy: 60, r, fill: "none", stroke: "var(--line)", "stroke-width": 14 }, root);
    if (fraction !== null && fraction !== undefined) {
      el("circle", { cx: 60, cy: 60, r, fill: "none", stroke: opts.color || "var(--accent)", "stroke-width": 14,
                     "stroke-dasharray": `${(c * fraction).toFixed(2)} ${c.toFixed(2)}`,
                     transform: "rotate(-90 60 60)", "stroke-linecap": "butt" }, root);
    }
    const t = el("text", { x: 60, y: 66, "text-anchor": "middle", style: "font-size:18px;fill:var(--ink);font-weight:600" }, root);
    t.textContent = fraction === null || fraction === undefined ? "–" : `${Math.round(fraction * 100)}%`;
    root.setAttribute("data-value", fraction === null || fraction === undefined ? "" : String(fraction));
    return root;
  }

  function arc(cx, cy, r0, r1, a0, a1) {
    const p = (r, a) => [cx + r * Math.sin(a), cy - r * Math.cos(a)];
    const [x0, y0] = p(r1, a0), [x1, y1] = p(r1, a1), [x2, y2] = p(r0, a1), [x3, y3] = p(r0, a0);
    return `M${x0},${y0} A${r1},${r1} 0 0 1 ${x1},${y1} L${x2},${y2} A${r0},${r0} 0 0 0 ${x3},${y3} Z`;
  }

  /* The Camelot wheel: outer ring = major (B), inner ring = minor (A); number n sits at n o'clock.
     keys: [{camelot: "8A", key, scale, count}]. Colour intensity = share of the busiest key. */
  function camelot(container, keys, opts = {}) {
    const size = 300, cx = 150, cy = 150;
    const root = svg(container, size, size, opts.label || "key distribution on the Camelot wheel");
    const max = Math.max(1, ...keys.map(k => k.count));
    const total = keys.reduce((s, k) => s + k.count, 0);
    root.setAttribute("data-total", String(total));
    for (const k of keys) {
      const n = parseInt(k.camelot, 10), major = k.camelot.endsWith("B");
      const a0 = ((n - 0.5) / 12) * 2 * Math.PI, a1 = ((n + 0.5) / 12) * 2 * Math.PI;
      const [r0, r1] = major ? [100, 145] : [55, 100];
      const hue = (n * 30 + 60) % 360;
      const alpha = k.count ? 0.18 + 0.82 * k.count / max : 0.06;
      const seg = el("path", { d: arc(cx, cy, r0, r1, a0, a1), class: "seg", "data-camelot": k.camelot,
                               "data-count": k.count, fill: `hsla(${hue}, 65%, 50%, ${alpha.toFixed(3)})` }, root);
      title(seg, `${k.camelot} · ${k.key} ${k.scale}: ${k.count} track${k.count === 1 ? "" : "s"}`);
      const mid = (a0 + a1) / 2, rm = (r0 + r1) / 2;
      const t = el("text", { x: cx + rm * Math.sin(mid), y: cy - rm * Math.cos(mid) + 3, "text-anchor": "middle", class: "code" }, root);
      t.textContent = k.camelot;
    }
    const c = el("text", { x: cx, y: cy + 4, "text-anchor": "middle", style: "font-size:13px;fill:var(--muted)" }, root);
    c.textContent = total ? `${total} keyed` : "no keys yet";
    return root;
  }

  /* Horizontal bars as HTML rows (long labels wrap better than in SVG). */
  function hbars(container, items, opts = {}) {
    container.textContent = "";
    if (!items.length) {
      const p = document.createElement("p");
      p.className = "muted small";
      p.textContent = opts.emptyText || "no data yet";
      container.appendChild(p);
      return;
    }
    const max = Math.max(1, ...items.map(d => d.value));
    for (const d of items) {
      const row = document.createElement("div");
      row.className = "row-bar";
      row.dataset.count = d.value;
      row.title = d.tip || "";
      const name = document.createElement("span");
      name.textContent = d.label;
      const track = document.createElement("div");
      track.className = "track";
      const fill = document.createElement("div");
      fill.className = "fill";
      fill.style.width = `${(100 * d.value / max).toFixed(1)}%`;
      track.appendChild(fill);
      const n = document.createElement("span");
      n.className = "n";
      n.textContent = d.value;
      row.append(name, track, n);
      container.appendChild(row);
    }
  }

  function fmtShort(v) {
    if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (v >= 1e3) return (v / 1e3).toFixed(1) + "k";
    return String(Math.round(v * 10) / 10);
  }

  return { bars, sparkline, donut, camelot, hbars, fmtShort };
})();
