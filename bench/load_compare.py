"""Issue 10's load figure, old code against new side by side: ``bench/hardening.py``'s load (N clients
cycling through /health, /api/v1/library/status, /metrics, /api/v1/tracks, POST /api/v1/playlists,
/api/v1/performance/metrics) against a real `playlistgen serve` analysing a generated library,
run alternately for each source tree (A, B, A, B, …) so that noise on this shared machine hits both.

Each tree runs from its own source (``PYTHONPATH``) and its own ``migrations/`` folder (the editable
install would otherwise map ``playlistgen.migrations`` to this repository's), with the same venv,
models, library size and default settings. The old tree is a worktree, e.g.
``git worktree add /tmp/oldcode 24560c6``.

    .venv/bin/python bench/load_compare.py --tree old=/tmp/oldcode --tree new=. [--pairs 3] [--files 400]
                                           [--clients 50] [--seconds 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import MachineLoad, percentile  # noqa: E402
from hardening import counts, load, make_library  # noqa: E402

from tests.conftest import Daemon  # noqa: E402

# `python -c LAUNCHER serve …`: playlistgen from PYTHONPATH, its migrations from the same tree.
LAUNCHER = """\
import importlib.util, runpy, sys
from pathlib import Path
import playlistgen
folder = Path(playlistgen.__file__).parents[1] / "migrations"
spec = importlib.util.spec_from_file_location("playlistgen.migrations", folder / "__init__.py",
                                              submodule_search_locations=[str(folder)])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
playlistgen.migrations = module
runpy.run_module("playlistgen", run_name="__main__", alter_sys=True)
"""
WARM_ANALYSED = 4   # start the load once this many files are analysed: workers up, models loaded


class TreeDaemon(Daemon):
    """A `playlistgen serve` process running the source tree ``tree``."""

    def __init__(self, tree: Path, workdir: Path, *args: str) -> None:
        super().__init__(workdir, *args, env={"PYTHONPATH": str(tree)}, launcher=(sys.executable, "-c", LAUNCHER))


def run_once(tree: Path, files: int, clients: int, seconds: float) -> dict:
    """One daemon of ``tree`` analysing ``files`` generated songs, loaded by ``clients`` for ``seconds``."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_library(root / "library", files, 45.0)
        daemon = TreeDaemon(tree, root, "--library", str(root / "library"), "--db", str(root / "bench.db"))
        try:
            daemon.wait_ready(120)
            deadline = time.monotonic() + 120
            while counts(daemon.url).get("analysed", 0) < WARM_ANALYSED and time.monotonic() < deadline:
                time.sleep(0.5)
            before = counts(daemon.url)
            with MachineLoad() as machine:
                result = load(daemon.url, clients, seconds)
            after = counts(daemon.url)
        finally:
            daemon.stop()
    lat = result["latencies"]
    return {"rps": len(lat) / result["elapsed"], "p50_ms": statistics.median(lat), "p99_ms": percentile(lat, 99),
            "errors": len(result["errors"]), "error_kinds": sorted(set(result["errors"]))[:3],
            "analysed": f"{before.get('analysed')}→{after.get('analysed')}", "foreign": machine.foreign_share,
            "still_analysing": after.get("pending", 0) + after.get("analysing", 0) > 0,
            "by_route": {r: (statistics.median(ms), percentile(ms, 99)) for r, ms in sorted(result["by_route"].items())
                         if ms}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", required=True, metavar="NAME=DIR",
                        help="a source tree to measure (repeat; runs alternate in this order)")
    parser.add_argument("--pairs", type=int, default=3, help="rounds of one run per tree")
    parser.add_argument("--files", type=int, default=400,
                        help="generated 45 s songs in the library (enough to keep it analysing all along)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--routes", action="store_true", help="also print p50/p99 per route")
    args = parser.parse_args()
    trees = {name: Path(path).resolve() for name, path in (t.split("=", 1) for t in args.tree)}
    print(f"# bench/load_compare.py {' '.join(sys.argv[1:])}", flush=True)
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    for i in range(args.pairs):
        for name, tree in trees.items():
            r = run_once(tree, args.files, args.clients, args.seconds)
            runs[name].append(r)
            kinds = f" {r['error_kinds']}" if r["errors"] else ""
            print(f"{name:>5} run {i + 1}: {r['rps']:6.0f} req/s  p50 {r['p50_ms']:5.0f} ms  "
                  f"p99 {r['p99_ms']:5.0f} ms  errors {r['errors']}{kinds}  "
                  f"(analysed {r['analysed']}, other processes {r['foreign']:.0%})"
                  + ("" if r["still_analysing"] else "  ANALYSIS ENDED DURING THE LOAD: use more --files"),
                  flush=True)
            if args.routes:
                for route, (p50, p99) in r["by_route"].items():
                    print(f"        {route:34} p50 {p50:5.0f} ms  p99 {p99:5.0f} ms", flush=True)
    print("median of runs:")
    for name, rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_ms", "p99_ms", "errors")}
        print(f"{name:>5}: {med['rps']:6.0f} req/s  p50 {med['p50_ms']:5.0f} ms  p99 {med['p99_ms']:5.0f} ms  "
              f"errors {med['errors']:g} (per run: {[r['errors'] for r in rs]})")


if __name__ == "__main__":
    main()
