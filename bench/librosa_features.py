"""The baseline "plain librosa feature script": what people typically write to get tempo, key,
chroma, MFCC and spectral features of their music with librosa, unoptimised on purpose.

    .venv/bin/python bench/librosa_features.py FILE... > features.jsonl

One JSON line per file. The key is the usual Krumhansl–Kessler template match on the mean
chroma. ``tuning=0.0`` is the one deviation from the textbook script: librosa's tuning estimate
(``estimate_tuning``) segfaulted in a fresh venv on this machine kind (DESIGN.md §7).
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import numpy as np

NOTES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def estimate_key(chroma_mean: np.ndarray) -> tuple[str, str]:
    best = (-2.0, "C", "major")
    for tonic in range(12):
        for profile, scale in ((MAJOR, "major"), (MINOR, "minor")):
            r = float(np.corrcoef(chroma_mean, np.roll(profile, tonic))[0, 1])
            if r > best[0]:
                best = (r, NOTES[tonic], scale)
    return best[1], best[2]


def features(path: str) -> dict:
    import librosa

    y, sr = librosa.load(path, sr=22050, mono=True)
    tempo, _beats = librosa.beat.beat_track(y=y, sr=sr)
    chroma = librosa.feature.chroma_stft(y=y, sr=sr, tuning=0.0)
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13)
    centroid = librosa.feature.spectral_centroid(y=y, sr=sr)
    bandwidth = librosa.feature.spectral_bandwidth(y=y, sr=sr)
    rolloff = librosa.feature.spectral_rolloff(y=y, sr=sr)
    contrast = librosa.feature.spectral_contrast(y=y, sr=sr)
    zcr = librosa.feature.zero_crossing_rate(y)
    rms = librosa.feature.rms(y=y)
    key, scale = estimate_key(chroma.mean(axis=1))
    return {"duration_s": len(y) / sr, "bpm": float(np.atleast_1d(tempo)[0]), "key": key, "scale": scale,
            "chroma": chroma.mean(axis=1).tolist(), "mfcc_mean": mfcc.mean(axis=1).tolist(),
            "mfcc_std": mfcc.std(axis=1).tolist(), "spectral_centroid": float(centroid.mean()),
            "spectral_bandwidth": float(bandwidth.mean()), "spectral_rolloff": float(rolloff.mean()),
            "spectral_contrast": contrast.mean(axis=1).tolist(), "zcr": float(zcr.mean()), "rms": float(rms.mean())}


def main(paths: list[str]) -> None:
    warnings.simplefilter("ignore")
    for path in paths:
        c0, w0 = time.process_time(), time.perf_counter()
        out = features(path)
        out.update(path=path, cpu_s=time.process_time() - c0, wall_s=time.perf_counter() - w0)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
