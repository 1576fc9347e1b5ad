"""Issue 20, point 15: no NaN or Infinity ever reaches a JSON response — browsers' ``JSON.parse``
rejects both. The app's JSON provider writes a non-finite number as null (and logs where it was);
through the real Flask app on a real SQLite library holding an infinite energy (what an import
without checks stored), and the Subsonic renderer the same way."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from playlistgen.api.subsonic.format import render
from playlistgen.core.storage.db import Database
from tests.feature_data import populate


def strict(text: str | bytes) -> object:
    """json.loads as a browser parses: NaN / Infinity / -Infinity are errors."""
    def refuse(token: str) -> None:
        raise ValueError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_a_stored_infinity_is_served_as_null(tmp_path: Path, make_app,  # type: ignore[no-untyped-def]
                                             caplog: pytest.LogCaptureFixture) -> None:
    db = Database(tmp_path / "inf.db", pool_min=1, pool_max=4)
    ids = populate(db, 3)
    db.write(lambda c: c.execute("UPDATE features SET energy = ?, loudness_lufs = ? WHERE track_id = ?",
                                     (float("inf"), float("-inf"), ids[1])))
    client = make_app(db=db).api.test_client()
    with caplog.at_level(logging.WARNING, logger="playlistgen.api.json_provider"):
        r = client.get(f"/api/v1/tracks/{ids[1]}")
    assert r.status_code == 200
    body = strict(r.data)
    assert body["energy"] is None and body["loudness_lufs"] is None and body["bpm"] is not None
    assert "energy" in caplog.text and "null" in caplog.text
    listing = client.get("/api/v1/tracks?limit=10")
    assert listing.status_code == 200 and len(strict(listing.data)["tracks"]) == 3


@dataclass
class _Point:
    x: float
    y: float


def test_the_provider_writes_every_non_finite_number_as_null(app) -> None:  # type: ignore[no-untyped-def]
    value = {"nan": float("nan"), "list": [1.5, float("inf"), -float("inf")], "numpy": np.float64("inf"),
             "nested": {"deep": [{"v": float("nan")}]}, "point": _Point(1.0, float("nan")), "fine": 2.5}
    text = app.api.json.dumps(value)
    assert strict(text) == {"nan": None, "list": [1.5, None, None], "numpy": None, "nested": {"deep": [{"v": None}]},
                            "point": {"x": 1.0, "y": None}, "fine": 2.5}
    assert app.api.json.dumps({"a": 1.0}) == '{"a": 1.0}'   # finite bodies: written as before


@pytest.mark.parametrize("fmt", ["json", "jsonp"])
def test_subsonic_json_has_no_non_finite_numbers(fmt: str) -> None:
    response = render({"status": "ok", "song": {"bpm": float("inf"), "replayGain": {"trackGain": float("nan")}}},
                      fmt, callback="cb")
    text = response.get_data(as_text=True)
    if fmt == "jsonp":
        assert text.startswith("cb(") and text.endswith(");")
        text = text[3:-2]
    song = strict(text)["subsonic-response"]["song"]
    assert song == {"bpm": None, "replayGain": {"trackGain": None}}


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_request_body_with_a_non_finite_number_is_not_json(client, token: str) -> None:  # type: ignore[no-untyped-def]
    """They are not JSON either way: a body holding one is refused like any malformed body (400)."""
    r = client.post("/api/v1/playlists", data=f'{{"strategy": "random", "duration_min": {token}}}',
                    content_type="application/json")
    assert r.status_code == 400 and "must be JSON" in strict(r.data)["error"]["message"]
    assert client.application.json.loads('{"a": 1.5e3}') == {"a": 1500.0}
