"""How long the library fit takes at scale: the accumulation of a synthetic 200,000-track library
(200-d means, 12-row float16 spreads, as the analysis stores them) in the fit's batches, and the
eigenproblem. No database: this is the arithmetic a 200k fit adds to the read.

    python bench/similarity_fit.py [--tracks 200000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playlistgen.core.similarity.fit import BATCH  # noqa: E402
from playlistgen.core.similarity.lda import Moments, fit_moments  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=200_000)
    parser.add_argument("--dims", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    # one batch of stored-like blobs, reused (generating 200k random tracks would dominate the timing)
    means = rng.normal(0, 1, (BATCH, args.dims)).astype("<f4")
    spreads = [rng.normal(0, 0.3, (12, args.dims)).astype("<f2") for _ in range(BATCH)]
    moments = Moments(args.dims)
    started = time.perf_counter()
    done = 0
    while done < args.tracks:
        n = min(BATCH, args.tracks - done)
        moments.add(means[:n], spreads[:n])
        done += n
    accumulate_s = time.perf_counter() - started
    started = time.perf_counter()
    fit_moments(moments)
    solve_s = time.perf_counter() - started
    print(f"accumulate {args.tracks} tracks x {args.dims} dims (12-row spreads): {accumulate_s:.2f} s "
          f"({accumulate_s / args.tracks * 1e6:.1f} us/track); eigenproblem {solve_s:.3f} s; "
          f"memory of the moments {(moments.outer_sum.nbytes + moments.within_sum.nbytes) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
