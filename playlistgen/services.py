"""The long-lived components of a running daemon, built in the CLI entry point and passed to
the HTTP app explicitly (no singletons). Later components are added as fields here."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .config import Settings
from .core.storage.db import Database

if TYPE_CHECKING:  # the real types, without importing them at run time
    from .core.integrations.mediaserver.service import MediaServerService
    from .core.integrations.mediaserver.sonic import SonicSearch
    from .core.integrations.mpd import MpdRadio
    from .core.integrations.tags.service import TagWriterService
    from .core.observe.metrics import Metrics
    from .core.playlists.schedule import MixScheduler
    from .core.playlists.service import PlaylistService
    from .core.storage.cache import FeatureCache
    from .daemon import Daemon


@dataclass
class Services:
    settings: Settings
    db: Database
    daemon: Daemon | None = None            # when serving; None in plain API tests
    metrics: Metrics | None = None          # None disables /performance and route timers
    cache: FeatureCache | None = None       # None reads features straight from the database
    playlists: PlaylistService | None = None  # create_app builds one if None
    mediaserver: MediaServerService | None = None  # None = no media-server link running
    sonic: SonicSearch | None = None        # similarity with server ids (/rest, AudioMuse); create_app builds one
    mixes: MixScheduler | None = None       # scheduled mixes; create_app builds one if None
    mpd: MpdRadio | None = None             # the MPD radio when mpd.enabled
    tagwriter: TagWriterService | None = None  # writes tags after analysis when library.write_tags
    started_at: float = field(default_factory=time.time)

    def close(self) -> None:
        if self.mpd is not None:
            self.mpd.stop()
        if self.mixes is not None:
            self.mixes.stop()
        if self.mediaserver is not None:
            self.mediaserver.stop()
        if self.cache is not None:
            self.cache.stop_purger()
        if self.daemon is not None:
            self.daemon.stop()
        if self.tagwriter is not None:   # after the daemon: the last results get their tags
            self.tagwriter.stop()
        self.db.close()
