"""Dask analysis on this machine vs the local process pool: throughput of 2 local worker
processes and of 2 Dask workers (`playlistgen worker`, shipped file bytes, a scheduler in this
process as in `serve`), side by side; the overhead ratio (goal ≥ 0.9); bytes shipped per audio
minute; time to first result (warm cluster, and cold: from starting the workers).

Both runs use the same files, longest first, warm workers, and `MachineLoad` records what other
processes took meanwhile. Writes ``docs/bench/distributed.json`` and the "Analysis on other
machines" block of ``docs/benchmarks.md``, with a projection for a 4-core NAS + 12-core desktop
from the measured per-core rate (a projection, not a measurement).

    .venv/bin/python bench/distributed.py [--corpus DIR] [--files 8] [--pairs 2] [--preset balanced]
"""

from __future__ import annotations

import argparse
import json
import re
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

BLOCK_START, BLOCK_END = "<!-- distributed:start -->", "<!-- distributed:end -->"
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
    from playlistgen.core.analysis.version import ANALYZER_VERSION
    from playlistgen.core.dask_config import TlsFiles
    from playlistgen.core.dask_executor import DaskAnalysisExecutor
    from playlistgen.core.executor import AnalysisExecutor, AnalyzerSpec

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


def markdown(r: dict) -> str:
    def f(s: dict, d: int = 2) -> str:
        return f"{s['median']:.{d}f} ({s['min']:.{d}f}–{s['max']:.{d}f})"

    p = r["projection"]
    mb = {k: r["bytes_per_audio_min"][k] / 2**20 for k in ("median", "min", "max")}
    return "\n".join([
        BLOCK_START,
        "## Analysis on other machines (Dask)",
        "",
        f"Measured by `bench/distributed.py` on this machine: {r['files']} files ({r['audio_min']:.1f} audio-min), "
        f"preset {r['preset']}, 2 local worker processes vs 2 Dask workers (`playlistgen worker`, file bytes "
        "shipped with each task, scheduler inside the benchmark process as in `serve`), warm workers, longest "
        f"file first; other processes used {f(r['foreign_share'])} of the machine meanwhile.",
        "",
        "| | audio-min per wall-min |",
        "|---|---|",
        f"| 2 local processes | {f(r['local'], 1)} |",
        f"| 2 Dask workers | {f(r['dask'], 1)} |",
        f"| **overhead ratio** (Dask / local, goal ≥ 0.9) | **{f(r['ratio'])}** |",
        "",
        f"Bytes shipped per audio minute: {f(mb)} MB "
        "(the files as stored). Time to first result on an idle warm cluster: "
        f"{r['first_result_s']['dask']:.2f} s with Dask vs {r['first_result_s']['local']:.2f} s locally (one "
        f"file); from starting `playlistgen worker` to the first result: {r['cold_first_result_s']:.1f} s "
        f"(workers joined and loaded the models from the daemon in {r['workers_join_s']:.1f} s).",
        "",
        f"**Projection, not a measurement** (from the measured per-core rate of this machine, "
        f"{p['per_core_audio_min_per_min']:.1f} audio-min per wall-min per core, and the measured overhead ratio "
        f"for the remote cores): a {p['nas_cores']}-core NAS alone ≈ {p['nas_alone']:.0f} audio-min/min; with a "
        f"{p['desktop_cores']}-core desktop as Dask workers ≈ {p['nas_plus_desktop']:.0f} audio-min/min. A "
        f"200,000-track library ({p['track_min']:g} min per track) then takes ≈ {p['hours_200k_nas']:.1f} h on "
        f"the NAS alone and ≈ {p['hours_200k_both']:.1f} h with the desktop. Real machines differ in per-core "
        "speed, and a NAS serving the files over a 1 Gbit/s link ships ≈ 110 MB/s, far above what these "
        "rates need.",
        BLOCK_END,
    ])


def write(result: dict, doc: Path, assets: Path) -> None:
    assets.mkdir(parents=True, exist_ok=True)
    (assets / "distributed.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    block = markdown(result)
    (assets / "distributed.md").write_text(block + "\n", encoding="utf-8")   # bench/report.py appends it
    text = doc.read_text(encoding="utf-8") if doc.exists() else ""
    if BLOCK_START in text:
        text = re.sub(re.escape(BLOCK_START) + ".*?" + re.escape(BLOCK_END), lambda _m: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus")
    parser.add_argument("--models-dir", default=str(REPO / "models"))
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--preset", default="balanced", choices=("fast", "balanced", "accurate"))
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    args = parser.parse_args()
    files = pick_files(find_corpus(args.corpus), args.files)
    with MachineLoad() as load:
        result = measure(files, Path(args.models_dir), args.preset, args.pairs)
    result["total_foreign_share"] = load.foreign_share
    print(markdown(result))
    if not args.no_write:
        write(result, REPO / "docs" / "benchmarks.md", REPO / "docs" / "bench")


if __name__ == "__main__":
    main()
