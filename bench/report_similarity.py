"""The "Similarity representations" section of docs/benchmarks.md (bench/similarity.py and
bench/similarity_weights.py, issue 22)."""

from __future__ import annotations

from report_format import _foreign, _table

SHOWN = ("msd mean /3", "msd mean /1", "msd + LDA /3", "msd‖mtt mean /3", "msd‖mtt + LDA /3",
         "msd + LDA /3, z-scored", "MFCC mean", "random")
LABELS = {"msd mean /3": "MSD mean, every 3rd patch (**today**)", "msd mean /1": "MSD mean, every patch",
          "msd + LDA /3": "MSD + library LDA", "msd‖mtt mean /3": "MSD‖MTT mean",
          "msd‖mtt + LDA /3": "MSD‖MTT + library LDA", "msd + LDA /3, z-scored": "MSD + LDA, z-scored per dim",
          "MFCC mean": "MFCC mean (baseline)", "random": "random"}


def _delta(v: dict | None) -> str:
    if not v:
        return "–"
    return f"{v['diff']:+.3f} [{v['lo']:+.3f}, {v['hi']:+.3f}]"


def _variant_table(rows: dict) -> str:
    body = []
    for name in SHOWN:
        r = rows.get(name)
        if r is None:
            continue
        v = r.get("vs_today", {})
        body.append([LABELS[name], f"{r['p10']:.3f}", f"{r['p10_artist']:.3f}", f"{r['hubness']:.2f}",
                     f"{r['max_n10']:.0f}", _delta(v.get("p10")), _delta(v.get("p10_artist"))])
    return _table(["representation", "P@10", "artist-filtered", "hubness", "max N10", "Δ P@10 [95 %]",
                   "Δ artist-filtered [95 %]"], body)


def similarity_md(sec: dict, figs: dict) -> str:
    a = sec["artists"]
    parts = [
        "## Similarity representations",
        "",
        f"`bench/similarity.py` (its docstring defines every representation and variant): {sec['tracks']} corpus "
        f"tracks, sources {', '.join(f'{k} {v}' for k, v in sec['labels'].items())}. Vectors from the project's "
        "own patch embeddings (same decoder, mel and patching as the analyzer, ONNX MusiCNN), compared by cosine; "
        f"the library projection is `core/similarity/lda` fitted on the tracks' own patch spreads "
        f"(shrinkage {sec['shrinkage']:g}, {sec['spread_rows']['msd']} rows per track for MSD, "
        f"{sec['spread_rows']['msd+mtt']} for MSD‖MTT). Artist filter: {a['tagged']} tracks have an artist tag, "
        f"{a['from_file_name']} get the composer from the file name (`bench/similarity_artists.py`). Δ is against "
        "today's vector with a paired bootstrap 95 % interval over the queries (`bench/similarity_stats.py`). "
        "With ~100 tracks from 5 sources, one of them 63 % of the corpus, the intervals are wide and say whether "
        "a difference is noise of *these* queries, not whether it carries to another library."
        + _foreign(sec),
        "",
        "**Full corpus** (projection fitted on all tracks, as a library fits on its own):",
        "",
        _variant_table(sec["variants"]["full"]),
        "",
        f"**Balanced** (each source capped at {sec['balanced_cap']} tracks, {sec['draws']} draws, fitted on the "
        "draw; per-track means over the draws):",
        "",
        _variant_table(sec["variants"]["balanced"]),
        "",
        "**Held-out sources** (every set of 2 or 3 sources held out, the projection fitted on the others, the "
        "held-out tracks searched among themselves — what a projection that never heard the music faces):",
        "",
        _variant_table(sec["variants"]["held-out sources"]),
        "",
    ]
    sweep = sec.get("sweep", {}).get("full", {})
    if sweep:
        parts += ["Shrinkage and output dimensions (full corpus; Δ artist-filtered against today):", "",
                  _table(["projection", "P@10", "artist-filtered", "hubness", "Δ artist-filtered [95 %]"],
                         [[n, f"{r['p10']:.3f}", f"{r['p10_artist']:.3f}", f"{r['hubness']:.2f}",
                           _delta(r["vs_today"]["p10_artist"])] for n, r in sweep.items()]), ""]
    api = sec.get("api")
    if api:
        from similarity_api import table

        parts += [
            "### Through the API (the default preset, the daemon's answer)",
            "",
            f"`bench/similarity_api.py`: a real `playlistgen serve` over the corpus analysed at preset balanced "
            f"(MSD + MTT), asked `GET /api/v1/tracks/<id>/similar?count=10` for each of its {api['tracks']} tracks "
            "(the full weighted distance of every group, default weights); artist-filtered = the first 10 answers "
            f"by another artist ({api['artists']['artists']} artists). *raw*: `similarity.projection: off`; *auto*: "
            "the default, the library's own fit; *shipped*: `similarity.min_tracks` above the library's size. "
            "The shipped projection was fitted on this same corpus, so *shipped* equals *auto* here by "
            "construction; the held-out-sources rows above are what a projection fitted on other music gives.",
            "",
            table(api),
            "",
        ]
    w = sec.get("weights")
    if w:
        rows = []
        for name, e in w["embeddings"].items():
            rows.append([name, f"{e['current_weights']['p10_artist']:.3f}",
                         ", ".join(f"{k} {v:g}" for k, v in e["pick"].items()),
                         f"{e['pick_scores']['p10_artist']:.3f}",
                         ", ".join(f"{k} {v:g}" for k, v in e["best_cell"].items()),
                         f"{e['best_cell_scores']['p10_artist']:.3f}", _delta(e["pick_vs_today"]["p10_artist"])])
        axes = "; ".join(f"{k} {', '.join(f'{x:g}' for x in v)}" for k, v in w["grid_axes"].items())
        parts += [
            "### Group weights with the projected embedding",
            "",
            f"`bench/similarity_weights.py`: the daemon's catalog (`build_catalog`, `index.distances`, cosine) on the "
            f"scanned corpus with the embedding group replaced; grid {axes}; embedding {w['embedding_weight']:g}. "
            "Criterion: artist-filtered P@10. *Robust pick* = best mean over the cell and its grid neighbours. "
            f"Today's defaults ({', '.join(f'{k} {v:g}' for k, v in w['current_weights'].items())}) with "
            f"today's embedding: artist-filtered {w['today']['p10_artist']:.3f}.",
            "",
            _table(["embedding group", "today's weights", "robust pick", "its artist-filtered", "best cell",
                    "its artist-filtered", "pick vs today [95 %]"], rows),
            "",
        ]
    return "\n".join(parts)
