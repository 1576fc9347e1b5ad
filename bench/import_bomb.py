"""`playlistgen import` of a gzip bomb (issue 20, point 16): a ~1 MB gzip that holds one line of
1 GiB without a newline. Prints the import's peak RSS (its own, via wait4) and wall time, next to
the same command on an empty export (the CLI's own footprint).

    .venv/bin/python bench/import_bomb.py [--mib 1024] [--tree PATH]

``--tree`` runs another source tree's `playlistgen` (e.g. a checkout from before the line bound)
for comparison; before it the line was read whole (256 MiB line: 557 MB peak, 1 GiB: ~2.1 GB).
Nothing is contacted over the network; the child is killed after 300 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MIB = 1 << 20


def write_bomb(path: Path, mib: int) -> int:
    """``mib`` MiB of '[' and no newline; returns the file size."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)   # wbits 31: the gzip container
    block = b"[" * (16 * MIB)
    with open(path, "wb") as fh:
        for _ in range(max(1, mib // 16)):
            fh.write(packer.compress(block))
        fh.write(packer.flush())
    return path.stat().st_size


def run_import(tree: Path, export: Path, work: Path) -> tuple[int, float, float, str]:
    """(exit code, peak RSS MB, wall s, last stderr line) of `playlistgen import` in a child."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PLAYLISTGEN_ANALYSIS__PRESET": "fast"}
    (work / "library").mkdir(exist_ok=True)
    err_path = work / "stderr.txt"
    started = time.monotonic()
    with open(err_path, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "playlistgen", "import", str(export), "--library",
                                 str(work / "library"), "--db", str(work / "bench.db")], cwd=work, env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
    watchdog = threading.Timer(300, proc.kill)
    watchdog.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        watchdog.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    lines = err_path.read_text(errors="replace").strip().splitlines()
    return proc.returncode, usage.ru_maxrss / 1024, wall, (lines[-1] if lines else "")[:160]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=1024, help="length of the endless line in MiB")
    parser.add_argument("--tree", type=Path, default=REPO, help="source tree whose playlistgen to run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="import-bomb-") as tmp:
        work = Path(tmp)
        empty = work / "empty.jsonl"
        empty.write_bytes(b"")
        bomb = work / "bomb.jsonl.gz"
        size = write_bomb(bomb, args.mib)
        code, base_mb, base_s, _ = run_import(args.tree, empty, work)
        print(f"empty export:      exit {code}, peak RSS {base_mb:7.1f} MB, {base_s:5.2f} s")
        for name in ("bench.db", "bench.db-wal", "bench.db-shm"):
            (work / name).unlink(missing_ok=True)
        code, peak_mb, wall, last = run_import(args.tree, bomb, work)
        print(f"{size / 1e6:.2f} MB gzip, one {args.mib} MiB line: exit {code}, peak RSS {peak_mb:7.1f} MB, "
              f"{wall:5.2f} s")
        print(f"  stderr: {last}")


if __name__ == "__main__":
    main()
