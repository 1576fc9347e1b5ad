"""The OpenAPI description matches the server exactly (issue 21, point 17): schemathesis, with
every check, against a real `playlistgen serve` (a real scanned library, the media-server link
and the /rest proxy in front of a real supysonic), keyless and with api.key. It must report 0
failures; a failing check fails the test with schemathesis' own report.

Bounded: deterministic generation (the same cases every run), EXAMPLES cases per operation in
the examples and fuzzing phases, one worker, no response-time limit (a shared 2-core machine):
about 20-40 s for both servers. No operation is left out: the destructive ones (delete, scan,
upload, cache clear, re-link) act on the test's own copy of the library database. Measured
with 30 cases and the coverage phase too (EXAMPLES = 30, phases examples,coverage,fuzzing):
0 failures as well, in about 2 minutes."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import Daemon

EXAMPLES = 5
KEY = "schemathesis-key-123"
CONFIG = Path(__file__).with_name("schemathesis.toml")   # the answers OpenAPI cannot state, each with why


@pytest.fixture(scope="module", params=["keyless", "keyed"])
def served(request, supysonic, supysonic_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator:  # type: ignore[no-untyped-def]
    """A real daemon over a copy of the analysed supysonic library (destructive operations —
    delete, scan, cache clear, link — act on this copy only; uploads land in a folder of its own)."""
    root = tmp_path_factory.mktemp(f"schemathesis-{request.param}")
    db = root / "pg.db"
    shutil.copy(supysonic_db, db)
    uploads = root / "uploads"   # the first library folder: uploads land here, not in supysonic's shared folder
    uploads.mkdir()
    (root / "playlists").mkdir()
    env = {"PLAYLISTGEN_MEDIASERVER__URL": supysonic.url, "PLAYLISTGEN_MEDIASERVER__USER": supysonic.user,
           "PLAYLISTGEN_MEDIASERVER__PASSWORD": supysonic.password, "PLAYLISTGEN_MEDIASERVER__PROXY": "true",
           "PLAYLISTGEN_PLAYLISTS__OUTPUT_DIR": str(root / "playlists"), "PLAYLISTGEN_LIBRARY__WATCH": "false"}
    if request.param == "keyed":
        env["PLAYLISTGEN_API__KEY"] = KEY
    daemon = Daemon(root, "--library", str(uploads), "--library", str(supysonic.library), "--db", str(db),
                    "--preset", "fast", "--workers", "1", env=env)
    try:
        daemon.wait_ready(60)
        headers = {"X-API-Key": KEY} if request.param == "keyed" else {}
        linked = requests.post(daemon.url + "/api/v1/mediaserver/link?wait=true", headers=headers, timeout=60)
        assert linked.status_code == 200, linked.text
        yield request.param, daemon, root
    finally:
        daemon.stop()


def run_schemathesis(url: str, workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
            url + "/api/v1/openapi.json",
            "--checks", "all", "--phases", "examples,fuzzing", "--continue-on-failure", "--max-examples", str(EXAMPLES),
            "--generation-deterministic", "--workers", "1", "--no-color",
            "--request-timeout", "60", "--suppress-health-check", "all", "--warnings", "off", *extra]
    return subprocess.run(argv, cwd=workdir, capture_output=True, text=True, timeout=600)


def test_schemathesis_reports_no_failure(served) -> None:  # type: ignore[no-untyped-def]
    mode, daemon, root = served
    extra = ("--header", f"X-API-Key: {KEY}") if mode == "keyed" else ()
    proc = run_schemathesis(daemon.url, root, *extra)
    (root / "schemathesis.log").write_text(proc.stdout + proc.stderr)   # the whole report, kept with the run
    summary = "\n".join(line for line in proc.stdout.splitlines() if re.search(r"fail|error|passed", line, re.I))
    assert proc.returncode == 0, f"{mode}: schemathesis found failures\n{summary}\n\n{proc.stdout[-20000:]}" \
                                 f"{proc.stderr[-3000:]}"
    # every documented operation was tested (none skipped for a schema schemathesis cannot read)
    selected = re.search(r"Selected: (\d+)/(\d+)", proc.stdout)
    tested = re.search(r"Tested: (\d+)", proc.stdout)
    assert selected and tested and selected.group(1) == selected.group(2) == tested.group(1), proc.stdout[-3000:]
    documented = requests.get(daemon.url + "/api/v1/openapi.json", headers=dict([extra[1].split(": ")]) if extra
                              else {}, timeout=10).json()["paths"]
    # schemathesis leaves out the document it loads the description from (GET /api/v1/openapi.json)
    assert int(tested.group(1)) == sum(len(ops) for ops in documented.values()) - 1


# ---- the points of the issue, one by one, through the Flask app (fast) ----

def test_a_keyless_server_declares_no_security(client) -> None:  # type: ignore[no-untyped-def]
    spec = client.get("/api/v1/openapi.json").get_json()
    assert "security" not in spec and "securitySchemes" not in spec["components"]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert "security" not in op and "401" not in op["responses"], (method, path)


def test_a_keyed_server_declares_what_it_enforces_and_which_routes_are_open(make_app) -> None:  # type: ignore[no-untyped-def]
    from playlistgen.config import Settings

    settings = Settings()
    settings.api.key = KEY
    client = make_app(settings).api.test_client()
    assert client.get("/api/v1/openapi.json").status_code == 401
    spec = client.get("/api/v1/openapi.json", headers={"X-API-Key": KEY}).get_json()
    assert set(spec["components"]["securitySchemes"]) == {"apiKey", "bearer"}
    assert spec["security"] == [{"apiKey": []}, {"bearer": []}]   # either one
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            url = re.sub(r"\{\w+\}", "1", path)
            answer = client.open(url, method=method.upper())
            if op.get("security") == []:
                assert answer.status_code != 401 and "401" not in op["responses"], (method, path)
            else:
                assert answer.status_code == 401 and "401" in op["responses"], (method, path)
    assert spec["paths"]["/health"]["get"]["security"] == [] and spec["paths"]["/dashboard"]["get"]["security"] == []


def test_schema_violating_requests_are_rejected(client) -> None:  # type: ignore[no-untyped-def]
    for url in ("/api/v1/mediaserver/link?wait=null", "/api/similar_tracks?item_id=1&eliminate_duplicates=null"):
        method = client.post if "link" in url else client.get
        answer = method(url)
        assert answer.status_code == 400, (url, answer.get_json())
        assert "true or false" in answer.get_json()["error"]["message"]
    for url in ("/api/v1/playlists", "/api/v1/playlists/schedule/run"):
        answer = client.post(url, data="null", content_type="application/json")
        assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "bad_request", url


def test_schema_valid_requests_are_not_refused_as_malformed(client) -> None:  # type: ignore[no-untyped-def]
    spec = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path in ("/api/similar_tracks", "/api/find_path"):
        for param in spec[path]["get"]["parameters"]:
            if param["schema"].get("type") == "string" or "properties" in param["schema"]:
                schema = param["schema"]
                text = schema.get("properties", {}).get("item_id", schema)
                assert text.get("minLength", 0) >= 1, (path, param["name"])
    # a whole number written as 5.0 is a JSON integer: the server takes it as one
    answer = client.post("/api/v1/playlists", json={"strategy": "random", "size": 3.0, "random_seed": 7.0})
    assert answer.status_code == 200, answer.get_json()
