"""MusiCNN CPU time per 3 s patch, for each model on each runtime (onnxruntime, Essentia's
TensorFlow), one thread, on log-mel patches cut from real corpus files. Runtimes alternate round
by round (onnx, essentia, onnx, …) so that noise on a shared machine hits both; each figure is the
median over rounds of the mean CPU time per patch (one patch per call, as the analyzer runs them).

    .venv/bin/python bench/musicnn_patch.py [--corpus DIR] [--files 6] [--patches 60] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import REPO, find_corpus, pick_files  # noqa: E402


def real_patches(files: list[str], count: int) -> np.ndarray:
    """Every third non-overlapping 187-frame log-mel patch of the files (as `balanced` takes)."""
    import librosa

    from playlistgen.core.analysis.mel import MusicnnMel
    from playlistgen.core.analysis.presets import MUSICNN_PATCH_FRAMES as FRAMES

    mel, out = MusicnnMel(), []
    for path in files:
        audio, _ = librosa.load(path, sr=16000, mono=True)
        rows = mel(mel.framer().push(audio.astype(np.float32)))
        out += [rows[s:s + FRAMES] for s in range(0, len(rows) - FRAMES, 3 * FRAMES)]
    if not out:
        raise SystemExit("no patch: the files are shorter than 3 s")
    return np.stack(out[:count]).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus")
    parser.add_argument("--models-dir", default=str(REPO / "models"))
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--patches", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from playlistgen.core.analysis.factory import load_musicnn
    from playlistgen.core.analysis.presets import get_preset

    patches = real_patches(pick_files(find_corpus(args.corpus), args.files), args.patches)
    accurate = get_preset("accurate")             # the preset that uses both models
    models = {rt: load_musicnn(accurate, Path(args.models_dir), rt) for rt in ("onnx", "essentia")}
    ms: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for runtime, loaded in models.items():
            for model in loaded:
                started = time.process_time()
                for patch in patches:
                    model.predict(patch[None])
                ms.setdefault((model.name, runtime), []).append(
                    (time.process_time() - started) / len(patches) * 1000)
    print(f"MusiCNN CPU ms per patch ({len(patches)} real patches, {args.rounds} rounds, one thread; median (min–max))")
    for name in accurate.models:
        row = {rt: ms[(name, rt)] for rt in models}
        cells = "  ".join(f"{rt} {statistics.median(v):5.1f} ({min(v):.1f}–{max(v):.1f})" for rt, v in row.items())
        ratio = statistics.median(row["essentia"]) / statistics.median(row["onnx"])
        print(f"  {name:12} {cells}  → onnx {ratio:.1f}x faster")


if __name__ == "__main__":
    main()
