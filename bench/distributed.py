"""Dask analysis on this machine vs the local process pool: throughput of 2 local worker
processes and of 2 Dask workers (`playlistgen worker`, shipped file bytes, a scheduler in this
process as in `serve`), side by side; the overhead ratio (goal ≥ 0.9); bytes shipped per audio
minute; time to first result (warm cluster, and cold: from starting the workers).

Both runs use the same files, longest first, warm workers, and `MachineLoad` records what other
processes took meanwhile. Also a projection for a 4-core NAS + 12-core desktop from the measured
per-core rate (a projection, not a measurement). `make bench` runs it as the `distributed` section
(bench/run_all.py) and bench/report.py renders it in docs/benchmarks.md; run alone, it prints.

    .venv/bin/python bench/distributed.py [--corpus DIR] [--files 8] [--pairs 2] [--preset balanced]
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

# This file's name is the Dask package's: keep bench/ at the END of sys.path (a script's folder
# comes first by default), so `import distributed` finds the package and `import common` ours.
BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(BENCH.parent))
sys.path.append(str(BENCH))
import distributed  # noqa: E402,F401  (the package, cached before scaling.py puts bench/ first again)
from common import REPO, MachineLoad, durations, find_corpus, pick_files, stats  # noqa: E402
from scaling import _LENGTHS, run_once, start_executor  # noqa: E402

NAS_CORES, DESKTOP_CORES = 4, 12
TRACK_MIN = 4.0           # audio minutes of an average track, for the 200k-track projection


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cluster(models_dir: Path, preset: str, workers: int) -> tuple:  # type: ignore[type-arg]
    """An embedded scheduler (as in `serve`), ``workers`` `playlistgen worker` processes and a
    started DaskAnalysisExecutor; returns (executor, worker process, seconds until capacity)."""
    from playlistgen import __version__
    from playlistgen.core.analysis.factory import AnalyzerSpec
    from playlistgen.core.analysis.version import ANALYZER_VERSION
    from playlistgen.core.execution.dask.config import TlsFiles
    from playlistgen.core.execution.dask.executor import DaskAnalysisExecutor
    from playlistgen.core.execution.local import AnalysisExecutor

    spec = AnalyzerSpec("playlistgen.core.analysis.factory:create_analyzer", "essentia", preset, str(models_dir))
    listen = f"tcp://127.0.0.1:{free_port()}"
    executor = DaskAnalysisExecutor(
        spec, versions={"playlistgen": __version__, "analyzer": f"essentia-{ANALYZER_VERSION}"}, scheduler="",
        listen=listen, tls=TlsFiles(), path_map={}, max_ship_mb=1024, max_attempts=3, fallback="wait",
        timeout_s=900, local_factory=lambda: AnalysisExecutor(spec, workers=1, timeout_s=900, max_memory_mb=4000,
                                                              max_tasks_per_child=10_000),
        models_dir=str(models_dir))
    executor.start()
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "playlistgen", "worker", "--scheduler", listen,
                             "--nworkers", str(workers)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**_env(), "PLAYLISTGEN_ANALYSIS__MODELS_DIR": "/nonexistent"})
    while executor.capacity < workers:
        if time.perf_counter() - started > 300:
            raise SystemExit("Dask workers did not join within 300 s")
        time.sleep(0.1)
    return executor, proc, time.perf_counter() - started


def _env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("PLAYLISTGEN_")}


def first_result(executor, path: str) -> float:  # type: ignore[no-untyped-def]
    """Seconds from submit to the outcome of one file on an idle, warm executor."""
    started = time.perf_counter()
    executor.submit(10_000, path)
    while not executor.poll(0.05):
        pass
    return time.perf_counter() - started


def warm(executor, workers: int, path: str) -> None:  # type: ignore[no-untyped-def]
    for i in range(workers):
        executor.submit(-1 - i, path)
    done = 0
    while done < workers:
        done += len(executor.poll(1.0))


def measure(files: list[str], models_dir: Path, preset: str, pairs: int, log=print) -> dict:  # type: ignore[no-untyped-def]
    _LENGTHS.update(durations(files))
    audio_min = sum(_LENGTHS[f] for f in files) / 60
    short = min(files, key=lambda f: _LENGTHS[f])
    log(f"distributed: {len(files)} files, {audio_min:.1f} audio-min per run, preset {preset}")
    local = start_executor(2, models_dir, preset, short)
    cold_started = time.perf_counter()
    dask, proc, join_s = start_cluster(models_dir, preset, 2)
    warm(dask, 2, short)
    cold_first = time.perf_counter() - cold_started
    kept = []
    try:
        first = {"local": first_result(local, short), "dask": first_result(dask, short)}
        for p in range(pairs):
            shipped0 = dask.health()["dask"]["bytes_shipped"]
            if p % 2:   # alternate the order: a neighbour's load drifting over time hits both alike
                two, one = run_once(dask, files), run_once(local, files)
            else:
                one, two = run_once(local, files), run_once(dask, files)
            shipped = dask.health()["dask"]["bytes_shipped"] - shipped0
            pair = {"local": one, "dask": two, "ratio": two["audio_min_per_min"] / one["audio_min_per_min"],
                    "bytes_per_audio_min": shipped / audio_min,
                    "foreign_share": max(one["foreign_share"], two["foreign_share"])}
            log(f"  pair {p + 1}: local {one['audio_min_per_min']:.1f}, dask {two['audio_min_per_min']:.1f} "
                f"audio-min/min → {pair['ratio']:.2f} (other processes {pair['foreign_share']:.0%}); "
                f"{pair['bytes_per_audio_min'] / 2**20:.2f} MB shipped per audio-min; workers busy "
                f"{one['busy_share']:.0%} / {two['busy_share']:.0%}, CPU-s per audio-min "
                f"{one['worker_cpu_s'] / audio_min:.2f} / {two['worker_cpu_s'] / audio_min:.2f}")
            kept.append(pair)
    finally:
        local.close(grace_s=0)
        dask.close(grace_s=0)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    per_core = stats([k["local"]["audio_min_per_min"] / 2 for k in kept])["median"]
    ratio = stats([k["ratio"] for k in kept])["median"]
    nas, desktop = NAS_CORES * per_core, DESKTOP_CORES * per_core * ratio
    return {
        "preset": preset, "files": len(files), "audio_min": audio_min,
        "local": stats([k["local"]["audio_min_per_min"] for k in kept]),
        "dask": stats([k["dask"]["audio_min_per_min"] for k in kept]),
        "ratio": stats([k["ratio"] for k in kept]),
        "busy_share": {"local": stats([k["local"]["busy_share"] for k in kept]),
                       "dask": stats([k["dask"]["busy_share"] for k in kept])},
        "cpu_s_per_audio_min": {"local": stats([k["local"]["worker_cpu_s"] / audio_min for k in kept]),
                                "dask": stats([k["dask"]["worker_cpu_s"] / audio_min for k in kept])},
        "bytes_per_audio_min": stats([k["bytes_per_audio_min"] for k in kept]),
        "foreign_share": stats([k["foreign_share"] for k in kept]),
        "first_result_s": first, "cold_first_result_s": cold_first, "workers_join_s": join_s,
        "projection": {"per_core_audio_min_per_min": per_core, "nas_cores": NAS_CORES,
                       "desktop_cores": DESKTOP_CORES, "nas_alone": nas, "nas_plus_desktop": nas + desktop,
                       "track_min": TRACK_MIN,
                       "hours_200k_nas": 200_000 * TRACK_MIN / nas / 60,
                       "hours_200k_both": 200_000 * TRACK_MIN / (nas + desktop) / 60},
        "pairs": kept,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus")
    parser.add_argument("--models-dir", default=str(REPO / "models"))
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--preset", default="balanced", choices=("fast", "balanced", "accurate"))
    parser.add_argument("--json", help="also write the result to this file")
    args = parser.parse_args()
    files = pick_files(find_corpus(args.corpus), args.files)
    with MachineLoad() as load:
        result = measure(files, Path(args.models_dir), args.preset, args.pairs)
    result["total_foreign_share"] = load.foreign_share
    r, p = result, result["projection"]
    print(f"overhead ratio (Dask / local, goal ≥ 0.9): {r['ratio']['median']:.2f} "
          f"({r['ratio']['min']:.2f}–{r['ratio']['max']:.2f}); local {r['local']['median']:.1f}, "
          f"Dask {r['dask']['median']:.1f} audio-min/min; {r['bytes_per_audio_min']['median'] / 2**20:.2f} MB "
          f"shipped per audio-min; first result {r['first_result_s']['dask']:.2f} s (Dask) vs "
          f"{r['first_result_s']['local']:.2f} s (local), {r['cold_first_result_s']:.1f} s from starting "
          f"the workers; projection: NAS alone {p['nas_alone']:.0f}, NAS + desktop {p['nas_plus_desktop']:.0f} "
          "audio-min/min")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")

if __name__ == "__main__":
    main()
