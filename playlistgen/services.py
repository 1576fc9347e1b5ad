"""The long-lived components of a running daemon, built in the CLI entry point and passed to
the HTTP app explicitly (no singletons). Later components are added as fields here."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .config import Settings
from .core.db import Database


@dataclass
class Services:
    settings: Settings
    db: Database
    daemon: Any = None  # playlistgen.daemon.Daemon when serving; None in plain API tests
    metrics: Any = None  # playlistgen.core.metrics.Metrics; None disables /performance and route timers
    cache: Any = None    # playlistgen.core.cache.FeatureCache; None reads features straight from the database
    playlists: Any = None  # playlistgen.core.playlists.service.PlaylistService; create_app builds one if None
    mediaserver: Any = None  # playlistgen.core.mediaserver.service.MediaServerService; None = no link running
    sonic: Any = None    # playlistgen.core.mediaserver.sonic.SonicSearch (/rest, AudioMuse); create_app builds one
    mixes: Any = None    # playlistgen.core.playlists.schedule.MixScheduler; create_app builds one if None
    mpd: Any = None      # playlistgen.core.mpd_radio.MpdRadio when mpd.enabled; None otherwise
    tagwriter: Any = None  # playlistgen.core.tagwriter_service.TagWriterService when library.write_tags
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
