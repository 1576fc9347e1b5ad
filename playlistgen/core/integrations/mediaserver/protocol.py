"""What the link, the playlist push and `mediaserver check` need from a media server. The
Subsonic/OpenSubsonic client (:class:`~.client.SubsonicClient`) is one implementation; a Jellyfin
client would be another (its own module here, built by ``service.hook_playlists``), and the rest
of the link (matching, status, push bookkeeping) would not change."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class MediaServerClient(Protocol):
    url: str    # the server's base URL, for messages (never with credentials)
    user: str   # the linked user

    def ping(self) -> dict:
        """The server's identity (type, version); MediaServerError when it cannot be used."""
        ...

    def iter_songs(self, page: int = 500) -> Iterator[dict]:
        """Every song the linked user can see, each with at least ``id`` and ``path``."""
        ...

    def create_or_update_playlist(self, name: str, song_ids: list[str], playlist_id: str | None = None) -> str:
        """The server's playlist id after writing ``song_ids`` under ``name``."""
        ...

    def delete_playlist(self, playlist_id: str) -> None: ...
