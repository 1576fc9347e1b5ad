"""Render bench/run_all.py's results: docs/benchmarks.md (tables), docs/bench/*.png (plots), and
the summary block that README.md repeats word for word (between the same markers; a test checks
they are equal)."""

from __future__ import annotations

import re
from pathlib import Path

import report_sections
from report_format import _foreign, _table, f, pct

SUMMARY_START, SUMMARY_END = "<!-- bench-summary:start -->", "<!-- bench-summary:end -->"
COLORS = {"project": "#2b6cb0", "mfcc": "#dd6b20", "random": "#a0aec0", "librosa": "#38a169"}


# --- summary (README) -----------------------------------------------------------------------------

def summary(r: dict) -> str:
    s = r["sections"]
    lines = []
    a = s.get("analysis", {}).get("kinds", {})
    bal = "balanced" if "balanced" in a else "balanced:onnx"
    if bal in a and "musicextractor" in a:
        b, fa, me = a[bal], a["fast"], a["musicextractor"]
        line = (f"* Analysis, preset `balanced` (DSP + MusiCNN tags and embedding"
                f"{' on onnxruntime' if bal != 'balanced' else ''}): "
                f"**{b['cpu_per_min']['median']:.2f} CPU-s per audio minute** "
                f"({b['rtf']['median']:.0f}× realtime on one core), "
                f"{b['vs_musicextractor']['median']:.2f}× the CPU of Essentia's MusicExtractor "
                f"({me['cpu_per_min']['median']:.2f}) on the same files; `fast` {fa['cpu_per_min']['median']:.2f}")
        if "balanced:essentia" in a:
            line += (f", `balanced` on Essentia's TensorFlow {a['balanced:essentia']['cpu_per_min']['median']:.2f}"
                     f" ({a['balanced:essentia']['vs_musicextractor']['median']:.2f}×)")
        if "accurate" in a:
            line += f", `accurate` {a['accurate']['cpu_per_min']['median']:.2f}"
        if "librosa" in a:
            line += f"; a plain librosa feature script {a['librosa']['cpu_per_min']['median']:.2f}"
        lines.append(line + ".")
    sc = s.get("scaling", {})
    if "speedup" in sc:
        lines.append(f"* 2 workers vs 1: **{sc['speedup']['median']:.2f}×** the audio analysed per minute "
                     f"({sc['two']['median']:.0f} vs {sc['one']['median']:.0f} audio-min/min).")
    rs = s.get("rss", {}).get("presets", {}).get("balanced")
    if rs:
        lo, hi = min(rs, key=int), max(rs, key=int)
        lines.append(f"* Peak RSS of a `balanced` worker: {rs[lo]['median']:.0f} MB for a {lo}-min file, "
                     f"{rs[hi]['median']:.0f} MB for a {hi}-min file.")
    la = s.get("latency", {})
    if "searchable_s" in la:
        lines.append(f"* File dropped into the library → searchable in **{la['searchable_s']['median']:.1f} s**, "
                     f"in other tracks' radio in {la['in_radio_s']['median']:.1f} s "
                     f"(includes the {la['settle_s']:g} s `library.settle_seconds` wait).")
    rc = s.get("reconcile", {})
    if "unchanged_s" in rc:
        lines.append(f"* Reconcile of {rc['files']:,} unchanged files: **{rc['unchanged_s']['median']:.2f} s**.")
    d = s.get("db", {}).get("batches", {})
    if d:
        lines.append(f"* Batched DB writes: {d['64']['median']:,.0f} rows/s at `database.batch_size` 64 "
                     f"({d['1']['median']:,.0f} rows/s one per transaction).")
    ap = s.get("api", {})
    if "radio" in ap:
        lines.append(f"* API on a {ap['tracks']:,}-track library: radio p50 "
                     f"**{ap['radio']['server_p50_ms']['median']:.1f} ms**, "
                     f"p99 {ap['radio']['server_p99_ms']['median']:.1f} ms; {ap['concurrent']['clients']} clients: "
                     f"{ap['concurrent']['rps']['median']:.0f} requests/s, {ap['concurrent']['errors']} errors.")
    ca = s.get("cache", {})
    if "speedup" in ca:
        lines.append(f"* Feature cache: {ca['configs']['lz4, 64 MB']['hit_rate']:.0%} hit rate on a Zipf workload, "
                     f"per-track reads {ca['speedup']['median']:.1f}× faster than without it.")
    q = s.get("quality", {})
    if "corpus" in q:
        c, gt = q["corpus"], q["ground_truth"]["methods"]["project"]
        lines.append(f"* Playlist quality (dev corpus, source labels): neighbour precision@10 "
                     f"**{c['project']['p10']:.2f}** vs MFCC-mean {c['mfcc']['p10']:.2f} vs random "
                     f"{c['random']['p10']:.2f}; hubness (10-occurrence skewness) {c['project']['hubness']:.2f} vs "
                     f"{c['mfcc']['hubness']:.2f} vs {c['random']['hubness']:.2f}.")
        lines.append(f"* Generated ground truth: tempo Acc2 **{pct(gt['tempo']['acc2'])}** "
                     f"(Acc1 {pct(gt['tempo']['acc1'])}), "
                     f"key **{pct(gt['key']['exact'])}** exact.")
    lines += report_sections.summary_lines(s)
    m = s.get("machine", {})
    head = (f"Measured by `make bench` ({r['mode']} mode) on {m.get('cores', '?')} cores ({m.get('cpu', '?')}), "
            f"{m.get('date', '?')}; medians of several runs — spreads, method and plots in `docs/benchmarks.md`.")
    return "\n".join([head, "", *lines])


# --- plots --------------------------------------------------------------------------------------

def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 100, "font.size": 9, "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _err(s: dict) -> list[float]:
    return [s["median"] - s["min"], s["max"] - s["median"]]


def plots(r: dict, assets: Path) -> dict[str, str]:
    plt = _plt()
    s = r["sections"]
    made = {}
    a = s.get("analysis", {}).get("kinds")
    if a:
        fig, ax = plt.subplots(figsize=(6.4, 3.0))
        names = list(a)
        vals = [a[k]["cpu_per_min"]["median"] for k in names]
        errs = list(zip(*[_err(a[k]["cpu_per_min"]) for k in names], strict=True))
        colors = [COLORS["project"] if k.split(":")[0] in ("fast", "balanced", "accurate") else
                  COLORS["librosa"] if k == "librosa" else COLORS["mfcc"] for k in names]
        ax.barh([a[k]["label"] for k in names], vals, xerr=errs, color=colors)
        ax.set_xlabel("CPU-seconds per minute of audio (one core; lower is better)")
        ax.invert_yaxis()
        fig.tight_layout()
        fig.savefig(assets / "analysis_cost.png")
        plt.close(fig)
        made["analysis"] = "bench/analysis_cost.png"
    sc = s.get("scaling", {})
    if "speedup" in sc:
        fig, ax = plt.subplots(figsize=(4.8, 2.8))
        ax.bar(["1 worker", "2 workers"], [sc["one"]["median"], sc["two"]["median"]],
               yerr=list(zip(_err(sc["one"]), _err(sc["two"]), strict=True)), color=COLORS["project"])
        ax.set_ylabel("audio minutes analysed per minute")
        ax.set_title(f"balanced: {sc['speedup']['median']:.2f}× (machine's pure-CPU loop "
                     f"{sc['calibration']['speedup']:.2f}×)")
        fig.tight_layout()
        fig.savefig(assets / "scaling.png")
        plt.close(fig)
        made["scaling"] = "bench/scaling.png"
    rs = s.get("rss", {}).get("presets")
    if rs:
        fig, ax = plt.subplots(figsize=(4.8, 2.8))
        for preset, row in rs.items():
            xs = sorted(int(m) for m in row)
            ax.plot(xs, [row[str(x)]["median"] for x in xs], marker="o", label=preset)
        ax.set_xlabel("file length (minutes)")
        ax.set_ylabel("peak RSS (MB)")
        ax.set_title("one analyzer process, one file")
        ax.set_ylim(bottom=0)
        ax.legend()
        fig.tight_layout()
        fig.savefig(assets / "rss_vs_length.png")
        plt.close(fig)
        made["rss"] = "bench/rss_vs_length.png"
    q = s.get("quality", {})
    if "corpus" in q:
        c = q["corpus"]
        fig, axes = plt.subplots(1, 3, figsize=(8.4, 2.6))
        methods = ("project", "mfcc", "random")
        for ax, key, title in zip(axes, ("p10", "p10_artist", "hubness"),
                                  ("precision@10", "precision@10, artist filter", "hubness (lower = fewer hubs)"),
                                  strict=True):
            ax.bar(["playlistgen", "MFCC-mean", "random"], [c[m][key] for m in methods],
                   color=[COLORS[m] for m in methods])
            ax.set_title(title)
            ax.axhline(0, color="black", linewidth=0.5)
        fig.tight_layout()
        fig.savefig(assets / "quality.png")
        plt.close(fig)
        made["quality"] = "bench/quality.png"
    if q.get("sweep"):
        fig, ax = plt.subplots(figsize=(5.6, 3.4))
        for metric, color in (("euclidean", COLORS["mfcc"]), ("cosine", COLORS["project"])):
            pts = [g for g in q["sweep"] if g["metric"] == metric]
            ax.scatter([g["hubness"] for g in pts], [g["p10_artist"] for g in pts], s=10, alpha=0.6, color=color,
                       label=f"{metric} (144 weight settings)")
        before, after = q["before"]["project"], c["project"]
        ax.scatter([before["hubness"]], [before["p10_artist"]], marker="X", s=80, color="black", label="old default")
        ax.scatter([after["hubness"]], [after["p10_artist"]], marker="*", s=140, color="crimson", label="new default")
        ax.axvline(c["random"]["hubness"], color=COLORS["random"], linestyle="--", label="random's hubness")
        ax.set_xlabel("hubness (skewness of 10-occurrence)")
        ax.set_ylabel("precision@10, artist filter")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(assets / "tuning.png")
        plt.close(fig)
        made["tuning"] = "bench/tuning.png"
    return made


# --- markdown -------------------------------------------------------------------------------------

def _section_error(name: str, sec: dict) -> str | None:
    if "error" in sec:
        return f"## {name}\n\nThis section failed in this run: `{sec['error']}`\n"
    return None


def markdown(r: dict, figs: dict[str, str]) -> str:
    s = r["sections"]
    m = s.get("machine", {})
    parts = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`bench/run_all.py`) — do not edit by hand; re-run it. "
        f"Mode: **{r['mode']}** (`make bench` runs the quick mode, `make bench FULL=1` the full one), "
        f"total {r.get('total_s', 0):.0f} s.",
        "",
        f"Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('memory_gb', '?')} GB RAM, "
        f"Python {m.get('python', '?')}, {m.get('os', '?')}; commit {m.get('commit', '?')}, {m.get('date', '?')}. "
        f"Versions: " + ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items()) + ".",
        "",
        "How to read: every figure is the **median of several runs, with the spread (min–max) in brackets**; "
        "a ratio compares two figures measured side by side in the same run. The machine may be shared: each "
        "section says how much of it other processes used meanwhile. Raw numbers with every run: "
        "[bench/results.json](bench/results.json).",
        "",
        "## Summary",
        "",
        SUMMARY_START,
        summary(r),
        SUMMARY_END,
        "",
    ]
    for name, fn in (("analysis", _analysis_md), ("scaling", _scaling_md), ("rss", _rss_md),
                     ("latency", _latency_md), ("reconcile", _reconcile_md), ("db", _db_md), ("api", _api_md),
                     ("cache", _cache_md), ("quality", _quality_md), *report_sections.SECTIONS):
        sec = s.get(name)
        if sec is None:
            continue
        parts.append(_section_error(name, sec) or fn(sec, figs))
    return "\n".join(parts).rstrip() + "\n"


def _analysis_md(a: dict, figs: dict) -> str:
    rows = [[k["label"], f(k["cpu_per_min"], 3), f(k["rtf"], 0, "×"), f"{k['peak_rss_mb']:.0f}",
             f(k.get("vs_musicextractor"), 2, "×")] for k in a["kinds"].values()]
    return "\n".join([
        "## Analysis cost per preset",
        "",
        f"The same {len(a['files'])} corpus files ({a['audio_min']:.1f} audio minutes: {', '.join(a['files'])}), "
        f"{a['rounds']} rounds, each analyzer in its own fresh process with one thread, after one warm-up file "
        "(imports, model loading and librosa's JIT are not counted). CPU-s per audio minute = total CPU / total "
        "audio of a round; realtime factor = audio / wall time; the ratio to MusicExtractor is taken round by "
        "round. The librosa script is `bench/librosa_features.py` (load, beat_track, chroma_stft, MFCC, "
        "spectral centroid/bandwidth/rolloff/contrast, zcr, rms, template key)." + _foreign(a),
        "",
        _table(["analyzer", "CPU-s / audio min", "realtime factor", "peak RSS MB", "CPU vs MusicExtractor"], rows),
        "",
        report_sections.onnx_goal_md(a),
        f"![analysis cost]({figs['analysis']})" if "analysis" in figs else "",
        "",
    ])


def _scaling_md(sc: dict, figs: dict) -> str:
    rows = []
    for i, p in enumerate(sc["pairs"], 1):
        rows.append([str(i), f"{p['one']['audio_min_per_min']:.0f}", f"{p['two']['audio_min_per_min']:.0f}",
                     f"{p['speedup']:.2f}×", f"{p['two']['cpu_utilisation']:.0%}", f"{p['foreign_share']:.0%}",
                     str(p["attempt"])])
    cal = sc["calibration"]
    return "\n".join([
        "## Scaling: 1 vs 2 workers",
        "",
        f"Preset balanced through the real process pool (`AnalysisExecutor`), {sc['files']} files "
        f"({sc['audio_min']:.1f} audio minutes) per run, longest first; both pools started and every worker "
        "warmed with one file before timing. Throughput is audio minutes per wall minute. Pairs (1 worker, then "
        f"2) disturbed by other processes using more than {sc['max_foreign']:.0%} of the machine were repeated "
        "(the least disturbed attempt is shown). `bench/scaling.py` explains the method." + _foreign(sc),
        "",
        f"**Speed-up {f(sc['speedup'], 2, '×')}**: 1 worker {f(sc['one'], 0)}, "
        f"2 workers {f(sc['two'], 0)} audio-min/min. "
        f"The machine itself, measured in the same run with a pure-CPU loop: {cal['speedup']:.2f}× "
        f"(other processes used {cal['one']['foreign_share']:.0%} / {cal['two']['foreign_share']:.0%} of it "
        "meanwhile).",
        "",
        _table(["pair", "1 worker", "2 workers", "speed-up", "2-worker CPU use", "other processes", "attempt"],
               rows),
        "",
        f"![scaling]({figs['scaling']})" if "scaling" in figs else "",
        "",
    ])


def _rss_md(rs: dict, figs: dict) -> str:
    lengths = [str(x) for x in rs["lengths_min"]]
    rows = [[p, *[f(row[m], 0) for m in lengths]] for p, row in rs["presets"].items()]
    return "\n".join([
        "## Peak RSS versus file length",
        "",
        f"A fresh analyzer process analyses one file made by repeating a real track ({rs['source']}) to each "
        f"length; peak RSS (`ru_maxrss`, MB) of that process, {rs['runs']} run(s) each. Decoding streams in "
        "20 s chunks, so memory should not grow with the length." + _foreign(rs),
        "",
        _table(["preset", *[f"{m} min" for m in lengths]], rows),
        "",
        f"![rss]({figs['rss']})" if "rss" in figs else "",
        "",
    ])


def _latency_md(la: dict, figs: dict) -> str:
    rows = [[str(i), f"{r['file_s']:.0f}", f"{r['searchable_s']:.1f}", f"{r['in_radio_s']:.1f}",
             f"{r['radio_seed_s']:.1f}"] for i, r in enumerate(la["rows"], 1)]
    return "\n".join([
        "## From file drop to playlist-ready",
        "",
        f"A real `playlistgen serve` (default config: watcher on, `library.settle_seconds` {la['settle_s']:g}, "
        f"preset balanced, {la['workers']} workers) on a small library; a tagged copy of another corpus track is "
        "copied into the folder and the API is polled every 0.1 s (`bench/latency.py`)." + _foreign(la),
        "",
        f"Searchable (`GET /api/v1/tracks?q=`): **{f(la['searchable_s'], 1, ' s')}**; in another track's radio: "
        f"{f(la['in_radio_s'], 1, ' s')}; radio seeded with it: {f(la['radio_seed_s'], 1, ' s')}.",
        "",
        _table(["drop", "audio s", "searchable s", "in another radio s", "radio from it s"], rows),
        "",
    ])


def _reconcile_md(rc: dict, figs: dict) -> str:
    return "\n".join([
        "## Reconcile",
        "",
        f"A generated tree of {rc['files']:,} small files (artist/album/track folders). First scan (stat, "
        f"fingerprint, insert): {rc['first_scan_s']:.1f} s. **Unchanged rescan: {f(rc['unchanged_s'], 2, ' s')}** "
        f"= {f(rc['files_per_s'], 0)} files/s." + _foreign(rc),
        "",
    ])


def _db_md(d: dict, figs: dict) -> str:
    rows = [[b, f(v, 0)] for b, v in d["batches"].items()]
    return "\n".join([
        "## Batched database writes",
        "",
        f"{d['rows']:,} `files` upserts, one writer job each, through the single writer thread; rows per second "
        f"by `database.batch_size`. A reader-pool checkout + check-in costs {f(d['checkout_us'], 1, ' µs')}."
        + _foreign(d),
        "",
        _table(["batch_size", "rows/s"], rows),
        "",
    ])


def _api_md(ap: dict, figs: dict) -> str:
    rows = [[name, f(ap[name]["server_p50_ms"], 1), f(ap[name]["server_p99_ms"], 1),
             f(ap[name]["client_p50_ms"], 1)] for name in ("radio", "path")]
    c = ap["concurrent"]
    return "\n".join([
        "## HTTP API on a 100k-track library",
        "",
        f"A synthetic library of {ap['tracks']:,} analysed tracks, the API served by waitress in a child process "
        f"(ready, index built, after {ap['ready_s']:.1f} s), 127.0.0.1 only. 30-track playlists, "
        f"{ap['requests']} sequential requests per run, {ap['runs']} runs; server time is `X-Process-Time`."
        + _foreign(ap),
        "",
        _table(["strategy", "server p50 ms", "server p99 ms", "client p50 ms"], rows),
        "",
        f"{c['clients']} concurrent clients posting radio requests for {c['seconds']:g} s, {ap['runs']} runs: "
        f"**{f(c['rps'], 0)} requests/s**, client p50 {f(c['p50_ms'], 1, ' ms')}, p99 {f(c['p99_ms'], 1, ' ms')}, "
        f"{c['errors']} errors in {c['requests']:,} requests.",
        "",
    ])


def _cache_md(ca: dict, figs: dict) -> str:
    rows = [[name, "–" if v["hit_rate"] is None else f"{v['hit_rate']:.1%}", f(v["mean_us"], 1), f(v["p95_us"], 1)]
            for name, v in ca["configs"].items()]
    return "\n".join([
        "## Feature cache",
        "",
        f"Per-track feature reads (the API's access pattern): {ca['requests']:,} requests over {ca['tracks']:,} "
        f"tracks drawn from a Zipf distribution (s = {ca['zipf']}; {ca['distinct']:,} distinct tracks), "
        f"fresh cache per run. With the default cache, reads are **{f(ca['speedup'], 1, '×')} faster** than without."
        + _foreign(ca),
        "",
        _table(["cache", "hit rate", "mean µs", "p95 µs"], rows),
        "",
    ])


def _quality_md(q: dict, figs: dict) -> str:
    gt, c = q["ground_truth"], q["corpus"]
    gm = gt["methods"]
    gt_rows = [[name, pct(m["tempo"]["acc1"]), pct(m["tempo"]["acc2"]), pct(m["key"]["exact"]),
                pct(m["key"]["camelot"])] for name, m in (("playlistgen (balanced)", gm["project"]),
                                                           ("plain librosa script", gm["librosa"]),
                                                           ("random guess", gm["random"]))]
    names = {"project": "playlistgen", "mfcc": "MFCC-mean similarity", "random": "random"}
    rows = []
    for key in ("project", "mfcc", "random"):
        d, p = c["duplicates"][key], c["paths"][key]
        rows.append([names[key], f"{c[key]['p10']:.3f}", f"{c[key]['p10_artist']:.3f}", f"{c[key]['hubness']:.2f}",
                     pct(d["rate"]), f"{p['project_space']['mean_step']:.2f} / {p['project_space']['max_step']:.2f}",
                     f"{p['mfcc_space']['mean_step']:.2f} / {p['mfcc_space']['max_step']:.2f}"])
    labels = ", ".join(f"{k} {v}" for k, v in c["labels"].items())
    out = [
        "## Playlist quality",
        "",
        "`bench/quality.py` (its docstring defines every measure). Baselines computed in the same run: random, "
        "and MFCC-mean similarity (Euclidean distance of z-scored MFCC means)." + _foreign(q),
        "",
        f"### Tempo and key on generated ground truth ({gt['tempo_files']} files with a tempo, "
        f"{gt['key_files']} with a key)",
        "",
        _table(["method", "tempo Acc1 (±4 %)", "tempo Acc2 (×2, ×½ too)", "key exact", "key Camelot-neighbour"],
               gt_rows),
        "",
        "Per kind (playlistgen, Acc1 / Acc2): " + ", ".join(
            f"{k} {pct(v['acc1'])} / {pct(v['acc2'])}" for k, v in gm["project"]["by_kind"].items()) + ".",
        "",
        f"### Dev corpus: {c['tracks']} tracks by source label ({labels}), {c['versions']} extra versions",
        "",
        f"Similarity space: metric `{c['metric']}`, weights " + ", ".join(f"{k} {v:g}" for k, v in c["weights"].items())
        + f". Artists are known for {c['artists_known']} of {c['tracks']} tracks. Radio: 10 tracks, "
        f"{c['duplicates']['project']['playlists']} playlists ({c['duplicates']['seeds_with_version']} seeded with a "
        f"track that has a second version). Path: 10 tracks between {c['paths']['pairs']} random pairs from different "
        "sources; step distances divided by the median pairwise distance of the space they are measured in.",
        "",
        _table(["method", "precision@10", "precision@10, artist filter", "hubness", "radio duplicates",
                "path step mean / max (playlistgen space)", "(MFCC space)"], rows),
        "",
        f"Noise: the random baseline is the mean of 20 draws; its hubness ranged "
        f"{c['random']['hubness_spread'][0]:.2f} to {c['random']['hubness_spread'][1]:.2f} between draws. With "
        f"{c['tracks']} tracks the standard error of a skewness is about {(6 / c['tracks']) ** 0.5:.2f} and that of "
        f"precision@10 about 0.03, so smaller differences are not meaningful. Each method's paths are smoothest in "
        "its own space, which is why step distances are given in both.",
        "",
        f"![quality]({figs['quality']})" if "quality" in figs else "",
        "",
        report_sections.quality_extras_md(c),
    ]
    if q.get("sweep") and q.get("before"):
        b, a = q["before"], c
        cos = [g for g in q["sweep"] if g["metric"] == "cosine"]
        euc = [g for g in q["sweep"] if g["metric"] == "euclidean"]

        def med(xs: list[dict], k: str) -> float:
            vals = sorted(x[k] for x in xs)
            return vals[len(vals) // 2]

        out += [
            "### Weight tuning",
            "",
            f"`bench/quality.py --tune` evaluates both metrics over {len(euc)} weight settings each "
            "(scalars × mfcc × chroma × embedding). Median over the grid — euclidean: precision@10 "
            f"{med(euc, 'p10'):.3f}, artist-filtered {med(euc, 'p10_artist'):.3f}, hubness {med(euc, 'hubness'):.2f}; "
            f"cosine: {med(cos, 'p10'):.3f}, {med(cos, 'p10_artist'):.3f}, hubness {med(cos, 'hubness'):.2f}. "
            "The metric is what matters; within a metric the weights move precision by about one standard error "
            "(≈ 0.03 over 101 queries).",
            "",
            _table(["defaults", "metric", "weights (scalars, mfcc, chroma, embedding)", "precision@10",
                    "artist filter", "hubness"],
                   [["before", b["metric"], ", ".join(f"{v:g}" for v in b["weights"].values()),
                     f"{b['project']['p10']:.3f}", f"{b['project']['p10_artist']:.3f}",
                     f"{b['project']['hubness']:.2f}"],
                    ["after", a["metric"], ", ".join(f"{v:g}" for v in a["weights"].values()),
                     f"{a['project']['p10']:.3f}", f"{a['project']['p10_artist']:.3f}",
                     f"{a['project']['hubness']:.2f}"]]),
            "",
            f"![tuning]({figs['tuning']})" if "tuning" in figs else "",
            "",
        ]
    return "\n".join(out)


# --- write ------------------------------------------------------------------------------------------

def replace_block(text: str, block: str) -> str:
    pattern = re.compile(re.escape(SUMMARY_START) + r".*?" + re.escape(SUMMARY_END), re.S)
    return pattern.sub(lambda _m: f"{SUMMARY_START}\n{block}\n{SUMMARY_END}", text)


def write(results: dict, doc: Path, assets: Path) -> None:
    assets.mkdir(parents=True, exist_ok=True)
    figs = plots(results, assets)
    doc.write_text(markdown(results, figs), encoding="utf-8")
    readme = doc.parents[1] / "README.md"
    if readme.exists() and SUMMARY_START in readme.read_text(encoding="utf-8"):
        readme.write_text(replace_block(readme.read_text(encoding="utf-8"), summary(results)), encoding="utf-8")


def summary_block(text: str) -> str | None:
    """The summary between the markers in a markdown text (for tests)."""
    m = re.search(re.escape(SUMMARY_START) + r"\n(.*?)\n" + re.escape(SUMMARY_END), text, re.S)
    return m.group(1) if m else None
