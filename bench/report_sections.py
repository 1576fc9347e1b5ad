"""The report's sections for the figures the open issues ask for (10 hardening, 11 media server,
12 retagging, 13 Dask, 14 transitions, 15 ONNX Runtime, 23 a radio that listens), and their summary lines. Each section
opens with one sentence: what it measures and the goal, and whether this run met it; bench/report.py
puts them after its own sections and the lines into the summary."""

from __future__ import annotations

from collections.abc import Callable

from report_format import _foreign, _table, f
from report_similarity import similarity_md


def section(title: str, *blocks: str) -> str:
    """A report section: its heading, then the blocks separated by blank lines."""
    return "\n\n".join([f"## {title}", *blocks]) + "\n"


def met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def _ms(x: float) -> str:
    return f"{x:,.1f}"


# --- issue 14: ordering cost and transitions on the corpus -----------------------------------------

def transition_goal(row: dict) -> bool | None:
    return None if not row.get("target_ms") else row["p50_ms"] <= row["target_ms"]


def transitions_md(t: dict, figs: dict) -> str:
    rows = []
    for r in t["rows"]:
        ok = transition_goal(r)
        rows.append([str(r["tracks"]), r["order"], _ms(r["p50_ms"]), _ms(r["p95_ms"]),
                     f"≤ {r['target_ms']:g}" if r.get("target_ms") else "", "" if ok is None else met(ok),
                     f"{r['mean_cost_before']:.3f} → {r['mean_cost_after']:.3f}",
                     f"{r['worst_before']:.3f} → {r['worst_after']:.3f}", f"{r['foreign_cpu_share']:.0%}"])
    judged = [transition_goal(r) for r in t["rows"] if transition_goal(r) is not None]
    return section(
        "Transition-aware ordering: what it costs (issue 14)",
        "Measures the extra wall time a playlist request spends on `order: smooth` / `energy_arc` (cost matrix, "
        "greedy + 2-opt / Or-opt path with the seed first, artist/album gap repair) for synthetic lists of 200-d "
        "embeddings, keys, tempi and loudness, one BLAS thread (`bench/transitions.py`); goal ≤ 20 ms for 50 tracks "
        f"and ≤ 200 ms for 500 (median of {t['runs']} lists; over 500 tracks a third of that): "
        f"{met(all(judged))}." + _foreign(t),
        _table(["tracks", "order", "p50 ms", "p95 ms", "goal ms", "goal", "mean cost list order → ordered",
                "worst cost list order → ordered", "other processes"], rows),
    )


def smooth_goal(tr: dict) -> bool:
    m, p = tr["measures"], tr["label_precision"]
    return (tr["same_members"] and p["smooth"] == p["closeness (as_is)"]
            and m["smooth"]["cost"]["mean"] <= 0.9 * m["closeness (as_is)"]["cost"]["mean"])


def quality_extras_md(c: dict) -> str:
    """Per-label precision, the corpus variants and the transition measures (issue 14)."""
    out: list[str] = []
    if "per_label" in c:
        rows = [[label, str(v["tracks"]), f"{v['p10']:.3f}", f"{c['per_label']['mfcc'][label]['p10']:.3f}",
                 f"{v['p10_artist']:.3f}", f"{c['per_label']['mfcc'][label]['p10_artist']:.3f}"]
                for label, v in c["per_label"]["project"].items()]
        out += ["### Precision by source label", "",
                "Neighbour precision@10 of each label's queries (neighbours searched in the whole corpus): one "
                "dominant label can carry the mean, so each label is shown on its own.", "",
                _table(["label", "tracks", "playlistgen", "MFCC-mean", "playlistgen, artist filter",
                        "MFCC-mean, artist filter"], rows), ""]
    if "variants" in c:
        vp, vm = c["variants"]["project"], c["variants"]["mfcc"]
        rnd = vp["random_balanced"]
        rows = []
        for name, v in vp.items():
            if not isinstance(v, dict) or name == "random_balanced":
                continue
            r = rnd if name.startswith("balanced") else None
            rows.append([name.replace("_", " "), str(v["tracks"]), f"{v['p10']:.3f}", f"{v['p10_artist']:.3f}",
                         f"{v['hubness']:.2f}", f"{vm[name]['p10']:.3f}", f"{vm[name]['hubness']:.2f}",
                         f"{r['p10']:.3f} / {r['hubness']:.2f}" if r else "–"])
        out += ["### Corpus variants", "",
                f"The same measures where the dominant label ({vp['dominant']}, {vp['dominant_share']:.0%} of the "
                "tracks) cannot carry them: *balanced* keeps at most 8 tracks per label (mean of 10 draws), "
                "*without* leaves the dominant label out; neighbours are searched inside the variant.", "",
                _table(["variant", "tracks", "playlistgen P@10", "artist filter", "hubness", "MFCC-mean P@10",
                        "MFCC-mean hubness", "random P@10 / hubness"], rows), ""]
    tr = c.get("transitions")
    if tr:
        rows = []
        for name, m in tr["measures"].items():
            rows.append([name, f"{m['camelot']['mean']:.2f} / {m['camelot']['worst_per_list']:.2f}",
                         f"{m['tempo_jump_pct']['mean']:.1f} / {m['tempo_jump_pct']['worst_per_list']:.1f}",
                         f"{m['lufs_step']['mean']:.2f} / {m['lufs_step']['worst_per_list']:.2f}",
                         f"{m['cost']['mean']:.3f} / {m['cost']['worst_per_list']:.3f}",
                         f"{tr['label_precision'][name]:.3f}"])
        out += ["### Transitions of radio lists (issue 14)", "",
                f"Measures consecutive tracks of {tr['lists']} radio lists of {tr['size']} (every corpus track as the "
                "seed) in closeness order, after `order: smooth` and `energy_arc`, and two baselines over the same "
                "tracks (random order, sorted by BPM; seed first in all); goal: smooth's mean transition cost clearly "
                "(≥ 10 %) below closeness order with the same tracks, so label precision is unchanged: "
                f"{met(smooth_goal(tr))} (same tracks in every order: {'yes' if tr['same_members'] else 'NO'}). "
                "Ordering never changes which tracks are similar, so precision@10 and hubness above hold for every "
                "`order`.", "",
                _table(["order", "Camelot distance mean / worst", "tempo jump % mean / worst",
                        "LUFS step mean / worst", "transition cost mean / worst", "label precision"], rows),
                "", "Worst = the largest step of a list, averaged over the lists. Camelot distance: steps around the "
                "wheel (+1 for a letter change); tempo jump with half/double time folded.", ""]
    return "\n".join(out)


# --- issue 15: the MusiCNN runtime ----------------------------------------------------------------

ONNX_MAX_RATIO, BEFORE_RSS_MB = 0.18, 470.0   # issue 15: balanced ≤ 0.18× MusicExtractor; RSS ~470 MB when filed


def onnx_goal_md(a: dict) -> str:
    """The speed and memory goal of issue 15, under the analysis table (empty without both rows)."""
    k = a["kinds"]
    if "balanced:onnx" not in k or not k["balanced:onnx"].get("vs_musicextractor"):
        return ""
    onnx, ratio = k["balanced:onnx"], k["balanced:onnx"]["vs_musicextractor"]["median"]
    tf = k.get("balanced:essentia")
    versus = (f" ({tf['vs_musicextractor']['median']:.2f}× with MusiCNN on Essentia's TensorFlow)"
              if tf and tf.get("vs_musicextractor") else "")
    rss = f" vs {tf['peak_rss_mb']:.0f} MB on TensorFlow" if tf else ""
    return (f"Goal of issue 15: `balanced` with MusiCNN on ONNX Runtime ≤ {ONNX_MAX_RATIO:g}× MusicExtractor's CPU — "
            f"{ratio:.2f}×{versus}: {met(ratio <= ONNX_MAX_RATIO)}; its worker's peak RSS no higher than the "
            f"~{BEFORE_RSS_MB:.0f} MB of `balanced` when the issue was filed — {onnx['peak_rss_mb']:.0f} MB{rss}: "
            f"{met(onnx['peak_rss_mb'] <= BEFORE_RSS_MB)}.\n")

def ml_runtime_md(m: dict, figs: dict) -> str:
    names = list(m["runtimes"])
    rows = [[n, str(r["tracks"]), f"{r['p10']:.3f}", f"{r['p10_artist']:.3f}", f"{r['hubness']:.2f}",
             f"{r['analysis_cpu_s']:.0f}"] for n, r in m["runtimes"].items()]
    d, noise = m["difference"], m["noise"]
    rows.append([f"difference ({names[0]} − {names[1]})", "", f"{round(d['p10'], 3) + 0.0:+.3f}",
                 f"{round(d['p10_artist'], 3) + 0.0:+.3f}", f"{round(d['hubness'], 2) + 0.0:+.2f}", ""])
    return section(
        "Playlist quality by MusiCNN runtime (issue 15)",
        "Measures neighbour precision@10 and hubness on the dev corpus scanned once with `analysis.ml_runtime: onnx` "
        "and once with `essentia` (TensorFlow), current similarity settings, in the same run (`bench/ml_runtime.py`); "
        f"goal: unchanged within noise (standard error ≈ {noise['p10']:.3f} for precision@10, "
        f"{noise['hubness']:.2f} for hubness): {met(m['within_noise'])}." + _foreign(m),
        _table(["ml_runtime", "tracks", "precision@10", "artist filter", "hubness", "scan's analysis CPU-s"], rows),
    )


# --- issue 12: retagging ----------------------------------------------------------------------------

def retag_md(r: dict, figs: dict) -> str:
    return section(
        "Retagging an analysed library (issue 12)",
        f"Measures the reconcile that notices {r['files']:,} retagged files (new title, genre and a 2 KB tag, written "
        "with mutagen as a tagger would) against the CPU their analysis took (`bench/retag.py`, preset "
        f"`{r['preset']}`, the cheapest analysis and so the hardest ratio); goal ≤ {r['goal_pct']:g} % of the analysis "
        f"CPU and nothing analysed again: {met(r['goal_met'])}." + _foreign(r),
        _table(["files", "audio min", "analysis CPU-s", "retag reconcile CPU-s", "share", "retagged",
                "re-analysed", "audio fingerprint ms/MB"],
               [[f"{r['files']:,}", f"{r['audio_min']:.0f}", f"{r['analysis_cpu_s']:.1f}", f"{r['retag_cpu_s']:.2f}",
                 f"{r['ratio_pct']:.2f} %", f"{r['retagged']:,}", str(r["reanalysed"]),
                 f"{r['fingerprint_ms_per_mb']:.2f}"]]),
    )


# --- issue 11: media server link and the /rest proxy -------------------------------------------------

def mediaserver_md(m: dict, figs: dict) -> str:
    rows = [[r["label"], f"{r['songs']:,}", f"{r['wall_s']:.1f}", f"{r['cpu_s']:.1f}",
             f"{r['cpu_s'] / max(r['songs'], 1) * 1e6:.0f}",
             ", ".join(f"{k} {v:,}" for k, v in r["by_method"].items()), f"{r['unmatched']:,}"] for r in m["runs"]]
    return section(
        "Linking a media server (issue 11)",
        f"Measures the CPU of our process (all threads) for linking a {m['songs']:,}-song Subsonic catalogue (a "
        "fixture server in its own process; 85 % matched by path, 5 % by path suffix, 5 % by MusicBrainz id, 4 % by "
        f"tags, 1 % unmatched; `bench/mediaserver_link.py`); goal < {m['goal_cpu_s']:g} CPU-s: "
        f"{met(m['goal_met'])}." + _foreign(m),
        _table(["run", "songs", "wall s", "CPU-s", "CPU-µs / song", "matched by", "unmatched"], rows),
    )


PROXY_MIN_MB_S, PROXY_MAX_P95_MS = 10.0, 200.0


def proxy_goal(p: dict) -> bool:
    return (min(p["stream"]["proxy_mb_s"]) >= PROXY_MIN_MB_S
            and p["latency_ms"]["getSimilarSongs2 (count 50)"]["p95"] <= PROXY_MAX_P95_MS)


def _median(xs: list[float]) -> float:
    v = sorted(xs)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def proxy_md(p: dict, figs: dict) -> str:
    st = p["stream"]
    lat = [[name, _ms(v["p50"]), _ms(v["p95"]), _ms(v["max"])] for name, v in p["latency_ms"].items()]
    return section(
        "The Subsonic proxy (issue 11)",
        f"Measures a {p['stream_mb']} MB `stream` straight from a real supysonic and through playlistgen's `/rest` "
        f"proxy ({p['runs']} interleaved downloads each), and the latency of `/rest` calls with "
        f"{p['tracks']:,} analysed, linked tracks ({p['queries']} requests each; `bench/subsonic_proxy.py`); "
        f"issue 11 sets no number, the yardstick here: every proxied stream ≥ {PROXY_MIN_MB_S:g} MB/s (about 100 "
        f"lossless streams at once) and `getSimilarSongs2` p95 ≤ {PROXY_MAX_P95_MS:g} ms: {met(proxy_goal(p))}."
        + _foreign(p),
        _table(["stream", "direct MB/s", "through the proxy MB/s", "proxy / direct"],
               [[f"{p['stream_mb']} MB", f"{_median(st['direct_mb_s']):,.0f}", f"{_median(st['proxy_mb_s']):,.0f}",
                 f"{_median(st['ratio']):.2f}× ({min(st['ratio']):.2f}–{max(st['ratio']):.2f})"]]),
        _table(["call (HTTP, credentials cached)", "p50 ms", "p95 ms", "max ms"], lat),
        "Client, proxy and server share the same cores, so the stream ratio is a lower bound.",
    )


# --- issue 10: hardening ---------------------------------------------------------------------------

BEFORE_P99_MS = 446.0   # issue 10: 50 clients × 30 s while analysing, before the fixes: 217 req/s, p99 446 ms, 2 errors


def hardening_goals(h: dict) -> tuple[bool, bool]:
    idle = h["idle_failed_at"] is None and h["health_after_ms"] is not None
    ld, after = h["load"], h["counts_after"]
    # "while analysing": only a load that ended with files still in the queue shows it
    analysing = after.get("pending", 0) + after.get("analysing", 0) > 0
    return idle, analysing and ld["errors"] == 0 and ld["p99_ms"] <= BEFORE_P99_MS


def hardening_md(h: dict, figs: dict) -> str:
    idle_ok, load_ok = hardening_goals(h)
    ld, before, after = h["load"], h["counts_before"], h["counts_after"]
    still = after.get("pending", 0) + after.get("analysing", 0) > 0
    idle_rows = [[f"{s['idle']:,}", "no answer within 15 s" if s["health_ms"] is None else f"{s['health_ms']:.0f}"]
                 for s in h["idle_steps"]]
    route_rows = [[route, f"{r['n']:,}", f"{r['p50_ms']:.0f}", f"{r['p99_ms']:.0f}"] for route, r in
                  ld["by_route"].items()]
    return section(
        "The daemon under hostile and heavy use (issue 10)",
        f"Measures a real `playlistgen serve` analysing {h['files']} generated songs (`bench/hardening.py`): idle "
        "connections opened in steps (half an unfinished request header) with `/health` asked after each — goal: "
        f"it keeps answering (before the fixes ~100 made it unreachable): {met(idle_ok)}; then {h['clients']} "
        f"clients for {h['seconds']:g} s while it analyses — goal 0 errors and p99 ≤ {BEFORE_P99_MS:g} ms "
        f"(before the fixes, 30 s: 217 req/s, p99 446 ms, 2 errors): {met(load_ok)}." + _foreign(h),
        _table(["idle connections open", "/health ms"], idle_rows),
        "`/health` after closing them: "
        + ("no answer" if h["health_after_ms"] is None else f"{h['health_after_ms']:.0f} ms")
        + f" (`connection_limit` {h['connection_limit']:,}).",
        _table(["clients × s", "requests", "req/s", "p50 ms", "p99 ms", "errors", "waitress.queue log lines"],
               [[f"{h['clients']} × {h['seconds']:g}", f"{ld['requests']:,}", f"{ld['rps']:.0f}", f"{ld['p50_ms']:.0f}",
                 f"{ld['p99_ms']:.0f}", str(ld["errors"]), str(h["queue_warning_lines"])]]),
        f"Library during the load: {before.get('analysed', 0)} → {after.get('analysed', 0)} of {after.get('total', 0)} "
        f"analysed ({'still analysing at the end' if still else 'analysis finished before the end'}); other "
        f"processes used {ld['foreign_share']:.0%} of the machine meanwhile.",
        _table(["route", "requests", "p50 ms", "p99 ms"], route_rows),
    )


# --- issue 13: Dask ---------------------------------------------------------------------------------

def distributed_md(r: dict, figs: dict) -> str:
    p = r["projection"]
    mb = {k: r["bytes_per_audio_min"][k] / 2**20 for k in ("median", "min", "max")}
    mb["n"] = r["bytes_per_audio_min"]["n"]
    return section(
        "Analysis on other machines: Dask (issue 13)",
        f"Measures the throughput of 2 Dask workers (`playlistgen worker`, file bytes shipped with each task, "
        "scheduler inside the benchmark process as in `serve`) against 2 local worker processes on the same "
        f"machine: {r['files']} corpus files ({r['audio_min']:.1f} audio-min), preset {r['preset']}, warm workers, "
        f"{r['ratio']['n']} pairs in alternating order (`bench/distributed.py`); goal: overhead ratio ≥ 0.9: "
        f"{met(r['ratio']['median'] >= 0.9)}." + _foreign(r),
        _table(["", "audio-min per wall-min", "CPU-s per audio-min", "workers busy"],
               [["2 local processes", f(r["local"], 1), f(r["cpu_s_per_audio_min"]["local"], 2),
                 f(r["busy_share"]["local"], 2)],
                ["2 Dask workers", f(r["dask"], 1), f(r["cpu_s_per_audio_min"]["dask"], 2),
                 f(r["busy_share"]["dask"], 2)],
                ["**overhead ratio** (Dask / local)", f"**{f(r['ratio'], 2)}**", "", ""]]),
        f"Bytes shipped per audio minute: {f(mb, 2)} MB (the files as stored). Time to first result on an idle "
        f"warm cluster: {r['first_result_s']['dask']:.2f} s with Dask vs {r['first_result_s']['local']:.2f} s "
        f"locally (one file); from starting `playlistgen worker` to the first result: "
        f"{r['cold_first_result_s']:.1f} s (workers joined and loaded the models from the daemon in "
        f"{r['workers_join_s']:.1f} s). Other processes used {r['foreign_share']['median']:.0%} "
        f"({r['foreign_share']['min']:.0%}–{r['foreign_share']['max']:.0%}) of the machine during the pairs.",
        f"**Projection, not a measurement** (from the measured per-core rate of this machine, "
        f"{p['per_core_audio_min_per_min']:.1f} audio-min per wall-min per core, and the measured overhead ratio "
        f"for the remote cores): a {p['nas_cores']}-core NAS alone ≈ {p['nas_alone']:.0f} audio-min/min; with a "
        f"{p['desktop_cores']}-core desktop as Dask workers ≈ {p['nas_plus_desktop']:.0f} audio-min/min. A "
        f"200,000-track library ({p['track_min']:g} min per track) then takes ≈ {p['hours_200k_nas']:.1f} h on "
        f"the NAS alone and ≈ {p['hours_200k_both']:.1f} h with the desktop. Real machines differ in per-core "
        "speed, and a NAS serving the files over a 1 Gbit/s link ships ≈ 110 MB/s, far above what these rates need.",
    )


# --- issue 23: skips as feedback -------------------------------------------------------------------

def feedback_md(r: dict, figs: dict) -> str:
    import feedback as fb  # bench/feedback.py renders its own section (also when run alone)

    return fb.markdown(r["rows"], r["corpus_tracks"]).rstrip("\n") + _foreign(r) + "\n"


SECTIONS: tuple[tuple[str, Callable[[dict, dict], str]], ...] = (
    ("similarity", similarity_md), ("transitions", transitions_md), ("ml_runtime", ml_runtime_md), ("retag", retag_md),
    ("mediaserver", mediaserver_md), ("proxy", proxy_md), ("hardening", hardening_md),
    ("distributed", distributed_md), ("feedback", feedback_md))


# --- summary lines ----------------------------------------------------------------------------------

def _ok(sec: dict | None) -> bool:
    return bool(sec) and "error" not in sec


def summary_lines(s: dict) -> list[str]:
    lines = []
    t, q = s.get("transitions"), s.get("quality", {}).get("corpus", {}).get("transitions")
    if _ok(t):
        by = {(r["tracks"], r["order"]): r for r in t["rows"]}
        if (50, "smooth") in by and (500, "smooth") in by:
            line = (f"* Transition-aware ordering (`order: smooth`): **{by[50, 'smooth']['p50_ms']:.1f} ms** for 50 "
                    f"tracks, {by[500, 'smooth']['p50_ms']:.0f} ms for 500 (goals ≤ 20 / ≤ 200 ms)")
            if q:
                m = q["measures"]
                line += (f"; on the corpus' radio lists it lowers the mean transition cost from "
                         f"{m['closeness (as_is)']['cost']['mean']:.3f} (closeness order) to "
                         f"{m['smooth']['cost']['mean']:.3f} with the same tracks")
            lines.append(line + ".")
    m = s.get("ml_runtime")
    if _ok(m):
        o, e = m["runtimes"]["onnx"], m["runtimes"]["essentia"]
        lines.append(f"* MusiCNN on ONNX Runtime vs Essentia's TensorFlow: precision@10 {o['p10']:.3f} vs "
                     f"{e['p10']:.3f}, hubness {o['hubness']:.2f} vs {e['hubness']:.2f} "
                     f"({'within' if m['within_noise'] else 'NOT within'} noise).")
    r = s.get("retag")
    if _ok(r):
        lines.append(f"* Retagging {r['files']:,} analysed files: **{r['ratio_pct']:.1f} %** of their analysis CPU, "
                     f"{r['reanalysed']} re-analysed (goal ≤ 5 %, 0).")
    ms = s.get("mediaserver")
    if _ok(ms):
        lines.append(f"* Linking a {ms['songs']:,}-song media server: **{max(x['cpu_s'] for x in ms['runs']):.1f} "
                     f"CPU-s** (goal < {ms['goal_cpu_s']:g}).")
    p = s.get("proxy")
    if _ok(p):
        lines.append(f"* Subsonic proxy with {p['tracks']:,} tracks: `getSimilarSongs2` p50 "
                     f"**{p['latency_ms']['getSimilarSongs2 (count 50)']['p50']:.1f} ms**; `stream` at "
                     f"{_median(p['stream']['proxy_mb_s']):.0f} MB/s ({_median(p['stream']['ratio']):.2f}× direct).")
    h = s.get("hardening")
    if _ok(h):
        ld = h["load"]
        lines.append(f"* Daemon under load: `/health` answers with {h['idle_held']:,} idle connections open; "
                     f"{h['clients']} clients while analysing: {ld['rps']:.0f} requests/s, p99 {ld['p99_ms']:.0f} ms, "
                     f"**{ld['errors']} errors**.")
    d = s.get("distributed")
    if _ok(d):
        lines.append(f"* Dask: 2 workers at **{d['ratio']['median']:.2f}×** the throughput of 2 local processes "
                     "(goal ≥ 0.9).")
    fb = s.get("feedback")
    if _ok(fb) and fb["rows"]:
        before = sum(r["before"] for r in fb["rows"]) / len(fb["rows"])
        after = sum(r["after"] for r in fb["rows"]) / len(fb["rows"])
        lines.append(f"* A radio that listens: a source skipped through falls from **{before:.0%}** to **{after:.0%}** "
                     f"of the next {fb['radio']} radio tracks (mean over sources; goal: it falls, "
                     f"{'met' if fb['goal_met'] else 'not met'}).")
    return lines
