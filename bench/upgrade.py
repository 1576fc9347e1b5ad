"""Issue 22 points 1 and 4: what the spread costs to store, and how fast an older library is
upgraded.

* **Bytes per track**: the features row's new blobs (spread float16, MTT float32, the patch count)
  for `balanced` and `accurate` on real files, and what 200,000 tracks add.
* **Upgrade throughput**: the real path, end to end — `scan` a few corpus files with `balanced`
  into a fresh database (one worker), set the spread columns back to NULL (a database from before
  migration 0008), then time `scan --upgrade` (one worker: decode at 16 kHz + MusiCNN only) against
  the full analysis of the same files.

    .venv/bin/python bench/upgrade.py [--corpus DIR] [--files 8]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, find_corpus, pick_files  # noqa: E402


def _scan(work: Path, *extra: str) -> tuple[float, str]:
    env = {**os.environ, "PLAYLISTGEN_DATABASE__PATH": str(work / "db.sqlite"),
           "PLAYLISTGEN_LIBRARY__PATHS": f'["{work / "library"}"]', "PLAYLISTGEN_ANALYSIS__PRESET": "balanced",
           "PLAYLISTGEN_ANALYSIS__WORKERS": "1", "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "playlistgen", "scan", *extra], env=env, cwd=work,
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode:
        raise SystemExit(proc.stderr[-2000:])
    return time.perf_counter() - t0, proc.stdout + proc.stderr


def stored_bytes(files: list[str]) -> None:
    from playlistgen.core.analysis.factory import create_analyzer
    from playlistgen.core.storage.records import to_blob, to_half_blob

    for preset in ("balanced", "accurate"):
        analyzer = create_analyzer("essentia", preset, REPO / "models")
        sizes = []
        for path in files:
            r = analyzer.analyze(path)
            sizes.append(len(to_half_blob(r.embedding_spread)) + len(to_blob(r.embedding_mtt) or b"") + 8)
        per = max(sizes)
        print(f"{preset}: {per} bytes per track at most (median {sorted(sizes)[len(sizes) // 2]}), "
              f"200,000 tracks add {per * 200_000 / 1e9:.2f} GB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus")
    parser.add_argument("--files", type=int, default=8)
    args = parser.parse_args()
    files = pick_files(find_corpus(args.corpus), args.files)
    stored_bytes(files[:3])
    with tempfile.TemporaryDirectory(prefix="upgrade-bench-") as tmp:
        work = Path(tmp)
        (work / "library").mkdir()
        for i, path in enumerate(files):
            shutil.copy(path, work / "library" / f"{i:02d}-{Path(path).name}")
        full_s, _ = _scan(work)
        from playlistgen.core.storage.db import connect

        conn = connect(work / "db.sqlite")
        conn.execute("UPDATE features SET embedding_spread = NULL, embedding_patches = NULL, embedding_mtt = NULL")
        conn.close()
        upgrade_s, out = _scan(work, "--upgrade")
        done = re.search(r"upgraded (\d+), failed (\d+)", out)
        print(f"scan (full analysis, balanced, 1 worker): {len(files)} files in {full_s:.1f} s "
              f"= {len(files) / full_s * 60:.1f} tracks/min (incl. start-up)")
        print(f"scan --upgrade (16 kHz decode + MusiCNN, 1 worker): {done.group(0) if done else out[-300:]} "
              f"in {upgrade_s:.1f} s = {len(files) / upgrade_s * 60:.1f} tracks/min (incl. start-up)")


if __name__ == "__main__":
    main()
