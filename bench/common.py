"""Shared helpers of the benchmark scripts: the cache folder, the dev corpus, statistics of
repeated runs, and an account of the CPU that *other* processes used while we measured.

Every figure in docs/benchmarks.md is a median of several runs with its spread (min–max); a
comparison is a ratio of two figures measured side by side in the same run. On a shared
2-core machine another process can take a core in the middle of a measurement: `MachineLoad`
records the CPU-seconds the whole machine spent outside our own process tree, so the report can
show it and the scaling measurement can retry a disturbed pair.
"""

from __future__ import annotations

import csv
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
CORPUS_SCRIPT = REPO.parent / "shared" / "corpus" / "dev_corpus.sh"
TICK = os.sysconf("SC_CLK_TCK")


def cache_dir() -> Path:
    """Where generated inputs are kept between runs ($PLAYLISTGEN_BENCH_CACHE, else ~/.cache)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "playlistgen-bench"
    path = Path(os.environ.get("PLAYLISTGEN_BENCH_CACHE", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def find_corpus(explicit: str | None = None) -> Path:
    """The dev corpus: --corpus, $PLAYLISTGEN_CORPUS, ../corpus next to the repository, else
    built into the cache folder with ../shared/corpus/dev_corpus.sh (about 400 MB of downloads)."""
    candidates = [explicit, os.environ.get("PLAYLISTGEN_CORPUS"), str(REPO.parent / "corpus")]
    for c in candidates:
        if c and (Path(c) / "manifest.tsv").exists():
            return Path(c)
    target = Path(explicit or os.environ.get("PLAYLISTGEN_CORPUS") or cache_dir() / "corpus")
    if not CORPUS_SCRIPT.exists():
        raise SystemExit(f"no dev corpus at {target} and no {CORPUS_SCRIPT} to build it")
    print(f"building the dev corpus in {target} (once) …", file=sys.stderr, flush=True)
    subprocess.run(["bash", str(CORPUS_SCRIPT), str(target)], check=True)
    return target


def corpus_key(corpus: Path) -> str:
    """A cache name for a corpus: ``corpus`` for the dev corpus (a folder named ``corpus``; its caches
    predate other corpora and keep their names), else ``<folder>-<hash of manifest.tsv>`` so the
    caches of two corpora never mix."""
    import hashlib

    if corpus.name == "corpus":
        return "corpus"
    digest = hashlib.sha256((corpus / "manifest.tsv").read_bytes()).hexdigest()[:8]
    return f"{corpus.name}-{digest}"


@dataclass(frozen=True)
class CorpusTrack:
    path: str
    label: str          # the Debian package: the album / source label
    bytes: int


def corpus_tracks(corpus: Path) -> list[CorpusTrack]:
    with open(corpus / "manifest.tsv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [CorpusTrack(str(corpus / r["path"]), r["package"], int(r["bytes"])) for r in rows]


def durations(paths: list[str]) -> dict[str, float]:
    """Stream lengths from the tags (cheap; no decode)."""
    import mutagen

    out = {}
    for p in paths:
        info = mutagen.File(p)
        out[p] = float(info.info.length) if info is not None else 0.0
    return out


def pick_files(corpus: Path, count: int, min_s: float = 60.0, max_s: float = 330.0) -> list[str]:
    """``count`` corpus files of ordinary song length, spread over the packages (styles)."""
    tracks = corpus_tracks(corpus)
    length = durations([t.path for t in tracks])
    by_label: dict[str, list[str]] = {}
    for t in tracks:
        if min_s <= length[t.path] <= max_s:
            by_label.setdefault(t.label, []).append(t.path)
    lists = [sorted(v) for _, v in sorted(by_label.items())]
    picked: list[str] = []
    i = 0
    while len(picked) < count and any(lists):
        for v in lists:
            if v and len(picked) < count:
                picked.append(v.pop((i * 7) % len(v)))   # spread over each package, deterministically
        i += 1
    return picked


# --- statistics -----------------------------------------------------------------------------

def stats(values: list[float]) -> dict:
    """Median and spread of repeated measurements."""
    vals = [float(v) for v in values]
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals),
            "values": [round(v, 6) for v in vals]}


def fmt(s: dict, digits: int = 2, unit: str = "") -> str:
    """'1.23 (1.20–1.30, n=3)'."""
    f = f"{{:,.{digits}f}}"
    return f"{f.format(s['median'])}{unit} ({f.format(s['min'])}–{f.format(s['max'])}, n={s['n']})"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def run_clients(client: Callable[[int], None], count: int, seconds: float) -> float:
    """Run ``client(i)`` in ``count`` threads (each stops itself after ``seconds``); waits for them,
    bounded, and returns the elapsed seconds."""
    import threading

    threads = [threading.Thread(target=client, args=(i,)) for i in range(count)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    return time.perf_counter() - started


# --- other processes' CPU use ---------------------------------------------------------------

def _machine_busy_s() -> float:
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / TICK


def _tree_cpu_s(root: psutil.Process, seen: dict[int, float]) -> None:
    """Update ``seen`` with the CPU seconds of root and its live descendants (a child that exits
    keeps its last sample, so short-lived workers are still counted up to their last sample).
    Only each process's own time: a reaped child's time also shows in its parent's
    ``children_user``, and counting both made a section's own CPU double and hid other processes."""
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return
    for p in procs:
        try:
            t = p.cpu_times()
            seen[p.pid] = t.user + t.system
        except psutil.Error:
            pass


class MachineLoad:
    """CPU-seconds used on this machine by processes outside our tree during a block.

        with MachineLoad() as load:
            work()
        load.foreign_s, load.foreign_share   # share of the machine's capacity (0..1)
    """

    def __init__(self, sample_s: float = 0.5) -> None:
        self.sample_s = sample_s
        self.foreign_s = 0.0
        self.own_s = 0.0
        self.wall_s = 0.0
        self.foreign_share = 0.0

    def __enter__(self) -> MachineLoad:
        import threading

        self._me = psutil.Process()
        self._start_tree: dict[int, float] = {}
        _tree_cpu_s(self._me, self._start_tree)
        self._tree: dict[int, float] = dict(self._start_tree)
        self._busy0, self._t0 = _machine_busy_s(), time.perf_counter()
        self._stop = threading.Event()

        def sample() -> None:
            while not self._stop.wait(self.sample_s):
                _tree_cpu_s(self._me, self._tree)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        _tree_cpu_s(self._me, self._tree)
        self.wall_s = time.perf_counter() - self._t0
        busy = _machine_busy_s() - self._busy0
        self.own_s = sum(v - self._start_tree.get(pid, 0.0) for pid, v in self._tree.items())
        self.foreign_s = max(0.0, busy - self.own_s)
        capacity = self.wall_s * (os.cpu_count() or 1)
        self.foreign_share = self.foreign_s / capacity if capacity else 0.0


def cpu_burn_scaling(seconds_per_task: float = 0.7, tasks: int = 3, repeats: int = 3) -> dict:
    """The machine's own answer to "do two processes run twice as fast as one?": a pure-Python
    loop in 1 and 2 spawned processes (no I/O, no shared state), ``tasks`` equal tasks per process,
    the (1, 2) pair measured ``repeats`` times; the median pair's ratio is kept."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:  # the same amount of work per task in every run
        n = int(pool.apply(_calibrate) * seconds_per_task)
    pairs = []
    with ctx.Pool(1) as one, ctx.Pool(2) as two:
        one.map(_burn, [1000])
        two.map(_burn, [1000] * 2)
        for _ in range(repeats):
            pair = {}
            for procs, pool, key in ((1, one, "one"), (2, two, "two")):
                with MachineLoad() as load:
                    started = time.perf_counter()
                    pool.map(_burn, [n] * procs * tasks, chunksize=1)
                    wall = time.perf_counter() - started
                pair[key] = {"tasks_per_s": procs * tasks / wall, "foreign_share": load.foreign_share}
            pair["speedup"] = pair["two"]["tasks_per_s"] / pair["one"]["tasks_per_s"]
            pairs.append(pair)
    pairs.sort(key=lambda p: p["speedup"])
    out = dict(pairs[len(pairs) // 2])
    out["runs"] = [round(p["speedup"], 3) for p in pairs]
    return out


def _calibrate() -> float:
    started = time.process_time()
    _burn(2_000_000)
    return 2_000_000 / max(time.process_time() - started, 1e-6)


def _burn(n: int) -> int:
    s = 0
    for i in range(n):
        s += i * i
    return s
