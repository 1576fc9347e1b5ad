"""Storage-layer figures: batched insert throughput through the writer thread, and the cost of a
reader-pool checkout. Prints medians of several runs with their spread.

    .venv/bin/python bench/db.py [--rows 20000] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playlistgen.core.storage.db import Database  # noqa: E402


def insert_rate(rows: int, batch_size: int) -> float:
    """Rows per second: one `files` upsert per writer job, as the scanner does."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "bench.db", batch_size=batch_size)
        started = time.perf_counter()
        futures = [db.submit(lambda c, i=i: c.execute(
            "INSERT INTO files(path, size, mtime_ns) VALUES (?, ?, ?)", (f"/music/{i}.flac", i, i)))
            for i in range(rows)]
        for f in futures:
            f.result()
        elapsed = time.perf_counter() - started
        db.close()
        return rows / elapsed


def checkout_us(n: int) -> float:
    """Microseconds per checkout + check-in of an idle pooled connection."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "bench.db", pool_min=2, pool_max=8)
        started = time.perf_counter()
        for _ in range(n):
            with db.readers.connection():
                pass
        elapsed = time.perf_counter() - started
        db.close()
        return elapsed / n * 1e6


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):,.1f}  (min {min(values):,.1f}, max {max(values):,.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"# bench/db.py  rows={args.rows} runs={args.runs}")
    for batch in (1, 64, 512):
        rates = [insert_rate(args.rows, batch) for _ in range(args.runs)]
        print(f"insert rows/s, batch_size={batch:<4} {summary(rates)}")
    costs = [checkout_us(20000) for _ in range(args.runs)]
    print(f"reader checkout+checkin µs       {summary(costs)}")


if __name__ == "__main__":
    main()
