"""Analysis cost on real music, side by side with Essentia's MusicExtractor in the same run.

For each preset and for MusicExtractor, a fresh child process analyses the same files one after
another; we report CPU-seconds per minute of audio (median over files, and the total), the
realtime factor, and the child's peak RSS. Then: throughput with 1 and 2 workers through the
real process pool, and peak RSS for a 3-minute versus a 60-minute file.

    .venv/bin/python bench/analysis.py [--corpus DIR] [--files 12] [--quick] [--skip-long]

The corpus defaults to ../shared/corpus built into $PLAYLISTGEN_CORPUS or /tmp/playlistgen-corpus.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

CHILD = r"""
import json, os, re, sys, time
from pathlib import Path
kind, models_dir, files = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
out = {"files": []}
t0 = time.process_time()
if kind == "musicextractor":
    import essentia, essentia.standard as es
    essentia.log.infoActive = False
    extractor = es.MusicExtractor(lowlevelStats=["mean", "stdev"], rhythmStats=["mean", "stdev"],
                                  tonalStats=["mean", "stdev"])
    analyze = lambda p: extractor(p)
    duration = lambda r, p: float(r[0]["metadata.audio_properties.length"])
else:
    import dataclasses
    from playlistgen.core.analysis import presets
    from playlistgen.core.analysis.factory import create_analyzer
    preset, _, runtime = kind.partition(":")       # "balanced:onnx" = preset balanced on onnxruntime
    # candidates measured side by side whatever `balanced` is today: balanced's DSP, patching and
    # stride with MSD only or with MSD + MTT
    models = {"balanced-msd": ("msd_musicnn",), "balanced-msdmtt": ("msd_musicnn", "mtt_musicnn")}
    if preset in models:
        presets.PRESETS[preset] = dataclasses.replace(presets.PRESETS["balanced"], name=preset,
                                                      models=models[preset])
    analyzer = create_analyzer("essentia", preset, Path(models_dir), runtime or "auto")
    analyze = analyzer.analyze
    duration = lambda r, p: float(r.duration_s)
out["setup_cpu_s"] = time.process_time() - t0
for path in files:
    c0, w0 = time.process_time(), time.perf_counter()
    result = analyze(path)
    out["files"].append({"path": path, "cpu_s": time.process_time() - c0,
                         "wall_s": time.perf_counter() - w0, "audio_s": duration(result, path)})
# this process's own peak (ru_maxrss also carries the parent's peak, recorded at exec)
out["peak_rss_mb"] = int(re.search(r"VmHWM:\s+(\d+)", open("/proc/self/status").read()).group(1)) / 1024
print(json.dumps(out))
"""


def run_child(kind: str, models_dir: Path, files: list[str]) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", CHILD, kind, str(models_dir), json.dumps(files)],
                          capture_output=True, text=True, env=env, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} child failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def per_minute(run: dict) -> tuple[float, float, float]:
    """(median CPU-s per audio minute over files, total ratio, realtime factor audio/wall)."""
    ratios = [f["cpu_s"] / (f["audio_s"] / 60) for f in run["files"] if f["audio_s"] > 0]
    cpu = sum(f["cpu_s"] for f in run["files"])
    audio = sum(f["audio_s"] for f in run["files"])
    wall = sum(f["wall_s"] for f in run["files"])
    return statistics.median(ratios), cpu / (audio / 60), audio / wall


def corpus_files(corpus: Path, count: int) -> list[str]:
    if not (corpus / "manifest.tsv").exists():
        script = REPO.parent / "shared" / "corpus" / "dev_corpus.sh"
        print(f"building the dev corpus in {corpus} …", file=sys.stderr)
        subprocess.run(["bash", str(script), str(corpus)], check=True)
    files = sorted(str(p) for p in corpus.rglob("*.ogg"))
    # spread the pick over the packages (different styles and lengths)
    step = max(len(files) // count, 1)
    return files[::step][:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=os.environ.get("PLAYLISTGEN_CORPUS", "/tmp/playlistgen-corpus"))
    parser.add_argument("--models-dir", default=str(REPO / "models"))
    parser.add_argument("--files", type=int, default=12)
    parser.add_argument("--quick", action="store_true", help="6 files, fast + balanced only, 30-min long file")
    parser.add_argument("--skip-long", action="store_true")
    args = parser.parse_args()
    count = 6 if args.quick else args.files
    files = corpus_files(Path(args.corpus), count)
    models_dir = Path(args.models_dir)
    audio_min = None
    print(f"# bench/analysis.py  {len(files)} corpus files, one core per child process")
    rows = {}
    for kind in ["musicextractor", "fast", "balanced"] + ([] if args.quick else ["accurate"]):
        run = run_child(kind, models_dir, files)
        rows[kind] = (*per_minute(run), run["peak_rss_mb"], run["setup_cpu_s"])
        audio_min = sum(f["audio_s"] for f in run["files"]) / 60
    print(f"audio analysed per run: {audio_min:.1f} min")
    base = rows["musicextractor"][1]
    print(f"{'analyzer':<16}{'CPU-s/audio-min':>16}{'(median file)':>15}{'realtime x':>12}"
          f"{'peak RSS MB':>13}{'vs MusicExtractor':>19}")
    for kind, (median, total, rtf, rss, _setup) in rows.items():
        print(f"{kind:<16}{total:>16.3f}{median:>15.3f}{rtf:>12.0f}{rss:>13.0f}{total / base:>18.2f}x")

    # the same code `make bench` uses (bench/scaling.py, bench/costs.py)
    import scaling as sc
    from costs import rss_by_length

    print("\n## scaling (balanced, real process pool; audio minutes per wall minute)")
    result = sc.measure(files, models_dir, "balanced", 2 if args.quick else 3)
    print(f"2 vs 1 workers: median {statistics.median(result['speedup']['values']):.2f}x "
          f"(min {result['speedup']['min']:.2f}, max {result['speedup']['max']:.2f}); "
          f"this machine's pure-CPU loop {result['calibration']['speedup']:.2f}x")

    if not args.skip_long:
        print("\n## peak RSS versus file length")
        rss_by_length(files[0], [3, 30] if args.quick else [3, 10, 30, 60], ("fast", "balanced"), models_dir)


if __name__ == "__main__":
    main()
