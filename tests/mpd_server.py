"""A real MPD for tests (Debian's `mpd`, null audio output, loopback port)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from mpd import MPDClient

from tests.conftest import free_port
from tests.helpers import wait_for


class Mpd:
    """A real MPD with its own config, database and log in ``workdir``."""

    def __init__(self, workdir: Path, music: Path, playlists: Path | None = None) -> None:
        """``playlists``: MPD's ``playlist_directory`` (stored playlists), if any."""
        self.port = free_port()
        self.conf = workdir / "mpd.conf"
        stored = f'playlist_directory "{playlists}"\n' if playlists else ""
        self.conf.write_text(
            f'music_directory "{music}"\ndb_file "{workdir / "mpd.db"}"\nlog_file "{workdir / "mpd.log"}"\n{stored}'
            f'bind_to_address "127.0.0.1"\nport "{self.port}"\nzeroconf_enabled "no"\n'
            'audio_output {\n    type "null"\n    name "null"\n}\n')
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["mpd", "--no-daemon", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for(self._answers, 20, "mpd to listen")

    def _answers(self) -> bool:
        try:
            self.client().close()
            return True
        except OSError:
            return False

    def client(self) -> MPDClient:
        client = MPDClient()
        client.timeout = 5
        client.connect("127.0.0.1", self.port)
        return client

    def mpc_env(self) -> dict[str, str]:
        """The environment for Debian's ``mpc`` talking to this MPD."""
        return {**os.environ, "MPD_HOST": "127.0.0.1", "MPD_PORT": str(self.port)}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
