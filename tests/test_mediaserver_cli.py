"""`playlistgen mediaserver check|link|push` and the doctor line, as real child processes against
a real supysonic."""

from __future__ import annotations

import shutil

from playlistgen.core.integrations.mediaserver.client import SubsonicClient

from .conftest import free_port, run_cli


def _env(server, tmp_path, password=None, url=None):  # type: ignore[no-untyped-def]
    return {"PLAYLISTGEN_MEDIASERVER__URL": url or server.url, "PLAYLISTGEN_MEDIASERVER__USER": server.user,
            "PLAYLISTGEN_MEDIASERVER__PASSWORD": password or server.password,
            "PLAYLISTGEN_DATABASE__PATH": str(tmp_path / "pg.db"),
            "PLAYLISTGEN_LIBRARY__PATHS": f'["{server.library}"]',
            "PLAYLISTGEN_PLAYLISTS__OUTPUT_DIR": str(tmp_path / "playlists")}


def test_check_link_push_and_failures(supysonic, supysonic_db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    shutil.copy(supysonic_db, tmp_path / "pg.db")
    (tmp_path / "playlists").mkdir()
    env = _env(supysonic, tmp_path)
    n = len(supysonic.songs)
    check = run_cli("mediaserver", "check", env=env, cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert "user 'alice' ok with password" in check.stdout and check.stdout.strip().endswith(f"{n} songs")

    early = run_cli("mediaserver", "push", env=env, cwd=tmp_path)
    assert early.returncode == 1 and "run `playlistgen mediaserver link` first" in early.stderr

    linked = run_cli("mediaserver", "link", env=env, cwd=tmp_path)
    assert linked.returncode == 0, linked.stderr
    assert f"{n} server songs: {n} linked (path {n}," in linked.stdout

    saved = run_cli("playlist", "random", "--size", "3", "--save", "--name", "cli push", env=env, cwd=tmp_path)
    assert saved.returncode == 0, saved.stderr
    client = SubsonicClient(supysonic.url, supysonic.user, supysonic.password)
    mine = [p for p in client.get_playlists() if p["name"] == "cli push"]
    assert len(mine) == 1 and mine[0]["songCount"] == 3
    again = run_cli("mediaserver", "push", env=env, cwd=tmp_path)
    assert again.returncode == 0 and "1 playlist(s) pushed, 0 failed" in again.stdout
    assert [p["name"] for p in client.get_playlists()].count("cli push") == 1
    client.delete_playlist(mine[0]["id"])

    wrong = run_cli("mediaserver", "check", env=_env(supysonic, tmp_path, password="bad-pw-1"), cwd=tmp_path)
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr
    assert wrong.stderr.strip().splitlines() == [
        f"Error: media server at {supysonic.url} refused user 'alice': Wrong username or password — check "
        "mediaserver.user and mediaserver.password (PLAYLISTGEN_MEDIASERVER__PASSWORD)"]
    url = f"http://127.0.0.1:{free_port()}"
    doctor = run_cli("doctor", env=_env(supysonic, tmp_path, url=url), cwd=tmp_path)
    assert f"[FAIL] mediaserver cannot reach media server at {url}: connection refused" in doctor.stdout
