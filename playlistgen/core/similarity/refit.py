"""Keeping the library's projection current: a background loop that refits when the number of
tracks with stored spreads has changed by ``similarity.refit_change`` (a share) since the last
fit, once at least ``similarity.min_tracks`` have one. A fit reads the library once and takes
seconds; it runs on this loop's thread, and the similarity index notices the new projection by
its key and rebuilds in the background, so requests never wait for either."""

from __future__ import annotations

import logging
from typing import Any

from ...config_similarity import SimilaritySettings
from ..loops import BackgroundLoop
from . import store
from .fit import Counts, counts, fit_library
from .space import Space, select
from .store import StoredProjection

log = logging.getLogger(__name__)


def due(representation: str, found: Counts, fitted: int | None, settings: SimilaritySettings) -> str | None:
    """Why ``representation`` should be (re)fitted now, or None."""
    n = found.usable(representation)
    if settings.projection == "off" or n < settings.min_tracks:
        return None
    if fitted is None:
        return f"{n} tracks have spreads and there is no library fit yet"
    if abs(n - fitted) >= settings.refit_change * max(fitted, 1):
        return f"{n} tracks have spreads, the last fit saw {fitted}"
    return None


def current_space(db: Any, settings: SimilaritySettings, found: Counts | None = None) -> Space:
    """The space a catalog built now would use."""
    found = found or counts(db)
    return select(db, mode=settings.projection, min_tracks=settings.min_tracks, embedded=found.embedded,
                  all_mtt=found.embedded > 0 and found.mtt == found.embedded)


def status(db: Any, settings: SimilaritySettings) -> dict:
    """What ``similarity status``, ``/library/status`` and ``doctor`` show."""
    found = counts(db)
    space = current_space(db, settings, found)
    fits = {rep: store.fitted_on(db, rep) for rep in store.REPRESENTATIONS}
    return {**space.to_dict(), "tracks_with_embedding": found.embedded, "tracks_with_spread": found.spread,
            "library_fits": {rep: n for rep, n in fits.items() if n is not None},
            "tracks_with_mtt": found.mtt, "min_tracks": settings.min_tracks,
            "refit_due": next((f"{rep}: {why}" for rep in store.REPRESENTATIONS
                               if (why := due(rep, found, fits[rep], settings)) is not None), None)}


class Refitter:
    """The background refit (built by the App for ``serve``)."""

    def __init__(self, db: Any, settings: SimilaritySettings) -> None:
        self.db = db
        self.settings = settings
        self.fits = 0
        self.last: StoredProjection | None = None
        self.loop = BackgroundLoop("similarity-refit", self.check, interval_s=lambda: self.settings.refit_check_s,
                                   wait_first=False)

    def check(self) -> list[StoredProjection]:
        """Fit every representation that is due; the new projections."""
        found = counts(self.db)
        done = []
        # msd+mtt first: the space the catalog prefers is then the one its first rebuild uses
        for rep in reversed(store.REPRESENTATIONS):
            reason = due(rep, found, store.fitted_on(self.db, rep), self.settings)
            if reason is None:
                continue
            log.info("similarity: refitting the %s projection (%s)", rep, reason)
            fitted = fit_library(self.db, rep, min_tracks=self.settings.min_tracks)
            self.fits += 1
            self.last = fitted
            done.append(fitted)
        return done

    def start(self) -> None:
        self.loop.start()

    def stop(self) -> None:
        self.loop.stop(timeout=30.0)   # a fit in progress is not interrupted: seconds

    def health(self) -> dict:
        last = self.last
        return {**self.loop.health(), "fits": self.fits,
                "last_fit": None if last is None else {"representation": last.representation, "tracks": last.tracks,
                                                       "seconds": round(last.fit_s or 0.0, 3)}}
