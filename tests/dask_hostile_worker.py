"""A hostile Dask worker for tests/test_dask_roles.py, loaded with ``dask worker --preload``: it
holds the worker's certificate (so it may join) and tries to run code in the daemon through
everything a worker sends back — a pickled object in an event, and an analysis "result" whose
unpickling runs code. Each attempt touches ``HOSTILE_MARKER``, so the test sees whether the
daemon unpickled anything. Importing this module in the daemon is running worker code too: the
daemon's environment sets ``HOSTILE_IMPORT_MARKER``, which its import touches."""

from __future__ import annotations

import os
import pathlib
from typing import Any

from distributed.protocol.serialize import ToPickle

MARKER = os.environ.get("HOSTILE_MARKER", "/nonexistent/hostile-marker")

if os.environ.get("HOSTILE_IMPORT_MARKER"):   # only the daemon's environment sets it
    pathlib.Path(os.environ["HOSTILE_IMPORT_MARKER"]).touch()


class Payload:
    """Unpickling it touches the marker (``pathlib.Path.touch(Path(marker))``)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def hostile_analyse_file(file_id: int, path: str, data: bytes | None, read_path: str | None, *rest: Any) -> Any:
    """Replaces the analysis task: its "result" runs code where it is unpickled."""
    return Payload(MARKER)


def dask_setup(worker: Any) -> None:
    from playlistgen.core.execution.dask import worker as analysis

    analysis.analyse_file = hostile_analyse_file   # the daemon's task names it by module and name

    async def send_pickle() -> None:   # a pickle in an ordinary worker message (an event)
        import asyncio

        for _ in range(300):
            stream = worker.batched_stream
            if stream is not None and stream.comm is not None and not stream.comm.closed():
                break
            await asyncio.sleep(0.1)
        worker.batched_send({"op": "log-event", "topic": "playlistgen-ready", "msg": ToPickle(Payload(MARKER))})

    worker.loop.add_callback(send_pickle)
