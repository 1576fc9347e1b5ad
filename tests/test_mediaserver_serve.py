"""`playlistgen serve` with the media-server link on, against a real supysonic: /health,
/api/v1/mediaserver/*, /metrics, the dashboard panel, push on save and delete over HTTP."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import requests

from playlistgen.core.integrations.mediaserver.client import SubsonicClient
from tests.helpers import wait_for


def _start(daemon_factory, supysonic, supysonic_db: Path, tmp_path: Path, password: str):  # type: ignore[no-untyped-def]
    db = tmp_path / "pg.db"
    shutil.copy(supysonic_db, db)
    (tmp_path / "playlists").mkdir()
    env = {"PLAYLISTGEN_MEDIASERVER__URL": supysonic.url, "PLAYLISTGEN_MEDIASERVER__USER": supysonic.user,
           "PLAYLISTGEN_MEDIASERVER__PASSWORD": password,
           "PLAYLISTGEN_PLAYLISTS__OUTPUT_DIR": str(tmp_path / "playlists"),
           "PLAYLISTGEN_LIBRARY__WATCH": "false"}
    daemon = daemon_factory("--library", str(supysonic.library), "--db", str(db), "--preset", "fast",
                            "--workers", "1", env=env)
    daemon.wait_ready(60)
    return daemon


def test_wrong_password_degrades_health_with_one_log_line(daemon_factory, supysonic, supysonic_db,  # type: ignore[no-untyped-def]
                                                          tmp_path) -> None:
    daemon = _start(daemon_factory, supysonic, supysonic_db, tmp_path, "wrong-pass-77")
    for _ in range(3):
        assert requests.post(daemon.url + "/api/v1/mediaserver/link", timeout=10).status_code == 202
        time.sleep(0.3)
    def link_status() -> dict:
        return requests.get(daemon.url + "/api/v1/mediaserver/status", timeout=10).json()

    status = wait_for(lambda: (s := link_status())["last_error"] and s, 30, "the link to report its failure")
    assert "refused user 'alice'" in status["last_error"]
    health = requests.get(daemon.url + "/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    assert health.json()["components"]["mediaserver"]["degraded"]
    # the API still answers everything else
    assert requests.get(daemon.url + "/api/v1/library/status", timeout=10).status_code == 200
    time.sleep(1)   # time for more attempts: the log below must still hold one line per distinct failure
    assert daemon.stop() == 0
    log = daemon.log_path.read_text()
    errors = [line for line in log.splitlines() if " ERROR " in line and "media server" in line]
    assert len(errors) == 1, log
    assert "wrong-pass-77" not in log and "wrong-pass-77" not in health.text


def test_link_status_metrics_push_and_delete_over_http(daemon_factory, supysonic, supysonic_db,  # type: ignore[no-untyped-def]
                                                       tmp_path) -> None:
    daemon = _start(daemon_factory, supysonic, supysonic_db, tmp_path, supysonic.password)
    n = len(supysonic.songs)
    report = requests.post(daemon.url + "/api/v1/mediaserver/link?wait=true", timeout=60)
    assert report.status_code == 200, report.text
    assert report.json()["linked"]["by_method"]["path"] == n
    status = requests.get(daemon.url + "/api/v1/mediaserver/status", timeout=10).json()
    assert status["configured"] and status["linked"]["total"] == n and status["health"]["degraded"] is False
    assert supysonic.password not in str(status)
    metrics = requests.get(daemon.url + "/metrics", timeout=10).text
    assert f'playlistgen_mediaserver_songs_linked{{method="path"}} {float(n)}' in metrics
    assert "playlistgen_mediaserver_up 1.0" in metrics
    assert 'id="p-mediaserver"' in requests.get(daemon.url + "/dashboard", timeout=10).text

    saved = requests.post(daemon.url + "/api/v1/playlists", timeout=60, json={
        "strategy": "random", "size": 4, "save": True, "name": "from the API", "diversity": False})
    assert saved.status_code == 201, saved.text
    meta = saved.json()["playlist"]
    server_id = meta["mediaserver"]["server_playlist_id"]
    client = SubsonicClient(supysonic.url, supysonic.user, supysonic.password)
    assert {p["id"]: p["songCount"] for p in client.get_playlists()}[server_id] == 4
    shown = requests.get(f"{daemon.url}/api/v1/playlists/{meta['id']}", timeout=10).json()
    assert shown["playlist"]["mediaserver"]["server_playlist_id"] == server_id
    deleted = requests.delete(f"{daemon.url}/api/v1/playlists/{meta['id']}", timeout=30)
    assert deleted.status_code == 200
    assert server_id not in {p["id"] for p in client.get_playlists()}
    assert requests.get(f"{daemon.url}/api/v1/playlists/{meta['id']}", timeout=10).status_code == 404
    assert daemon.stop() == 0
