"""POST /api/v1/library/upload through Flask's test client, into a real library folder."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from playlistgen.config import Settings
from playlistgen.core.library.reconcile import Library
from playlistgen.core.storage.db import Database


@pytest.fixture
def setup(tmp_path: Path, make_app) -> Iterator[tuple]:  # type: ignore[no-untyped-def]
    library = tmp_path / "music"
    library.mkdir()
    settings = Settings()
    settings.library.paths = [str(library)]
    settings.api.max_upload_mb = 1
    db = Database(tmp_path / "test.db")
    yield make_app(settings, db).api.test_client(), library, db, settings
    db.close()


def post(client, name: str, data: bytes, field: str = "file"):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/library/upload", data={field: (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(".upload-")]


def test_good_upload_is_stored_and_found_by_reconcile(setup) -> None:  # type: ignore[no-untyped-def]
    client, library, db, settings = setup
    payload = b"ID3" + bytes(range(256)) * 2000  # several parser buffers long
    r = post(client, "Björk – Jóga (Live).MP3", payload)
    assert r.status_code == 201, r.get_json()
    stored = Path(r.get_json()["path"])
    assert stored.parent == library.resolve() and stored.name == "Björk – Jóga (Live).MP3"
    assert stored.read_bytes() == payload and r.get_json()["size"] == len(payload)
    assert stored.stat().st_mode & 0o044  # readable by the media server
    assert not leftovers(library)
    again = post(client, "Björk – Jóga (Live).MP3", b"other")
    assert again.status_code == 201 and Path(again.get_json()["path"]).name == "Björk – Jóga (Live) (1).MP3"
    assert stored.read_bytes() == payload  # never overwritten
    report = Library(db, settings.library, "test").reconcile()
    assert report.queued == 2
    assert {p for (p,) in db.query("SELECT path FROM files")} == {str(stored), again.get_json()["path"]}


def test_path_traversal_names_are_refused(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, library, _, _ = setup
    for name in ("../../x.mp3", "..\\..\\x.mp3", "sub/x.mp3", "/etc/x.mp3"):
        r = post(client, name, b"data")
        assert r.status_code == 400, name
        assert "path" in r.get_json()["error"]["message"]
    assert not list(tmp_path.rglob("x.mp3")) and not leftovers(library)


def test_wrong_extension_empty_and_missing_file_are_refused(setup) -> None:  # type: ignore[no-untyped-def]
    client, library, _, _ = setup
    wrong = post(client, "setup.exe", b"MZ")
    assert wrong.status_code == 400 and ".mp3" in wrong.get_json()["error"]["hint"]
    assert post(client, "song", b"x").status_code == 400
    empty = post(client, "empty.flac", b"")
    assert empty.status_code == 400 and "empty" in empty.get_json()["error"]["message"]
    assert post(client, "a.mp3", b"x", field="other").status_code == 400
    assert client.post("/api/v1/library/upload", data=b"raw", content_type="audio/mpeg").status_code == 400
    assert client.post("/api/v1/library/upload", data=b"--x\r\n", content_type="multipart/form-data; boundary=x")\
        .status_code == 400
    assert not any(library.iterdir())


def test_too_large_upload_gets_413_json(setup) -> None:  # type: ignore[no-untyped-def]
    client, library, _, _ = setup
    r = post(client, "big.flac", b"\0" * (1024 * 1024 + 10))
    assert r.status_code == 413
    assert r.get_json()["error"]["hint"] and not any(library.iterdir())


def test_unicode_and_odd_names_are_sanitised(setup) -> None:  # type: ignore[no-untyped-def]
    client, library, _, _ = setup
    names = {"東京 ナイト.ogg": "東京 ナイト.ogg", ".hidden.mp3": "hidden.mp3", 'a<b>:c|?.mp3': "a_b__c__.mp3",
             "CON.mp3": "_CON.mp3"}
    for raw, expected in names.items():
        r = post(client, raw, b"data")
        assert r.status_code == 201, (raw, r.get_json())
        assert Path(r.get_json()["path"]).name == expected


def test_a_form_with_too_many_parts_is_a_400_not_a_413(setup) -> None:  # type: ignore[no-untyped-def]
    """The body is small: too many form parts is a malformed request, not one too large."""
    client, library, _, _ = setup
    fields = {f"field{i}": "x" for i in range(20)}
    r = client.post("/api/v1/library/upload", data=fields, content_type="multipart/form-data")
    assert r.status_code == 400, r.get_json()
    assert "parts" in r.get_json()["error"]["message"] and not any(library.iterdir())
