"""Analysis throughput with 1 and 2 workers through the real process pool (AnalysisExecutor),
in audio-minutes per wall-minute, with the machine's own scaling measured beside it.

How it is measured, and why (the first version of this figure read 0.83–0.96x):

* **Audio-minutes, not files**: files differ in length; a few long files at the end of a run
  leave one worker idle. Throughput is the audio the run analysed divided by its wall time.
* **Enough work**: every run analyses the same list of files (default 8–16, 15–40 audio
  minutes), so a run lasts several seconds per worker, and the tail (the last file running
  alone) is a small share of it.
* **Warm workers**: the pool starts and loads the models before timing, and every worker
  analyses one file first (the first file of a process pays one-off costs).
* **Other processes**: `MachineLoad` counts the CPU-seconds the machine spent outside our own
  process tree during each run. Workers run at nice 5 (analysis is background work), so on a
  shared machine a busy neighbour takes the second core and the 2-worker run looks no faster.
  A pair (1 worker, then 2) disturbed by more than ``max_foreign`` of the machine's capacity is
  measured again (up to ``attempts`` times) and the report shows the foreign share it had.
* **Calibration**: a pure-CPU loop in 1 and 2 processes, measured in the same run, shows what the
  machine itself can give (a VM's two vCPUs may be less than two cores).

    .venv/bin/python bench/scaling.py [--corpus DIR] [--files 12] [--pairs 3] [--preset balanced]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import REPO, MachineLoad, cpu_burn_scaling, durations, find_corpus, pick_files, stats  # noqa: E402


def start_executor(workers: int, models_dir: Path, preset: str, warm_file: str):  # type: ignore[no-untyped-def]
    """A started pool whose every worker has loaded its models and analysed one file."""
    from playlistgen.core.analysis.factory import AnalyzerSpec
    from playlistgen.core.execution.local import AnalysisExecutor

    spec = AnalyzerSpec("playlistgen.core.analysis.factory:create_analyzer", "essentia", preset, str(models_dir))
    executor = AnalysisExecutor(spec, kind="process", workers=workers, timeout_s=900, max_memory_mb=4000,
                                max_tasks_per_child=10_000)
    executor.start()
    for i in range(workers):
        executor.submit(-1 - i, warm_file)
    done = 0
    while done < workers:
        done += len(executor.poll(1.0))
    return executor


def run_once(executor, files: list[str]) -> dict:  # type: ignore[no-untyped-def]
    """One timed run over ``files`` (longest first, so the run does not end on one long file
    analysed alone): audio-minutes per minute, worker CPU, foreign load."""
    order = sorted(files, key=lambda f: -_LENGTHS.get(f, 0.0))
    queue, finished, audio_s, cpu_s, busy_s = list(enumerate(order)), 0, 0.0, 0.0, 0.0
    with MachineLoad() as load:
        started = time.perf_counter()
        while finished < len(order):
            while queue and executor.capacity:
                i, path = queue.pop(0)
                executor.submit(i, path)
            for outcome in executor.poll(0.5):
                if outcome.error:
                    raise SystemExit(f"{outcome.path}: {outcome.error}")
                finished += 1
                audio_s += outcome.result.duration_s
                cpu_s += outcome.result.worker.cpu_s
                busy_s += outcome.result.worker.wall_s
        wall = time.perf_counter() - started
    return {"workers": executor.workers, "audio_min_per_min": audio_s / wall, "wall_s": wall,
            "worker_cpu_s": cpu_s, "cpu_utilisation": cpu_s / wall / executor.workers,
            "worker_busy_s": busy_s, "busy_share": busy_s / wall / executor.workers,
            "foreign_share": load.foreign_share, "foreign_cpu_s": load.foreign_s}


_LENGTHS: dict[str, float] = {}


def measure(files: list[str], models_dir: Path, preset: str = "balanced", pairs: int = 3,
            max_foreign: float = 0.10, attempts: int = 3, log=print) -> dict:  # type: ignore[no-untyped-def]
    """``pairs`` side-by-side (1 worker, 2 workers) runs; a pair disturbed by other processes is
    repeated up to ``attempts`` times (the least disturbed attempt is kept)."""
    _LENGTHS.update(durations(files))
    audio_min = sum(_LENGTHS[f] for f in files) / 60
    log(f"scaling: {len(files)} files, {audio_min:.1f} audio-min per run, preset {preset}")
    calibration = cpu_burn_scaling()
    log(f"  machine: pure-CPU loop 2 vs 1 processes {calibration['speedup']:.2f}x "
        f"(foreign {calibration['one']['foreign_share']:.0%}/{calibration['two']['foreign_share']:.0%})")
    warm = min(files, key=lambda f: _LENGTHS[f])
    ex1 = start_executor(1, models_dir, preset, warm)
    ex2 = start_executor(2, models_dir, preset, warm)
    kept = []
    try:
        for p in range(pairs):
            best = None
            for attempt in range(attempts):
                one, two = run_once(ex1, files), run_once(ex2, files)
                foreign = max(one["foreign_share"], two["foreign_share"])
                pair = {"one": one, "two": two, "speedup": two["audio_min_per_min"] / one["audio_min_per_min"],
                        "foreign_share": foreign, "attempt": attempt + 1}
                log(f"  pair {p + 1} attempt {attempt + 1}: 1 worker {one['audio_min_per_min']:.0f}, "
                    f"2 workers {two['audio_min_per_min']:.0f} audio-min/min → {pair['speedup']:.2f}x "
                    f"(other processes used {foreign:.0%} of the machine)")
                if best is None or foreign < best["foreign_share"]:
                    best = pair
                if foreign <= max_foreign:
                    break
            kept.append(best)
    finally:
        ex1.close(grace_s=0)
        ex2.close(grace_s=0)
    return {
        "preset": preset, "files": len(files), "audio_min": audio_min, "max_foreign": max_foreign,
        "calibration": calibration,
        "one": stats([k["one"]["audio_min_per_min"] for k in kept]),
        "two": stats([k["two"]["audio_min_per_min"] for k in kept]),
        "speedup": stats([k["speedup"] for k in kept]),
        "foreign_share": stats([k["foreign_share"] for k in kept]),
        "utilisation_two": stats([k["two"]["cpu_utilisation"] for k in kept]),
        "disturbed_pairs": sum(1 for k in kept if k["foreign_share"] > max_foreign),
        "pairs": kept,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus")
    parser.add_argument("--models-dir", default=str(REPO / "models"))
    parser.add_argument("--files", type=int, default=12)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--preset", default="balanced")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()
    files = pick_files(find_corpus(args.corpus), args.files)
    result = measure(files, Path(args.models_dir), args.preset, args.pairs)
    print(f"speed-up 2 vs 1 workers: median {statistics.median(result['speedup']['values']):.2f}x "
          f"(min {result['speedup']['min']:.2f}, max {result['speedup']['max']:.2f}); "
          f"machine pure-CPU loop {result['calibration']['speedup']:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
