"""One BLAS-thread limiter for every process that does numeric work."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def single_threaded_blas() -> bool:
    """Limit BLAS/OpenMP pools to one thread in this process; False when threadpoolctl is missing.

    Analysis workers run one file each, one worker per core, so extra BLAS threads only add CPU
    time; the server answers requests on several threads at once, where a multi-threaded
    matrix-vector product only adds synchronisation (a 5k-track query took 6 ms with OpenBLAS
    threads instead of 0.06 ms). threadpoolctl comes with scikit-learn (a librosa dependency)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return False
    try:
        threadpool_limits(limits=1)
    except Exception as exc:   # only an efficiency matter
        log.debug("could not limit BLAS threads: %s", exc)
        return False
    return True
