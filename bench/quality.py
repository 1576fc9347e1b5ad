"""Playlist quality the way the MIR literature measures it, each figure beside two baselines
computed in the same run: **random** and **MFCC-mean similarity** (Euclidean distance between
z-scored MFCC means, the classic timbre baseline).

Data:

* the dev corpus (../shared/corpus/dev_corpus.sh): ~100 real tracks; the Debian package is the
  source (album) label. Plus *versions*: a few corpus tracks re-encoded 1 dB quieter, tagged
  "… (Remastered)" (or left untagged, for the embedding-based check), as libraries have them;
* generated ground truth (tests/audio_fixtures.py): click tracks at known tempi, chord
  progressions in all 24 keys, "songs" (chords + beat) and the same songs with noise at 10 dB SNR
  encoded to Ogg Vorbis.

Measures:

* tempo Acc1 (within 4 %) and Acc2 (also ×2, ×½); key accuracy exact and Camelot-neighbour
  (same, ±1, relative) — the project's analyzer vs the plain librosa script vs random guesses;
* neighbour precision@10 by source label, with an artist filter (a query's neighbours by the
  same artist are skipped where the artist is known), over the corpus tracks (versions excluded);
* hubness: skewness of the 10-occurrence distribution (how unevenly tracks appear in others'
  10-NN lists; high = a few "hub" tracks in every playlist);
* duplicate rate of 10-track radio playlists: share of entries that are another version of a
  track already in the playlist (seeds: every track with a version, plus random ones);
* `path` playlists (10 tracks, random pairs of tracks from different sources): mean and max
  step distance, in the project's space and in the MFCC-mean space, each divided by the median
  pairwise distance of that space.

The project runs the real code: `playlistgen scan` into a SQLite file, the catalog loader, the
`radio`/`path` strategies with the default diversity rules. The MFCC baseline uses the same
path strategy over an MFCC-mean-only catalog, and plain nearest neighbours for radio.

    .venv/bin/python bench/quality.py [--corpus DIR] [--tune] [--json FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import REPO, cache_dir, corpus_tracks, find_corpus  # noqa: E402

from playlistgen.config import Settings  # noqa: E402
from playlistgen.core.analysis.version import ANALYZER_VERSION  # noqa: E402

K = 10
GT_VERSION = 1
VERSION_TRACKS = 8        # corpus tracks that get a second version in the library
RANDOM_DRAWS = 20         # the random baseline is averaged over this many draws
PATH_PAIRS = 30
BALANCED = 8              # tracks per label in the balanced corpus variant
RADIO_SIZE = 20           # radio lists for the transition measures
# The similarity defaults before tuning (playlists.metric / weight_*), evaluated beside the
# current ones with --tune so the report can show the before/after.
PREVIOUS_DEFAULTS = {"metric": "euclidean",
                     "weights": (("scalars", 1.0), ("mfcc", 1.0), ("chroma", 0.5), ("embedding", 2.0))}
UNKNOWN_ARTISTS = {"", "<unknown>", "unknown", "various artists"}


def _log(*a: object) -> None:
    print(*a, file=sys.stderr, flush=True)


# --- ground truth -------------------------------------------------------------------------------

def ground_truth(folder: Path) -> list[dict]:
    """Generated files with known tempo and/or key (written once into ``folder``)."""
    from tests import audio_fixtures as af

    folder.mkdir(parents=True, exist_ok=True)
    items: list[dict] = []

    def add(name: str, make, bpm: float | None, key: tuple[int, str] | None, sr: int = 44100) -> None:  # type: ignore[no-untyped-def]
        path = folder / name
        if not path.exists():
            tmp = path.with_name("tmp-" + name)
            af.write(tmp, make(), sr)
            tmp.rename(path)
        items.append({"path": str(path), "bpm": bpm, "key": key, "kind": name.split("-")[0]})

    for bpm in (60, 66, 72, 80, 85, 90, 96, 100, 105, 110, 116, 120, 124, 128, 132, 140, 150, 160, 170, 180):
        add(f"click-{bpm}.wav", lambda b=bpm: af.click_track(b, 30.0), bpm, None)
    for tonic in range(12):
        for mode in ("major", "minor"):
            add(f"chords-{tonic}-{mode}.wav", lambda t=tonic, m=mode: af.chord_progression(t, m, 20.0), None,
                (tonic, mode))
    rng = np.random.default_rng(3)
    for j in range(24):
        bpm = float(rng.choice([70, 76, 84, 92, 95, 102, 110, 118, 126, 132, 138, 145, 155, 165]))
        tonic, mode = int(rng.integers(12)), ("major", "minor")[j % 2]
        add(f"song-{j}.wav", lambda b=bpm, t=tonic, m=mode: af.song(30.0, bpm=b, tonic=t, mode=m), bpm,
            (tonic, mode))
        if j < 12:
            def noisy(b=bpm, t=tonic, m=mode, seed=j):  # type: ignore[no-untyped-def]
                clean = af.song(30.0, bpm=b, tonic=t, mode=m)
                power = float(np.mean(clean ** 2))
                noise = np.random.default_rng(seed).standard_normal(clean.shape) * np.sqrt(power / 10.0)
                mix = clean + noise
                return (mix * 0.8 / np.max(np.abs(mix))).astype(np.float32)
            add(f"noisy-{j}.ogg", noisy, bpm, (tonic, mode))
    return items


def _tempo_ok(est: float | None, true: float, factors: tuple[float, ...]) -> bool:
    return bool(est) and any(abs(est - true * f) <= 0.04 * true * f for f in factors)


def _camelot(pc: int, scale: str) -> str:
    from playlistgen.core.music import KEY_NAMES, camelot

    return camelot(KEY_NAMES[pc % 12], scale)


def _key_scores(pairs: list[tuple[tuple[int, str], tuple[int, str] | None]]) -> dict:
    from playlistgen.core.music import camelot_neighbours

    exact = near = 0
    for (pc, scale), est in pairs:
        if est is None:
            continue
        truth, guess = _camelot(pc, scale), _camelot(*est)
        exact += guess == truth
        near += guess in camelot_neighbours(truth)
    n = len(pairs)
    return {"exact": exact / n, "camelot": near / n, "n": n}


def _tempo_scores(pairs: list[tuple[float, float | None]]) -> dict:
    n = len(pairs)
    return {"acc1": sum(_tempo_ok(e, t, (1.0,)) for t, e in pairs) / n,
            "acc2": sum(_tempo_ok(e, t, (1.0, 2.0, 0.5)) for t, e in pairs) / n, "n": n}


def _pc(name: str | None) -> int | None:
    from playlistgen.core.music import pitch_class

    return pitch_class(name) if name else None


def tempo_key_accuracy(models_dir: Path) -> dict:
    folder = cache_dir() / "quality" / f"gt-v{GT_VERSION}"
    items = ground_truth(folder)
    results_file = folder / f"results-{ANALYZER_VERSION}.json"
    if results_file.exists():
        ours = json.loads(results_file.read_text())
    else:
        _log(f"quality: analysing {len(items)} ground-truth files (project analyzer, preset balanced)")
        code = ("import json, sys\nfrom pathlib import Path\n"
                "from playlistgen.core.analysis.factory import create_analyzer\n"
                "a = create_analyzer('essentia', 'balanced', Path(sys.argv[1]))\n"
                "out = {}\nfor p in sys.argv[2:]:\n    r = a.analyze(p)\n"
                "    out[p] = {'bpm': r.bpm, 'key': r.key, 'scale': r.scale}\nprint(json.dumps(out))\n")
        proc = subprocess.run([sys.executable, "-c", code, str(models_dir), *[i["path"] for i in items]],
                              capture_output=True, text=True, cwd=REPO, check=True)
        ours = json.loads(proc.stdout.strip().splitlines()[-1])
        results_file.write_text(json.dumps(ours))
    librosa_file = folder / "librosa.json"
    if librosa_file.exists():
        theirs = json.loads(librosa_file.read_text())
    else:
        _log("quality: the plain librosa script on the ground truth")
        proc = subprocess.run([sys.executable, str(Path(__file__).parent / "librosa_features.py"),
                               *[i["path"] for i in items]], capture_output=True, text=True, check=True,
                              env=dict(os.environ, OMP_NUM_THREADS="1"))
        theirs = {}
        for line in proc.stdout.splitlines():
            r = json.loads(line)
            theirs[r["path"]] = {"bpm": r["bpm"], "key": r["key"], "scale": r["scale"]}
        librosa_file.write_text(json.dumps(theirs))
    tempo_items = [i for i in items if i["bpm"]]
    key_items = [i for i in items if i["key"]]

    def est_key(r: dict) -> tuple[int, str] | None:
        pc = _pc(r["key"])
        return (pc, r["scale"]) if pc is not None and r["scale"] in ("major", "minor") else None

    out: dict = {"files": len(items), "tempo_files": len(tempo_items), "key_files": len(key_items), "methods": {}}
    for name, res in (("project", ours), ("librosa", theirs)):
        out["methods"][name] = {
            "tempo": _tempo_scores([(i["bpm"], res[i["path"]]["bpm"]) for i in tempo_items]),
            "key": _key_scores([(tuple(i["key"]), est_key(res[i["path"]])) for i in key_items]),
            "by_kind": {kind: _tempo_scores([(i["bpm"], res[i["path"]]["bpm"]) for i in tempo_items
                                             if i["kind"] == kind]) for kind in ("click", "song", "noisy")},
        }
    rng = np.random.default_rng(11)
    tempo_r, key_r = [], []
    for _ in range(RANDOM_DRAWS):  # random guesses: log-uniform 60–200 bpm, uniform over the 24 keys
        tempo_r.append(_tempo_scores([(i["bpm"], float(np.exp(rng.uniform(np.log(60), np.log(200)))))
                                      for i in tempo_items]))
        key_r.append(_key_scores([(tuple(i["key"]), (int(rng.integers(12)), ("major", "minor")[rng.integers(2)]))
                                  for i in key_items]))
    out["methods"]["random"] = {
        "tempo": {k: float(np.mean([t[k] for t in tempo_r])) for k in ("acc1", "acc2", "n")},
        "key": {k: float(np.mean([t[k] for t in key_r])) for k in ("exact", "camelot", "n")}}
    return out


# --- the corpus library -------------------------------------------------------------------------

def make_versions(corpus: Path, folder: Path) -> dict[str, str]:
    """Second versions of a few corpus tracks: {version path: original path}."""
    import mutagen
    import soundfile as sf

    tracks = corpus_tracks(corpus)
    by_label: dict[str, list[str]] = {}
    for t in tracks:
        by_label.setdefault(t.label, []).append(t.path)
    chosen: list[str] = []
    for i in itertools.count():
        for label in sorted(by_label):
            paths = sorted(by_label[label])
            if i < len(paths) and len(chosen) < VERSION_TRACKS:
                chosen.append(paths[(i * 5) % len(paths)])
        if len(chosen) >= VERSION_TRACKS or i > 50:
            break
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for n, src in enumerate(chosen):
        dest = folder / f"version{n}-{Path(src).name}"
        out[str(dest)] = src
        if dest.exists():
            continue
        audio, sr = sf.read(src, dtype="float32", always_2d=True)
        tmp = dest.with_name("tmp-" + dest.name)
        with sf.SoundFile(str(tmp), "w", sr, audio.shape[1], format="OGG", subtype="VORBIS") as f:
            for start in range(0, len(audio), 65536):
                f.write(np.ascontiguousarray(audio[start:start + 65536] * 10 ** (-1 / 20)))
        tags = mutagen.File(src).tags or {}
        if n % 2 == 0 and tags.get("title"):  # tagged as a remaster of the same song
            version = mutagen.File(tmp)
            for key in ("artist", "album", "title"):
                if tags.get(key):
                    version[key] = list(tags[key])
            version["title"] = [f"{tags['title'][0]} (Remastered 2011)"]
            version.save()
        tmp.rename(dest)
    return out


def library_db(corpus: Path, models_dir: Path, ml_runtime: str = "auto") -> tuple[Path, dict[str, str]]:
    """The corpus + versions analysed by `playlistgen scan` (preset balanced, MusiCNN on
    ``ml_runtime``) into a cached file."""
    folder = cache_dir() / "quality"
    versions = make_versions(corpus, folder / "versions")
    if ml_runtime == "auto":   # key the cache by the runtime auto resolves to: one scan per runtime
        from playlistgen.core.analysis.factory import resolved_ml_runtime

        settings = Settings()
        settings.analysis.preset, settings.analysis.models_dir = "balanced", str(models_dir)
        ml_runtime = resolved_ml_runtime(settings) or "auto"
    manifest = (corpus / "manifest.tsv").read_bytes()
    key = hashlib.sha256(manifest + ANALYZER_VERSION.encode() + json.dumps(sorted(versions)).encode()
                         + (b"" if ml_runtime == "auto" else ml_runtime.encode())).hexdigest()[:12]
    db = folder / f"library-{key}.db"
    if not db.exists():
        _log(f"quality: analysing the corpus and {len(versions)} versions with `playlistgen scan` (once) …")
        tmp = db.with_name("tmp-" + db.name)
        for p in tmp.parent.glob(tmp.name + "*"):
            p.unlink()
        env = dict(os.environ, PLAYLISTGEN_ANALYSIS__MODELS_DIR=str(models_dir), PLAYLISTGEN_LOGGING__LEVEL="WARNING",
                   PLAYLISTGEN_ANALYSIS__ML_RUNTIME=ml_runtime)
        subprocess.run([sys.executable, "-m", "playlistgen", "scan", str(corpus), str(folder / "versions"),
                        "--db", str(tmp), "--preset", "balanced"], cwd=folder, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        from playlistgen.core.storage.db import Database

        Database(tmp).close()  # checkpoint the WAL into the file
        tmp.rename(db)
    return db, versions


class Library:
    """The analysed corpus: the project's catalog for given weights, labels, identities."""

    def __init__(self, db_path: Path, corpus: Path, versions: dict[str, str]) -> None:
        from playlistgen.core.storage.db import Database

        self.db = Database(db_path, pool_min=1, pool_max=2)
        labels = {t.path: t.label for t in corpus_tracks(corpus)}
        rows = self.db.query("SELECT t.id, fl.path, t.artist, f.mfcc_mean FROM tracks t "
                             "JOIN files fl ON fl.track_id = t.id AND fl.status = 'done' "
                             "JOIN features f ON f.id = (SELECT max(id) FROM features WHERE track_id = t.id) "
                             "ORDER BY t.id")
        self.path_of = {r[0]: r[1] for r in rows}
        self.origin = {tid: versions.get(p, p) for tid, p in self.path_of.items()}
        self.label_of = {tid: labels.get(o) for tid, o in self.origin.items()}
        self.mfcc_mean = {r[0]: np.frombuffer(r[3], dtype="<f4") for r in rows}

    def catalog(self, weights: dict[str, float], metric: str = "euclidean"):  # type: ignore[no-untyped-def]
        from playlistgen.core.playlists.features import load_catalog

        return load_catalog(self.db, ("quality", tuple(sorted(weights.items())), metric), weights, metric)

    def close(self) -> None:
        self.db.close()


def mfcc_catalog(cat, lib: Library):  # type: ignore[no-untyped-def]
    """The same tracks in the MFCC-mean space only (z-scored 13-d MFCC means)."""
    from playlistgen.core.playlists.catalog import SCALARS, build_catalog

    n = cat.size
    ids = cat.track_ids
    mfcc = np.stack([lib.mfcc_mean[int(t)] for t in ids]).astype(np.float32)
    nan = np.full(n, np.nan, dtype=np.float32)
    artists = [cat.artist_names[a] if a >= 0 else None for a in cat.artist]
    meta = {"artist": artists, "album": [None] * n, "title": [None] * n, "genre": [None] * n, "year": [None] * n,
            "track_number": [None] * n, "duration_s": [float(x) for x in cat.num["duration_s"]]}
    return build_catalog(key=("mfcc",), track_ids=ids, meta=meta, scalars={s: nan for s in SCALARS},
                         vectors={"mfcc": (mfcc, np.ones(n, bool)),
                                  "chroma": (np.zeros((n, 12), np.float32), np.zeros(n, bool)),
                                  "embedding": (np.zeros((n, 200), np.float32), np.zeros(n, bool))},
                         keys={"key": [None] * n, "scale": [None] * n, "camelot": [None] * n},
                         tags=np.zeros((n, 0), np.float32), tag_labels=[],
                         weights={"scalars": 0.0, "mfcc": 1.0, "chroma": 0.0, "embedding": 0.0})


# --- neighbour measures ---------------------------------------------------------------------------

def all_distances(cat) -> np.ndarray:  # type: ignore[no-untyped-def]
    from playlistgen.core.playlists.index import distances

    return distances(cat, cat.X, cat.present).astype(np.float64)


def _artist_keys(cat) -> np.ndarray:  # type: ignore[no-untyped-def]
    keys = np.array(cat.artist, dtype=np.int64)
    for code, name in enumerate(cat.artist_names):
        if name.strip().casefold() in UNKNOWN_ARTISTS:
            keys[keys == code] = -1
    return keys


def knn_lists(D: np.ndarray, rows: np.ndarray, artists: np.ndarray, artist_filter: bool) -> list[np.ndarray]:
    """k nearest among ``rows`` for each of ``rows`` (itself excluded; same artist excluded)."""
    out = []
    for q in rows:
        d = D[q, rows].copy()
        d[rows == q] = np.inf
        if artist_filter and artists[q] >= 0:
            d[artists[rows] == artists[q]] = np.inf
        order = np.argsort(d, kind="stable")[:K]
        out.append(rows[order[np.isfinite(d[order])]])
    return out


def precision(lists: list[np.ndarray], rows: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean([np.mean(labels[lst] == labels[q]) if len(lst) else 0.0 for q, lst in zip(rows, lists,
                                                                                                     strict=True)]))


def hubness(lists: list[np.ndarray], rows: np.ndarray, n: int) -> float:
    from scipy.stats import skew

    counts = np.zeros(n)
    for lst in lists:
        counts[lst] += 1
    return float(skew(counts[rows]))


def random_lists(rng: np.random.Generator, rows: np.ndarray, artists: np.ndarray,
                 artist_filter: bool) -> list[np.ndarray]:
    out = []
    for q in rows:
        ok = rows[(rows != q) & ~(artist_filter & (artists[q] >= 0) & (artists[rows] == artists[q]))]
        out.append(rng.choice(ok, size=min(K, len(ok)), replace=False))
    return out


def neighbour_scores(D: np.ndarray, rows: np.ndarray, labels: np.ndarray, artists: np.ndarray, n: int) -> dict:
    out = {}
    for filt in (False, True):
        lists = knn_lists(D, rows, artists, filt)
        out["p10_artist" if filt else "p10"] = precision(lists, rows, labels)
        if not filt:
            out["hubness"] = hubness(lists, rows, n)
    return out


def random_scores(rows: np.ndarray, labels: np.ndarray, artists: np.ndarray, n: int) -> dict:
    rng = np.random.default_rng(5)
    p, pa, h = [], [], []
    for _ in range(RANDOM_DRAWS):
        lists = random_lists(rng, rows, artists, False)
        p.append(precision(lists, rows, labels))
        h.append(hubness(lists, rows, n))
        pa.append(precision(random_lists(rng, rows, artists, True), rows, labels))
    return {"p10": float(np.mean(p)), "p10_artist": float(np.mean(pa)), "hubness": float(np.mean(h)),
            "hubness_spread": [float(min(h)), float(max(h))]}


def per_label(D: np.ndarray, rows: np.ndarray, labels: np.ndarray, artists: np.ndarray) -> dict:
    """Neighbour precision@10 of each source label's queries (artist filter off / on)."""
    out = {}
    lists = {filt: knn_lists(D, rows, artists, filt) for filt in (False, True)}
    for label in sorted(set(labels[rows])):
        mine = [i for i, q in enumerate(rows) if labels[q] == label]
        sel = rows[mine]
        out[str(label)] = {"tracks": len(mine),
                           "p10": precision([lists[False][i] for i in mine], sel, labels),
                           "p10_artist": precision([lists[True][i] for i in mine], sel, labels)}
    return out


def corpus_variants(D: np.ndarray, rows: np.ndarray, labels: np.ndarray, artists: np.ndarray, n: int) -> dict:
    """The same measures on variants of the corpus that one dominant label cannot carry:
    ``balanced`` (at most BALANCED tracks per label, mean of 10 draws) and ``without_<label>``
    (the largest label left out). Neighbours are searched inside the variant."""
    values, counts = np.unique(labels[rows], return_counts=True)
    dominant = str(values[np.argmax(counts)])
    rng = np.random.default_rng(13)
    draws = []
    for _ in range(10):
        keep = np.concatenate([rng.permutation(rows[labels[rows] == v])[:BALANCED] for v in values])
        draws.append(neighbour_scores(D, np.sort(keep), labels, artists, n))
    balanced = {k: float(np.mean([d[k] for d in draws])) for k in draws[0]}
    balanced["tracks"] = int(sum(min(c, BALANCED) for c in counts))
    without = np.sort(rows[labels[rows] != dominant])
    rest = {**neighbour_scores(D, without, labels, artists, n), "tracks": int(len(without))}
    return {"dominant": dominant, "dominant_share": round(float(counts.max() / counts.sum()), 3),
            f"balanced_{BALANCED}": balanced, f"without_{dominant}": rest,
            "random_balanced": random_scores(np.sort(np.concatenate(
                [rows[labels[rows] == v][:BALANCED] for v in values])), labels, artists, n)}


def transition_measures(cat, lists: list[list[int]]) -> dict:  # type: ignore[no-untyped-def]
    """Mean and worst, over consecutive tracks of every list: Camelot distance (steps on the
    wheel, letter change +1), tempo jump in % (half/double time folded), LUFS step, and the
    project's transition cost (playlists.transition_weights)."""
    from playlistgen.core.music import camelot_distance, tempo_ratio_distance
    from playlistgen.core.playlists.transitions import catalog_features, pair_costs

    cam, jump, lufs, cost = [], [], [], []
    for rows in lists:
        r = np.asarray(rows, dtype=np.int64)
        a, b = r[:-1], r[1:]
        cam.append(np.asarray(camelot_distance(cat.camelot[a].astype(int), cat.camelot[b].astype(int)), float))
        jump.append((2 ** np.asarray(tempo_ratio_distance(cat.num["bpm"][a], cat.num["bpm"][b]), float) - 1) * 100)
        lufs.append(np.abs(cat.num["loudness_lufs"][a] - cat.num["loudness_lufs"][b]).astype(float))
        cost.append(pair_costs(catalog_features(cat, r), np.arange(len(r) - 1), np.arange(1, len(r)),
                               Settings().playlists.transition_weights))

    def stat(parts: list[np.ndarray]) -> dict:
        allv = np.concatenate(parts)
        worst = [float(np.nanmax(p)) for p in parts if np.isfinite(p).any()]
        return {"mean": round(float(np.nanmean(allv)), 3), "worst_per_list": round(float(np.mean(worst)), 3)}

    return {"camelot": stat(cam), "tempo_jump_pct": stat(jump), "lufs_step": stat(lufs), "cost": stat(cost)}


def transition_report(cat, rows: np.ndarray, labels: np.ndarray, rules, seeds: list[int]) -> dict:  # type: ignore[no-untyped-def]
    """Radio lists (RADIO_SIZE tracks) in closeness order, after `order: smooth` and
    `energy_arc`, and two baselines over the same members: random order and a plain sort by BPM
    (seed first in all of them). Membership is the same, so label precision must be too."""
    from playlistgen.core.playlists.registry import run

    rng = np.random.default_rng(17)
    lists: dict[str, list[list[int]]] = {"closeness (as_is)": [], "smooth": [], "energy_arc": [],
                                         "random order": [], "sort by BPM": []}
    same = True
    for seed in seeds:
        base = run(cat, "radio", seeds=[seed], size=RADIO_SIZE, rules=rules, order="as_is").picker.rows
        smooth = run(cat, "radio", seeds=[seed], size=RADIO_SIZE, rules=rules, order="smooth").picker.rows
        arc = run(cat, "radio", seeds=[seed], size=RADIO_SIZE, rules=rules, order="energy_arc").picker.rows
        same &= set(base) == set(smooth) == set(arc) and smooth[0] == seed
        rest = np.array(base[1:])
        bpm = cat.num["bpm"][rest]
        lists["closeness (as_is)"].append(base)
        lists["smooth"].append(smooth)
        lists["energy_arc"].append(arc)
        lists["random order"].append([seed, *rng.permutation(rest).tolist()])
        lists["sort by BPM"].append([seed, *rest[np.argsort(np.where(np.isfinite(bpm), bpm, np.inf))].tolist()])
    label_precision = {m: float(np.mean([np.mean(labels[np.array(x[1:])] == labels[x[0]]) for x in ls]))
                       for m, ls in lists.items()}
    return {"lists": len(seeds), "size": RADIO_SIZE, "same_members": bool(same),
            "label_precision": label_precision,
            "measures": {m: transition_measures(cat, ls) for m, ls in lists.items()}}


# --- playlists --------------------------------------------------------------------------------------

def duplicate_rate(playlists: list[list[int]], identity: dict[int, str]) -> dict:
    entries = dups = with_dup = 0
    for rows in playlists:
        seen: set[str] = set()
        had = False
        for r in rows:
            entries += 1
            if identity[r] in seen:
                dups += 1
                had = True
            seen.add(identity[r])
        with_dup += had
    return {"rate": dups / max(entries, 1), "playlists_with_duplicate": with_dup / max(len(playlists), 1),
            "playlists": len(playlists)}


def path_steps(paths: list[list[int]], D: np.ndarray, scale: float) -> dict:
    means = [float(np.mean([D[a, b] for a, b in itertools.pairwise(p)])) / scale for p in paths if len(p) > 1]
    maxes = [float(np.max([D[a, b] for a, b in itertools.pairwise(p)])) / scale for p in paths if len(p) > 1]
    return {"mean_step": float(np.mean(means)), "max_step": float(np.mean(maxes)), "paths": len(means)}


def project_scores(lib: Library, weights: dict[str, float], metric: str) -> dict:
    """Only the project's neighbour measures (what the weight sweep needs)."""
    cat = lib.catalog(weights, metric)
    ids = [int(t) for t in cat.track_ids]
    labels = np.array([lib.label_of[t] or "?" for t in ids])
    rows = np.flatnonzero([lib.origin[t] == lib.path_of[t] for t in ids])
    return neighbour_scores(all_distances(cat), rows, labels, _artist_keys(cat), cat.size)


def evaluate_space(lib: Library, weights: dict[str, float], metric: str, with_playlists: bool = True) -> dict:
    """Every corpus measure for the project (with ``weights``) and the two baselines."""
    from playlistgen.core.playlists.diversity import Diversity
    from playlistgen.core.playlists.registry import run

    cat = lib.catalog(weights, metric)
    base = mfcc_catalog(cat, lib)
    n = cat.size
    ids = [int(t) for t in cat.track_ids]
    identity = {r: lib.origin[t] for r, t in enumerate(ids)}
    labels = np.array([lib.label_of[t] or "?" for t in ids])
    original = np.array([lib.origin[t] == lib.path_of[t] for t in ids])
    rows = np.flatnonzero(original)
    artists = _artist_keys(cat)
    D, Dm = all_distances(cat), all_distances(base)
    out = {"tracks": int(len(rows)), "versions": int(n - len(rows)), "weights": weights, "metric": metric,
           "labels": {str(k): int(v) for k, v in zip(*np.unique(labels[rows], return_counts=True), strict=True)},
           "artists_known": int((artists[rows] >= 0).sum()),
           "project": neighbour_scores(D, rows, labels, artists, n),
           "mfcc": neighbour_scores(Dm, rows, labels, artists, n),
           "random": random_scores(rows, labels, artists, n)}
    if not with_playlists:
        return out
    out["per_label"] = {"project": per_label(D, rows, labels, artists), "mfcc": per_label(Dm, rows, labels, artists)}
    out["variants"] = {"project": corpus_variants(D, rows, labels, artists, n),
                       "mfcc": corpus_variants(Dm, rows, labels, artists, n)}
    rng = np.random.default_rng(9)
    has_version = [r for r in rows if any(identity[v] == identity[r] for v in range(n) if v != r)]
    seeds = list(has_version) + [int(x) for x in rng.choice(rows, 24, replace=False)]
    s = Settings().playlists
    rules = Diversity(s.artist_gap, s.album_gap, s.max_per_artist, s.dedupe)
    radio = {"project": [], "mfcc": [], "random": []}
    for seed in seeds:
        radio["project"].append(run(cat, "radio", seeds=[int(seed)], size=K, rules=rules).picker.rows)
        d = Dm[seed].copy()
        d[seed] = np.inf
        radio["mfcc"].append([int(seed), *np.argsort(d, kind="stable")[:K - 1].tolist()])
        others = np.array([r for r in range(n) if r != seed])
        radio["random"].append([int(seed), *rng.choice(others, K - 1, replace=False).tolist()])
    out["duplicates"] = {m: duplicate_rate(p, identity) for m, p in radio.items()}
    out["transitions"] = transition_report(cat, rows, labels, rules, [int(x) for x in rows])
    out["duplicates"]["seeds_with_version"] = len(has_version)
    pairs = []
    while len(pairs) < PATH_PAIRS:
        a, b = (int(x) for x in rng.choice(rows, 2, replace=False))
        if labels[a] != labels[b] and (a, b) not in pairs:
            pairs.append((a, b))
    paths = {"project": [run(cat, "path", seeds=[a, b], size=K, rules=rules).picker.rows for a, b in pairs],
             "mfcc": [run(base, "path", seeds=[a, b], size=K, rules=rules).picker.rows for a, b in pairs],
             "random": [[a, *rng.choice([r for r in rows if r not in (a, b)], K - 2, replace=False).tolist(), b]
                        for a, b in pairs]}
    upper = np.triu_indices(len(rows), 1)
    scale = float(np.median(D[np.ix_(rows, rows)][upper]))
    scale_m = float(np.median(Dm[np.ix_(rows, rows)][upper]))
    out["paths"] = {m: {"project_space": path_steps(p, D, scale), "mfcc_space": path_steps(p, Dm, scale_m)}
                    for m, p in paths.items()}
    out["paths"]["pairs"] = len(pairs)
    return out


def current_weights() -> dict[str, float]:
    p = Settings().playlists
    return {"scalars": p.weight_scalars, "mfcc": p.weight_mfcc, "chroma": p.weight_chroma,
            "embedding": p.weight_embedding}


SWEEP = {"scalars": (0.0, 0.25, 0.5, 1.0), "mfcc": (0.25, 0.5, 1.0), "chroma": (0.0, 0.5, 1.0),
         "embedding": (0.5, 1.0, 2.0, 3.0)}


def sweep(lib: Library) -> list[dict]:
    """Neighbour precision and hubness over both metrics × a grid of group weights (the tuning
    evidence): 2 × 144 settings."""
    grid = []
    for metric in ("euclidean", "cosine"):
        for values in itertools.product(*SWEEP.values()):
            weights = dict(zip(SWEEP, values, strict=True))
            grid.append({"metric": metric, "weights": weights, **project_scores(lib, weights, metric)})
    return grid


def space_settings() -> tuple[dict[str, float], str]:
    p = Settings().playlists
    return current_weights(), p.metric


def evaluate(corpus: Path, models_dir: Path, tune: bool = False, log=_log,  # type: ignore[no-untyped-def]
             ml_runtime: str = "auto") -> dict:
    gt = tempo_key_accuracy(models_dir)
    db, versions = library_db(corpus, models_dir, ml_runtime)
    lib = Library(db, corpus, versions)
    try:
        weights, metric = space_settings()
        out = {"ground_truth": gt, "corpus": evaluate_space(lib, weights, metric)}
        if tune:
            out["sweep"] = sweep(lib)
            out["before"] = evaluate_space(lib, dict(PREVIOUS_DEFAULTS["weights"]), PREVIOUS_DEFAULTS["metric"])
    finally:
        lib.close()
    return out


def print_extras(c: dict) -> None:
    """Per-label precision, corpus variants and transition measures."""
    for label, v in c["per_label"]["project"].items():
        m = c["per_label"]["mfcc"][label]
        print(f"  label {label:22s} {v['tracks']:3d} tracks  P@10 {v['p10']:.3f} (MFCC {m['p10']:.3f})  "
              f"artist-filtered {v['p10_artist']:.3f} (MFCC {m['p10_artist']:.3f})")
    for name, var in c["variants"]["project"].items():
        if isinstance(var, dict):
            m = c["variants"]["mfcc"].get(name, {})
            print(f"  variant {name:28s} P@10 {var['p10']:.3f} (MFCC {m.get('p10', float('nan')):.3f})  "
                  f"hubness {var['hubness']:.2f} (MFCC {m.get('hubness', float('nan')):.2f})")
    t = c["transitions"]
    print(f"  radio transitions ({t['lists']} lists of {t['size']}; same members in every order: {t['same_members']})")
    for name, m in t["measures"].items():
        print(f"    {name:18s} Camelot {m['camelot']['mean']:.2f}/{m['camelot']['worst_per_list']:.2f}  "
              f"tempo jump {m['tempo_jump_pct']['mean']:.1f}%/{m['tempo_jump_pct']['worst_per_list']:.1f}%  "
              f"LUFS step {m['lufs_step']['mean']:.2f}/{m['lufs_step']['worst_per_list']:.2f}  "
              f"cost {m['cost']['mean']:.3f}/{m['cost']['worst_per_list']:.3f}  "
              f"label precision {t['label_precision'][name]:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus")
    parser.add_argument("--models-dir", default=str(REPO / "models"))
    parser.add_argument("--tune", action="store_true", help="also sweep the similarity weights")
    parser.add_argument("--json", help="write the full result here")
    parser.add_argument("--ml-runtime", default="auto", choices=("auto", "onnx", "essentia"),
                        help="MusiCNN runtime of the corpus scan (analysis.ml_runtime)")
    args = parser.parse_args()
    result = evaluate(find_corpus(args.corpus), Path(args.models_dir), args.tune, ml_runtime=args.ml_runtime)
    gt, c = result["ground_truth"], result["corpus"]
    for name, m in gt["methods"].items():
        print(f"{name:8s} tempo Acc1 {m['tempo']['acc1']:.1%} Acc2 {m['tempo']['acc2']:.1%}   "
              f"key exact {m['key']['exact']:.1%} Camelot-neighbour {m['key']['camelot']:.1%}")
    print(f"corpus: {c['tracks']} tracks, {c['versions']} versions, labels {c['labels']}, "
          f"metric {c['metric']}, weights {c['weights']}")
    for name in ("project", "mfcc", "random"):
        d, p = c["duplicates"][name], c["paths"][name]
        print(f"{name:8s} P@10 {c[name]['p10']:.3f}  P@10 artist-filtered {c[name]['p10_artist']:.3f}  "
              f"hubness {c[name]['hubness']:.2f}  radio duplicates {d['rate']:.1%}  "
              f"path step mean/max {p['project_space']['mean_step']:.2f}/{p['project_space']['max_step']:.2f} "
              f"(MFCC space {p['mfcc_space']['mean_step']:.2f}/{p['mfcc_space']['max_step']:.2f})")
    print_extras(c)
    for g in sorted(result.get("sweep", []), key=lambda g: (-g["p10_artist"], g["hubness"]))[:15]:
        print(f"  {g['metric']:9s} {g['weights']}  P@10 {g['p10']:.3f}  artist-filtered {g['p10_artist']:.3f}  "
              f"hubness {g['hubness']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
