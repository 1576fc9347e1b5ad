"""What guarding the daemon's Dask connections costs (issue 20, point 17): decoding one message
from an untrusted peer with ``plain.loads`` instead of Dask's ``protocol.loads`` (which the
scheduler uses with ``deserialize=False``), for a worker's heartbeat, a ``task-finished`` stream
batch and an analysis result (JSON text with a 200-value embedding) as the scheduler's ``gather``
receives it. Prints microseconds per message; no thresholds.

    PYTHONPATH=. python bench/dask_guard.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE in sys.path:   # bench/distributed.py would shadow the Dask package
    sys.path.remove(_HERE)

from distributed.protocol import dumps, loads  # noqa: E402
from distributed.protocol.serialize import Serialize  # noqa: E402

from playlistgen.core.execution.dask import plain  # noqa: E402


def messages() -> dict[str, list]:
    heartbeat = {"op": "heartbeat_worker", "address": "tls://10.0.0.2:40000", "now": time.time(),
                 "metrics": {"task_counts": {"memory": 1}, "bandwidth": {"total": 1e8, "workers": {}, "types": {}},
                             "digests_total_since_heartbeat": {("execute", "x", "thread-cpu", "seconds"): 0.1},
                             "managed_bytes": 1000, "spilled_bytes": {"memory": 0, "disk": 0}, "transfer": {},
                             "event_loop_interval": 0.02, "cpu": 3.0, "memory": 400e6, "time": time.time(),
                             "host_net_io": {"read_bps": 1.0, "write_bps": 1.0}, "num_fds": 30}}
    finished = [{"op": "task-finished", "key": f"playlistgen-analyse-{i}-1", "run_id": i, "nbytes": 4000,
                 "type": b"\x80\x05\x95\x14\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94\x8c\x03str\x94\x93\x94.",
                 "typename": "str", "metadata": {}, "thread": 1, "startstops": ({"action": "compute",
                                                                                 "start": 1.0, "stop": 2.0},),
                 "status": "OK", "stimulus_id": "x"} for i in range(5)]
    result = json.dumps({"result": {"bpm": 120.0, "embedding": [0.12345] * 200, "mfcc_mean": [1.0] * 13,
                                    "tags": {"msd": {f"tag{i}": 0.1 for i in range(50)}}}, "error": None,
                         "worker": {"pid": 1}, "not_ready": None})
    gathered = {"status": "OK", "data": {"playlistgen-analyse-1-1": Serialize(result)}}
    return {"heartbeat": dumps(heartbeat), "task-finished x5": dumps(finished), "result (gather)": dumps(gathered)}


def per_message_us(fn, frames: list, seconds: float = 0.5) -> float:  # type: ignore[no-untyped-def]
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn(frames)
        n += 1
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    print(f"{'message':<20} {'bytes':>7} {'Dask loads µs':>14} {'plain.loads µs':>15}")
    for name, frames in messages().items():
        size = sum(len(f) for f in frames)
        dask_us = per_message_us(lambda f: loads(f, deserialize=False), frames)
        plain_us = per_message_us(plain.loads, frames)
        print(f"{name:<20} {size:>7} {dask_us:>14.1f} {plain_us:>15.1f}")


if __name__ == "__main__":
    main()
