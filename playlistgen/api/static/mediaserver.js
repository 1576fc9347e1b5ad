/* Dashboard panel: the media-server link (GET /api/v1/mediaserver/status). Uses dashboard.js's helpers. */
"use strict";

function renderMediaServer(s) {
  const state = $("ms-state");
  if (!s.configured) {
    setText("ms-server", "off");
    state.textContent = "off"; state.className = "pill";
    setText("ms-line", "set mediaserver.url, mediaserver.user and mediaserver.password to link your " +
      "Subsonic/OpenSubsonic server (Navidrome, gonic, Airsonic...)");
    $("ms-rows").textContent = "";
    return;
  }
  const server = s.server ? `${s.server.type} ${s.server.serverVersion || ""} (API ${s.server.version})` : "";
  setText("ms-server", `${s.url} ${server}`);
  const failing = Boolean(s.last_error);
  state.textContent = s.linking ? "linking" : failing ? "error" : "linked";
  state.className = "pill " + (failing ? "bad" : "ok");
  setText("ms-seen", fmtInt(s.songs_seen));
  setText("ms-linked", fmtInt(s.linked.total));
  setText("ms-unmatched", fmtInt(s.unmatched.count));
  setText("ms-pushed", fmtInt(s.playlists.pushed));
  const methods = Object.entries(s.linked.by_method).map(([k, v]) => `${k} ${fmtInt(v)}`).join(", ");
  const last = s.last_link.at ? `last link ${fmtAgo(s.last_link.at)} in ${s.last_link.duration_s.toFixed(1)} s` :
    "not linked yet";
  setText("ms-line", `${last} · by ${methods}` + (failing ? ` · last error: ${s.last_error}` : ""));
  const rows = $("ms-rows");
  rows.textContent = "";
  if (!s.unmatched.first.length) {
    rows.innerHTML = `<tr><td colspan="2" class="muted">every server song is linked</td></tr>`;
    return;
  }
  for (const u of s.unmatched.first.slice(0, 10)) {
    const tr = document.createElement("tr");
    const song = document.createElement("td"); song.textContent = u.path || `${u.artist} – ${u.title}`;
    const why = document.createElement("td"); why.textContent = u.reason;
    tr.append(song, why);
    rows.appendChild(tr);
  }
}

const MS_URL = "/api/v1/mediaserver/status";
async function refreshMediaServer() {
  try {
    renderMediaServer(await getJSON(MS_URL));
    clearError(MS_URL);
  } catch (e) {
    showError(`${MS_URL}: ${e.message}`, MS_URL);
  }
}
refreshMediaServer();
setInterval(refreshMediaServer, REFRESH_S * 1000);
