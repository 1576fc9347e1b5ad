"""Reconcile time for a generated library: first scan (fingerprints every file) and then an
unchanged rescan, which must stay fast for 100k files (target ≤ 15 s on a 2-core machine).

    .venv/bin/python bench/reconcile.py [--files 100000] [--runs 3] [--dir /tmp/pg-reconcile]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playlistgen.config import LibrarySettings  # noqa: E402
from playlistgen.core.library.reconcile import Library  # noqa: E402
from playlistgen.core.storage.db import Database  # noqa: E402


def make_tree(root: Path, files: int) -> None:
    """artist/album/track layout, 12 tracks an album, 8 albums an artist; small unique files."""
    marker = root / f".generated-{files}"
    if marker.exists():
        return
    for i in range(files):
        artist, album = i // 96, i // 12
        folder = root / f"Artist {artist:05d}" / f"Album {album:06d}"
        if i % 12 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i % 12 + 1:02d} Track {i}.flac").write_bytes(i.to_bytes(8, "little") * 32)
    marker.touch()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "pg-reconcile"))
    args = parser.parse_args()
    root = Path(args.dir) / f"lib-{args.files}"
    root.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    make_tree(root, args.files)
    print(f"# bench/reconcile.py  files={args.files}  tree ready in {time.perf_counter() - t:.1f} s ({root})")
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "bench.db", batch_size=256)
        library = Library(db, LibrarySettings(paths=[str(root)]), "bench")
        first = library.reconcile(trigger="bench")
        print(f"first scan (stat + fingerprint + insert): {first.seconds:.2f} s, {first.queued} queued")
        times = []
        for _ in range(args.runs):
            report = library.reconcile(trigger="bench")
            assert report.queued == 0 and report.unchanged == args.files, report
            times.append(report.seconds)
        print(f"unchanged rescan: median {statistics.median(times):.2f} s "
              f"(min {min(times):.2f}, max {max(times):.2f}, runs {args.runs}) "
              f"= {args.files / statistics.median(times):,.0f} files/s")
        db.close()


if __name__ == "__main__":
    main()
