"""The parts the HTTP layer sees, as one typed bag: built and owned by ``playlistgen.app.App``
(which also starts and stops them) and handed to ``create_app`` (no singletons). Blueprints
reach it through ``api.context.current_services()``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .config import Settings
from .core.storage.db import Database

if TYPE_CHECKING:  # the real types, without importing them at run time
    from .api.subsonic.upstream import Upstream
    from .core.feedback.nowplaying import NowPlaying
    from .core.feedback.playback import PlaybackReports
    from .core.integrations.mediaserver.artists import ServerArtists
    from .core.integrations.mediaserver.service import MediaServerService
    from .core.integrations.mediaserver.sonic import SonicSearch
    from .core.integrations.mpd import MpdRadio
    from .core.integrations.tags.service import TagWriterService
    from .core.observe.metrics import Metrics
    from .core.playlists.schedule import MixScheduler
    from .core.playlists.service import PlaylistService
    from .core.similarity.refit import Refitter
    from .core.storage.cache import FeatureCache
    from .daemon import Daemon


@dataclass
class Services:
    settings: Settings
    db: Database
    daemon: Daemon | None = None            # when serving; None in plain API use (tests)
    metrics: Metrics | None = None          # None disables /performance and route timers
    cache: FeatureCache | None = None       # None reads features straight from the database
    playlists: PlaylistService | None = None
    mediaserver: MediaServerService | None = None  # None = no media-server link running
    sonic: SonicSearch | None = None        # similarity with server ids (/rest, AudioMuse)
    artists: ServerArtists | None = None    # similar artists (by name or server artist id)
    mixes: MixScheduler | None = None       # scheduled mixes
    mpd: MpdRadio | None = None             # the MPD radio when mpd.enabled
    tagwriter: TagWriterService | None = None  # writes tags after analysis when library.write_tags
    upstream: Upstream | None = None        # the user's Subsonic server, with mediaserver.proxy
    now_playing: NowPlaying | None = None   # /rest clients' now-playing reports → skips (core/feedback)
    refitter: Refitter | None = None        # refits the similarity projection in the background (serve)
    playback: PlaybackReports | None = None  # /rest clients' OpenSubsonic playback reports → skips and plays
    started_at: float = field(default_factory=time.time)
