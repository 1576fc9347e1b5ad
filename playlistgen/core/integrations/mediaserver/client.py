"""A small Subsonic/OpenSubsonic API client (Navidrome, gonic, Airsonic, Ampache, supysonic...).

Token authentication (``t=md5(password+salt)``, a fresh salt per request); the clear-text form
``p=enc:<hex>`` is used only once the server has said it does not take tokens (error 41, or —
servers older than API 1.13 such as supysonic — error 10 for the missing ``p``). Every failure
is a :class:`MediaServerError` whose message names the server URL, never the password.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterator
from typing import Any

from ....errors import MediaServerError
from .transport import SubsonicTransport

log = logging.getLogger(__name__)

API_VERSION = "1.16.1"
CLIENT_NAME = "playlistgen"
MAX_GET_QUERY = 6000  # longer requests (big playlists) go as a POST form

# Subsonic error codes
WRONG_CREDENTIALS = 40
TOKEN_NOT_SUPPORTED = 41
MISSING_PARAMETER = 10
CLIENT_MUST_UPGRADE = 20
SERVER_MUST_UPGRADE = 30
NOT_FOUND = 70

_HINTS = {
    WRONG_CREDENTIALS: "check mediaserver.user and mediaserver.password (PLAYLISTGEN_MEDIASERVER__PASSWORD)",
    50: "the media-server user needs the permission for this (e.g. playlist or admin rights)",
    NOT_FOUND: "the item no longer exists on the server",
}


def _connection_reason(exc: Exception) -> str:
    """A short cause for a requests exception, without its URL (which carries credentials)."""
    import requests

    text = str(exc)
    for needle, reason in (("Connection refused", "connection refused"),
                           ("Name or service not known", "unknown host name"),
                           ("nodename nor servname", "unknown host name"),
                           ("Temporary failure in name resolution", "unknown host name"),
                           ("No route to host", "no route to host"),
                           ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted"),
                           ("timed out", "timed out")):
        if needle in text:
            return reason
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    return type(exc).__name__


class SubsonicClient:
    """One server, one user. Thread-safe as far as ``requests.Session`` is (reads from many
    threads are fine; the link and push code serialise their writes)."""

    def __init__(self, url: str, user: str, password: str, *, timeout: float = 10,
                 session: Any = None, transport: SubsonicTransport | None = None) -> None:
        """``transport``: the connection shared with the ``/rest`` proxy (the app builds one per
        server); without one, a connection of its own to ``url``."""
        self.transport = transport or SubsonicTransport(url, session=session)
        self.url = self.transport.base
        self.session = self.transport.session
        self.user = user
        self._password = password
        self.timeout = timeout
        self.version = API_VERSION
        self.use_password = False  # True once the server refused token auth
        self._tokens_ok = False    # a token call succeeded: an error 10 is then a real missing parameter

    def __repr__(self) -> str:  # never shows the password
        return f"SubsonicClient({self.url!r}, user={self.user!r})"

    # -- transport ---------------------------------------------------------------------------

    def _auth(self) -> dict[str, str]:
        params = {"u": self.user, "v": self.version, "c": CLIENT_NAME, "f": "json"}
        if self.use_password:
            params["p"] = "enc:" + self._password.encode("utf-8").hex()
        else:
            salt = secrets.token_hex(8)
            params["t"] = hashlib.md5((self._password + salt).encode("utf-8")).hexdigest()
            params["s"] = salt
        return params

    def _request(self, method: str, params: dict[str, Any]) -> Any:
        import requests

        endpoint = self.transport.endpoint(method)
        query = {**self._auth(), **{k: v for k, v in params.items() if v is not None}}
        try:
            size = sum(len(str(v)) + 8 for v in query.values())
            if size > MAX_GET_QUERY:
                return self.session.post(endpoint, data=query, timeout=self.timeout)
            return self.session.get(endpoint, params=query, timeout=self.timeout)
        except requests.RequestException as exc:
            raise MediaServerError(f"cannot reach media server at {self.url}: {_connection_reason(exc)}",
                                   "check mediaserver.url and that the server is running") from None

    def _body(self, method: str, response: Any) -> dict:
        try:
            doc = response.json()
        except ValueError:
            doc = None
        body = doc.get("subsonic-response") if isinstance(doc, dict) else None
        if not isinstance(body, dict):
            if response.status_code >= 400:
                raise MediaServerError(f"media server at {self.url} answered HTTP {response.status_code} "
                                       f"to {method}", "check mediaserver.url (the server's base URL, "
                                       "without /rest)")
            raise MediaServerError(f"{self.url} does not look like a Subsonic server ({method} gave no "
                                   "subsonic-response)", "check mediaserver.url")
        return body

    def call(self, method: str, **params: Any) -> dict:
        """Call one API method; return the ``subsonic-response`` body or raise MediaServerError."""
        probing = False  # True while trying the password form after an error 10
        for _attempt in range(3):
            body = self._body(method, self._request(method, params))
            if body.get("status") == "ok":
                self._tokens_ok = self._tokens_ok or not self.use_password
                if probing:
                    log.info("media server at %s does not take token auth: using the password form", self.url)
                return body
            error = body.get("error") or {}
            code = error.get("code")
            message = str(error.get("message") or "unknown error").strip().rstrip(".")
            if not self.use_password and (code == TOKEN_NOT_SUPPORTED
                                          or code == MISSING_PARAMETER and not self._tokens_ok):
                self.use_password = True  # 10: a pre-1.13 server missing `p` — tried once, kept if it works
                probing = code == MISSING_PARAMETER
                continue
            if probing and code == MISSING_PARAMETER:  # a real missing parameter: back to tokens
                self.use_password = False
                probing = False
            server_version = body.get("version")
            if code in (CLIENT_MUST_UPGRADE, SERVER_MUST_UPGRADE) and server_version \
                    and server_version != self.version:
                self.version = server_version
                continue
            if code == WRONG_CREDENTIALS:
                raise MediaServerError(f"media server at {self.url} refused user '{self.user}': {message}",
                                       _HINTS[WRONG_CREDENTIALS], code)
            raise MediaServerError(f"media server at {self.url}: {method} failed: {message} (error {code})",
                                   _HINTS.get(code, ""), code)
        raise MediaServerError(f"media server at {self.url}: {method} failed after re-negotiating auth",
                               "check mediaserver.user and mediaserver.password", WRONG_CREDENTIALS)

    # -- API ---------------------------------------------------------------------------------

    def ping(self) -> dict:
        """type/serverVersion/version/openSubsonic of the server (missing keys are None)."""
        body = self.call("ping")
        return {"type": body.get("type") or "subsonic", "serverVersion": body.get("serverVersion"),
                "version": body.get("version"), "openSubsonic": bool(body.get("openSubsonic", False))}

    def iter_songs(self, page: int = 500) -> Iterator[dict]:
        """Every song (Subsonic ``Child``) of the server: ``search3`` with an empty query, paged;
        a walk of ``getIndexes``/``getMusicDirectory`` when the server refuses empty queries."""
        offset = 0
        while True:
            try:
                body = self.call("search3", query="", artistCount=0, albumCount=0,
                                 songCount=page, songOffset=offset)
            except MediaServerError as exc:
                if offset or exc.subsonic_code in (WRONG_CREDENTIALS, None):
                    raise
                log.info("%s refuses an empty search3 (%s): walking its folders", self.url, exc.message)
                yield from self.walk_songs()
                return
            songs = (body.get("searchResult3") or {}).get("song") or []
            if not songs and offset == 0:
                yield from self.walk_songs()
                return
            yield from songs
            if len(songs) < page:
                return
            offset += len(songs)

    def walk_songs(self) -> Iterator[dict]:
        """Every song reachable from ``getIndexes`` through ``getMusicDirectory``."""
        indexes = self.call("getIndexes").get("indexes") or {}
        stack: list[str] = []
        for index in indexes.get("index") or []:
            stack.extend(str(a["id"]) for a in index.get("artist") or [])
        for child in indexes.get("child") or []:
            if child.get("isDir"):
                stack.append(str(child["id"]))
            else:
                yield child
        seen: set[str] = set()
        while stack:
            folder = stack.pop()
            if folder in seen:
                continue
            seen.add(folder)
            directory = self.call("getMusicDirectory", id=folder).get("directory") or {}
            for child in directory.get("child") or []:
                if child.get("isDir"):
                    stack.append(str(child["id"]))
                elif not child.get("isVideo"):
                    yield child

    def get_playlists(self) -> list[dict]:
        return list((self.call("getPlaylists").get("playlists") or {}).get("playlist") or [])

    def create_or_update_playlist(self, name: str, song_ids: list[str], playlist_id: str | None = None) -> str:
        """Create a playlist, or replace the songs of ``playlist_id`` in place; return its id.
        A ``playlist_id`` the server no longer knows is created afresh."""
        if playlist_id is not None:
            try:
                self.call("createPlaylist", playlistId=playlist_id, songId=list(song_ids))
                self.call("updatePlaylist", playlistId=playlist_id, name=name)
                return str(playlist_id)
            except MediaServerError as exc:
                if exc.subsonic_code != NOT_FOUND:
                    raise
                log.info("server playlist %s is gone: creating '%s' again", playlist_id, name)
        before = {str(p["id"]) for p in self.get_playlists()}
        body = self.call("createPlaylist", name=name, songId=list(song_ids))
        created = body.get("playlist")  # API >= 1.14 answers the playlist
        if isinstance(created, dict) and created.get("id") is not None:
            return str(created["id"])
        new = [p for p in self.get_playlists() if str(p["id"]) not in before and p.get("name") == name]
        if len(new) != 1:
            raise MediaServerError(f"media server at {self.url} did not report the id of new playlist '{name}'",
                                   "push again; playlistgen will find it by name next time")
        return str(new[0]["id"])

    def delete_playlist(self, playlist_id: str) -> None:
        self.call("deletePlaylist", id=playlist_id)
