"""Settings of the library-adaptive "sounds like" projection (core/similarity)."""

from __future__ import annotations

from dataclasses import dataclass

from .config_fields import setting


@dataclass
class SimilaritySettings:
    projection: str = setting("auto", "Which projection of the MusiCNN embedding \"sounds like\" uses: auto = the "
                              "library's own fit once it has similarity.min_tracks analysed tracks, before that "
                              "the one shipped with the package; off = the raw embedding.", choices=("auto", "off"))
    # bench/fit_shipped_projection.py --curve: on the dev corpus a library's own fit matched or beat
    # a fit on other music from 15 tracks up (P@10 0.752 vs 0.745 at 15, 0.845 vs 0.837 at 30); 30 keeps a margin
    min_tracks: int = setting(30, "Tracks with stored patch-embedding spreads a library fit needs; below it the "
                              "shipped projection is used (measured: bench/fit_shipped_projection.py --curve).",
                              min=2)
    refit_change: float = setting(0.1, "Refit in the background when the number of tracks with spreads has changed "
                                  "by this share since the last fit (0.1 = 10 %).", min=0.0, max=10.0)
    refit_check_s: float = setting(300.0, "Seconds between the background checks whether a refit is due.", min=1.0)
