"""Per-patch MusiCNN embeddings of every corpus track, computed once with the project's own code
and cached: the representation bench (bench/similarity.py) builds every track vector from them.

Each track is decoded by the project's streaming decoder (core/audio/decode.open_audio) to 16 kHz
mono, turned into the analyzer's log-mel rows (core/analysis/mel.MusicnnMel, its framer primed as
the analyzer does) and cut into non-overlapping 187-frame patches — every patch, i.e. stride 1;
``patches[::3]`` are exactly the patches preset ``balanced`` analyses (patch_index % 3 == 0). A
track shorter than one patch repeats its frames into one patch, as the analyzer does. The MSD and
MTT models run on ONNX Runtime (core/analysis/onnx_musicnn, one thread). The cache holds, per
track, ``msd`` and ``mtt`` [patches, 200] float32 in one .npz keyed by path, size and the
analyzer version.

    .venv/bin/python bench/similarity_embed.py [--corpus DIR]     # fills the cache, prints progress
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import REPO, cache_dir, corpus_tracks, find_corpus  # noqa: E402

EMBED_VERSION = 1
MODELS = ("msd_musicnn", "mtt_musicnn")


def embed_folder() -> Path:
    from playlistgen.core.analysis.version import ANALYZER_VERSION

    folder = cache_dir() / "similarity" / f"patches-v{EMBED_VERSION}-{ANALYZER_VERSION}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def cache_file(path: str) -> Path:
    p = Path(path)
    key = hashlib.sha256(f"{p.resolve()}\x1f{p.stat().st_size}".encode()).hexdigest()[:16]
    return embed_folder() / f"{p.stem[:40]}-{key}.npz"


def load_models(models_dir: Path) -> list:  # type: ignore[type-arg]
    from playlistgen.core.analysis.models import require_model
    from playlistgen.core.analysis.onnx_musicnn import OnnxMusicnn

    return [OnnxMusicnn(require_model(models_dir, name, "onnx")) for name in MODELS]


def mel_patches(path: str) -> np.ndarray:
    """Every non-overlapping 187-frame log-mel patch of the file [p, 187, 96] (float32)."""
    from playlistgen.core.analysis.mel import MUSICNN_BANDS, MUSICNN_RATE, MusicnnMel
    from playlistgen.core.analysis.presets import MUSICNN_PATCH_FRAMES
    from playlistgen.core.audio.decode import open_audio

    mel = MusicnnMel()
    framer = mel.framer()
    rows = []
    with open_audio(path, rates=(MUSICNN_RATE,)) as audio:
        for chunk in audio:
            rows.append(mel(framer.push(chunk.mono[MUSICNN_RATE])))
    rows.append(mel(framer.flush()))
    frames = np.concatenate(rows) if rows else np.zeros((0, MUSICNN_BANDS), np.float32)
    count = len(frames) // MUSICNN_PATCH_FRAMES
    if count == 0:   # shorter than a patch: repeat its frames into one (the analyzer's 'repeat')
        if not len(frames):
            return np.zeros((0, MUSICNN_PATCH_FRAMES, MUSICNN_BANDS), np.float32)
        reps = int(np.ceil(MUSICNN_PATCH_FRAMES / len(frames)))
        return np.tile(frames, (reps, 1))[None, :MUSICNN_PATCH_FRAMES]
    return frames[:count * MUSICNN_PATCH_FRAMES].reshape(count, MUSICNN_PATCH_FRAMES, MUSICNN_BANDS)


def embed_track(path: str, models: list) -> dict[str, np.ndarray]:  # type: ignore[type-arg]
    patches = mel_patches(path)
    return {name.split("_")[0]: model.predict(patches)[1].astype(np.float32) for name, model in
            zip(MODELS, models, strict=True)}


def corpus_patches(corpus: Path, models_dir: Path, log=print) -> dict[str, dict[str, np.ndarray]]:  # type: ignore[no-untyped-def]
    """{track path: {"msd": [p, 200], "mtt": [p, 200]}} for every corpus track (cached)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    models = None
    tracks = corpus_tracks(corpus)
    started = time.perf_counter()
    for i, t in enumerate(tracks):
        f = cache_file(t.path)
        if not f.exists():
            if models is None:
                models = load_models(models_dir)
            data = embed_track(t.path, models)
            tmp = f.with_name("tmp-" + f.name)
            with open(tmp, "wb") as fh:
                np.savez(fh, **data)
            tmp.rename(f)
            log(f"  embedded {i + 1}/{len(tracks)} {Path(t.path).name}: {len(data['msd'])} patches "
                f"({time.perf_counter() - started:.0f} s)")
        with np.load(f) as z:
            out[t.path] = {k: z[k] for k in z.files}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus")
    parser.add_argument("--models-dir", default=str(REPO / "models"))
    args = parser.parse_args()
    data = corpus_patches(find_corpus(args.corpus), Path(args.models_dir),
                          log=lambda *a: print(*a, file=sys.stderr, flush=True))
    print(f"{len(data)} tracks, {sum(len(v['msd']) for v in data.values())} patches")


if __name__ == "__main__":
    main()
