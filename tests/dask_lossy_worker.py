"""A Dask worker whose first "ready" announcement is lost, loaded with ``dask worker --preload``:
what happens when a worker re-registers with a restarted scheduler while announcing itself (Dask
drops the event). The daemon must notice the silent worker and ask it again."""

from __future__ import annotations

from typing import Any


def dask_setup(worker: Any) -> None:
    from playlistgen.core.execution.dask import worker as analysis

    original = analysis.AnalyzerPlugin._announce
    dropped: list[str] = []

    def lossy_announce(self: Any, w: Any, topic: str, msg: dict, **kwargs: Any) -> None:
        if topic == analysis.TOPIC_READY and not dropped:
            dropped.append(topic)
            print("lossy worker: dropped the first ready announcement", flush=True)
            return
        original(self, w, topic, msg, **kwargs)

    analysis.AnalyzerPlugin._announce = lossy_announce
