"""Issue 10, the daemon/core defects, each on a real daemon with real files:

* a full disk under the database (a real 2 MB tmpfs): results wait in memory, /health is
  degraded with the writer's error, everything is stored once space returns;
* valid audio that used to fail as truncated (streamed WAV, chained Ogg with a rate change,
  concatenated Opus, MP3 with a rate change);
* two daemons (or serve + scan) on one database;
* a library root that vanishes, empties (unmounted) or comes back;
* a read-only database (a read-only bind mount, and a read-only file for a normal user);
* files nobody may read (the daemon runs as `nobody`: as root chmod 000 does not stop reads).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import soundfile as sf

from playlistgen.core.audio.decode import open_audio
from playlistgen.core.storage.db import connect
from tests import audio_fixtures as af
from tests.conftest import REPO, child_env, free_port, run_cli
from tests.helpers import ENV as DAEMON_ENV
from tests.helpers import make_song, wait_for

ENV = {**DAEMON_ENV, "PLAYLISTGEN_ANALYSIS__WORKERS": "1", "PLAYLISTGEN_LIBRARY__SETTLE_SECONDS": "0.3"}


def health(daemon) -> dict:  # type: ignore[no-untyped-def]
    return requests.get(daemon.url + "/health", timeout=5).json()


def counts(daemon) -> dict:  # type: ignore[no-untyped-def]
    return requests.get(daemon.url + "/api/v1/library/status", timeout=5).json()["counts"]


def rows(db_path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = connect(db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _mount(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MB filesystem (tmpfs) that can really be filled."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    proc = _mount(["-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)])
    if proc.returncode:
        pytest.skip(f"cannot mount a 2 MB tmpfs for a real full disk (needs root): {proc.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(folder: Path) -> Path:
    """Write a filler file until the filesystem refuses (ENOSPC)."""
    filler = folder / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


# ---- 3: a full disk under the database ---------------------------------------------------------
def test_disk_full_waits_reports_and_recovers(tmp_path: Path, small_fs: Path, daemon_factory) -> None:
    library = tmp_path / "library"
    for i in range(3):
        make_song(library / f"long {i}.wav", i, seconds=90.0)
    db = small_fs / "playlistgen.db"
    daemon = daemon_factory("--library", str(library), "--db", str(db), env=ENV)
    daemon.wait_ready()
    # fill the disk as soon as the first file is in flight: its result (and the others') arrive later
    wait_for(lambda: counts(daemon)["analysing"] >= 1, 60, "a file in flight")
    filler = fill(small_fs)
    h = wait_for(lambda: (lambda h: h if h["components"]["analysis"]["unsaved_results"] else None)(health(daemon)),
                 60, "a result the disk refused")
    assert h["status"] == "degraded" and h["ready"] is True
    writer = h["components"]["database"]["writer"]
    assert writer["degraded"] and writer["consecutive_failures"] >= 1
    assert "full" in writer["last_error"].lower()
    assert any("database writes failing" in p for p in h["problems"])
    assert requests.get(daemon.url + "/health", timeout=5).status_code == 200  # alive, not down

    filler.unlink()  # space returns: no restart needed
    wait_for(lambda: counts(daemon)["done"] == 3, 120, "all three stored after space returned")
    h = wait_for(lambda: (lambda h: h if h["status"] == "ok" else None)(health(daemon)), 30, "health ok again")
    assert h["problems"] == [] and not h["components"]["database"]["writer"]["degraded"]
    assert rows(db, "SELECT count(*) FROM files WHERE status = 'analysing'") == [(0,)]
    assert rows(db, "SELECT count(*) FROM features") == [(3,)]   # each analysed and stored once
    assert "Traceback" not in daemon.log_path.read_text()
    assert daemon.stop() == 0


def test_start_on_a_full_disk_is_one_line_not_a_traceback(tmp_path: Path, small_fs: Path) -> None:
    """No room even for SQLite's -shm file: serve refuses with one line naming the cause."""
    library = tmp_path / "library"
    make_song(library / "a.wav", 1)
    db = small_fs / "playlistgen.db"
    assert run_cli("db", "init", "--db", str(db)).returncode == 0
    fill(small_fs)
    proc = run_cli("serve", "--library", str(library), "--db", str(db), "--port", str(free_port()),
                   cwd=tmp_path, env=ENV, timeout=60)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "disk full" in lines[-1] and "playlistgen.db" in lines[-1] and "free space" in lines[-1], lines


def test_startup_reconcile_on_a_full_disk_degrades_then_recovers(tmp_path: Path, small_fs: Path,
                                                                 daemon_factory) -> None:
    """Room for the -shm file but not for a WAL frame: the daemon starts, the start-up reconcile
    cannot be written (one log line, no traceback, /health degraded), and is retried by itself."""
    library = tmp_path / "library"
    make_song(library / "a.wav", 1)
    db = small_fs / "playlistgen.db"
    assert run_cli("db", "init", "--db", str(db)).returncode == 0
    reserve = small_fs / "reserve"
    reserve.write_bytes(b"\0" * 9 * 4096)   # the 32 KB -shm fits in this, a WAL frame does not
    filler = fill(small_fs)
    reserve.unlink()
    daemon = daemon_factory("--library", str(library), "--db", str(db),
                            env=dict(ENV, PLAYLISTGEN_LIBRARY__RESCAN_INTERVAL_S="2"))
    daemon.wait_ready()
    h = wait_for(lambda: (lambda h: h if h["components"]["library"]["storage_error"] else None)(health(daemon)),
                 30, "the refused reconcile reported")
    assert h["status"] == "degraded" and any(p.startswith("library: scan: cannot write") for p in h["problems"])
    filler.unlink()
    wait_for(lambda: counts(daemon)["done"] == 1, 90, "analysed once space returned")
    wait_for(lambda: health(daemon)["status"] == "ok", 30, "healthy again")
    log = daemon.log_path.read_text()
    assert "Traceback" not in log and "library update failed: scan: cannot write to the database" in log


# ---- 4: valid audio that is not truncated ------------------------------------------------------
@pytest.fixture(scope="module")
def odd_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, float]]:
    """{name: (file, true duration)} for valid files a first decoder gets wrong."""
    d = tmp_path_factory.mktemp("odd")
    out = {}
    plain = af.write(d / "plain.wav", af.song(12, 22050, 2), 22050, subtype="PCM_16")
    out["streamed wav"] = (af.streamed_wav(plain, d / "streamed.wav"), 12.0)
    a = af.write(d / "a.ogg", af.song(10, 44100, 2), 44100)
    b = af.write(d / "b.ogg", af.song(10, 48000, 2, bpm=100), 48000)
    out["chained ogg 44.1->48 kHz"] = (af.chained_ogg(d / "chained.ogg", [a, b]), 20.0)
    m1 = af.write(d / "m1.mp3", af.song(10, 44100, 2), 44100)
    m2 = af.write(d / "m2.mp3", af.song(10, 48000, 2, bpm=100), 48000)
    out["mp3 44.1->48 kHz"] = (af.concatenated(d / "ratechange.mp3", m1, m2), 20.0)
    o1 = af.write(d / "o1.opus", af.song(20, 48000, 1), 48000)
    o2 = af.write(d / "o2.opus", af.song(20, 48000, 2, bpm=90), 48000)
    out["concatenated opus (mono+stereo)"] = (af.concatenated(d / "concat.opus", o1, o2), 40.0)
    return out


def test_odd_but_valid_files_decode_fully(odd_files: dict) -> None:
    for name, (path, seconds) in odd_files.items():
        with open_audio(path, (8000,)) as audio:
            frames = sum(len(chunk.mono[8000]) for chunk in audio)
        assert abs(audio.duration_s - seconds) < 0.2, (name, audio.duration_s)
        assert abs(frames / 8000 - seconds) < 0.2, name


def test_twelve_minute_chained_opus_decodes_past_640_s(tmp_path: Path) -> None:
    """The one-hour concatenated Opus failed after 640 s. The same code path (one libsndfile pass
    per link, links found from the page headers) at 12 minutes: 12 links of 60 s, each with its
    own serial number, so the test stays cheap (about 2 s)."""
    link = tmp_path / "link.opus"
    sf.write(str(link), af.song(60, 48000, 1), 48000, format="OGG", subtype="OPUS", compression_level=1.0)
    long = af.chained_ogg(tmp_path / "twelve minutes.opus", [link], repeat=12)
    with open_audio(long, (8000,)) as audio:
        last = 0.0
        for chunk in audio:
            last = chunk.start_s
    assert audio.duration_s == pytest.approx(720.0, abs=0.1) and last > 700


def test_truncated_file_still_fails_as_truncated(tmp_path: Path) -> None:
    """The second decoder is asked, but a really cut file stays a failure with its reason."""
    from playlistgen.errors import AnalysisError

    good = af.write(tmp_path / "good.flac", af.song(20, 22050, 1), 22050)
    cut = af.truncated(good, tmp_path / "cut.flac", good.stat().st_size // 2)
    with pytest.raises(AnalysisError, match="truncated|decode error"), open_audio(cut, (8000,)) as audio:
        for _ in audio:
            pass


def test_odd_files_analysed_by_the_cli(odd_files: dict) -> None:
    paths = [str(p) for p, _ in odd_files.values()]
    proc = run_cli("analyze", *paths, "--preset", "fast", "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout.strip()
    results = json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines()]
    by_path = {r["path"]: r for r in results}
    for name, (path, seconds) in odd_files.items():
        result = by_path[str(path)]
        assert not result.get("error"), (name, result.get("error"))
        assert result["duration_s"] == pytest.approx(seconds, abs=0.2), name


# ---- 7: one daemon per database ----------------------------------------------------------------
def test_second_daemon_and_scan_refuse_with_the_first_ones_pid(tmp_path: Path, daemon_factory) -> None:
    library = tmp_path / "library"
    for i in range(3):
        make_song(library / f"{i}.wav", i)
    first = daemon_factory("--library", str(library), env=ENV)
    first.wait_ready()
    second = subprocess.run([sys.executable, "-m", "playlistgen", "serve", "--library", str(library),
                             "--port", str(free_port())], cwd=tmp_path, env=child_env(ENV),
                            capture_output=True, text=True, timeout=60)
    assert second.returncode != 0
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and f"pid {first.proc.pid}" in lines[0] and "Traceback" not in second.stderr, lines
    scan = run_cli("scan", str(library), "--preset", "fast", cwd=tmp_path, env=ENV)
    assert scan.returncode != 0 and f"pid {first.proc.pid}" in scan.stderr and "Traceback" not in scan.stderr
    wait_for(lambda: counts(first)["done"] == 3, 120, "the first daemon finishes alone")
    assert rows(tmp_path / "playlistgen.db", "SELECT count(*) FROM features") == [(3,)]
    assert first.stop() == 0
    again = run_cli("scan", str(library), "--preset", "fast", cwd=tmp_path, env=ENV)  # lock released
    assert again.returncode == 0, again.stderr


# ---- 8: a vanished, emptied or unreadable library root -----------------------------------------
def test_vanished_or_unmounted_root_does_not_empty_the_library(tmp_path: Path, daemon_factory) -> None:
    library = tmp_path / "library"
    library.mkdir()
    if _mount(["-t", "tmpfs", "-o", "size=8m", "tmpfs", str(library)]).returncode:
        pytest.skip("cannot mount a tmpfs as the library root (needs root)")
    try:
        for i in range(3):
            make_song(library / f"{i}.wav", i)
        env = dict(ENV, PLAYLISTGEN_LIBRARY__RESCAN_INTERVAL_S="2")
        daemon = daemon_factory("--library", str(library), env=env)
        daemon.wait_ready()
        wait_for(lambda: counts(daemon)["done"] == 3, 120, "3 analysed")

        # unplugged: the mount goes away, the mount point is an empty folder
        subprocess.run(["umount", "-l", str(library)], check=True)
        h = wait_for(lambda: (lambda h: h if h["components"]["library"]["unavailable_roots"] else None)(
            health(daemon)), 30, "root reported unavailable")
        assert h["status"] == "degraded" and any(f"library root {library} unavailable" in p for p in h["problems"])
        time.sleep(4.5)  # two more periodic reconciles while it is away
        c = counts(daemon)
        assert c["missing"] == 0 and c["done"] == 3, c

        # renamed away entirely: missing folder, same protection
        library.rmdir()
        wait_for(lambda: "missing" in " ".join(health(daemon)["problems"]), 30, "missing root reported")
        assert counts(daemon)["missing"] == 0

        # back: resumes by itself, nothing re-analysed
        library.mkdir()
        assert _mount(["-t", "tmpfs", "-o", "size=8m", "tmpfs", str(library)]).returncode == 0
        for i in range(3):
            make_song(library / f"{i}.wav", i)
        wait_for(lambda: health(daemon)["status"] == "ok", 30, "healthy again")
        c = counts(daemon)
        assert c["missing"] == 0 and c["done"] == 3 and c["pending"] == 0, c
        assert rows(tmp_path / "playlistgen.db", "SELECT count(*) FROM features") == [(3,)]
        assert "Traceback" not in daemon.log_path.read_text()
    finally:
        subprocess.run(["umount", "-l", str(library)], capture_output=True)


# ---- 9 (CLI): a read-only database -------------------------------------------------------------
def test_read_only_database_is_one_line_with_the_fix(tmp_path: Path) -> None:
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    library = tmp_path / "library"
    make_song(library / "a.wav", 1)
    assert run_cli("db", "init", "--db", str(rw / "playlistgen.db")).returncode == 0
    if _mount(["--bind", str(rw), str(ro)]).returncode:
        pytest.skip("cannot bind-mount (needs root) for a read-only database")
    try:
        if _mount(["-o", "remount,bind,ro", str(ro)]).returncode:
            pytest.skip("cannot remount read-only")
        db = str(ro / "playlistgen.db")
        for args in (["serve", "--library", str(library), "--db", db, "--port", str(free_port())],
                     ["scan", str(library), "--db", db, "--preset", "fast"],
                     ["db", "init", "--db", db], ["db", "vacuum", "--db", db]):
            proc = run_cli(*args, cwd=tmp_path, env=ENV, timeout=60)
            lines = proc.stderr.strip().splitlines()
            assert proc.returncode != 0, args
            assert "Traceback" not in proc.stderr and "ReadOnlyError" not in proc.stderr, proc.stderr
            assert len(lines) == 1 and "read-only" in lines[0] and "playlistgen.db" in lines[0], (args, lines)
            assert "writable" in lines[0], lines  # the fix
    finally:
        subprocess.run(["umount", "-l", str(ro)], capture_output=True)


# ---- 10: unreadable files (the daemon runs as `nobody`) ----------------------------------------
@pytest.fixture
def nobody_dir() -> Iterator[Path]:
    """A work folder `nobody` owns (pytest's tmp_path is root-only), removed afterwards."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run the daemon as an unprivileged user "
                    "(as root, chmod 000 does not stop reads)")
    import pwd

    user = pwd.getpwnam("nobody")
    folder = Path(tempfile.mkdtemp(prefix="playlistgen-nobody-"))
    folder.chmod(0o755)
    os.chown(folder, user.pw_uid, user.pw_gid)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_unreadable_file_is_listed_as_failed_and_retried_when_readable(nobody_dir: Path) -> None:
    import pwd

    user = pwd.getpwnam("nobody")
    library = nobody_dir / "library"
    good, locked = make_song(library / "good.wav", 1), make_song(library / "locked.wav", 2)
    for path in (library, good, locked, nobody_dir):
        os.chown(path, user.pw_uid, user.pw_gid)
    locked.chmod(0o000)
    port = free_port()
    # analysis in a thread: `nobody` may not be allowed to exec the venv's interpreter a second
    # time (here it links into /root); what is tested is the reconcile and the failed list
    env = child_env(dict(ENV, HOME=str(nobody_dir), PLAYLISTGEN_LIBRARY__RESCAN_INTERVAL_S="2",
                         PLAYLISTGEN_ANALYSIS__EXECUTOR="thread",
                         PLAYLISTGEN_ANALYSIS__MODELS_DIR=str(REPO / "models")))
    log_path = nobody_dir / "daemon.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
                                 sys.executable, "-m", "playlistgen", "serve", "--library", str(library),
                                 "--port", str(port)], cwd=nobody_dir, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        def failed() -> list:
            try:
                return requests.get(url + "/api/v1/tracks/failed", timeout=5).json()["failed"]
            except (requests.ConnectionError, KeyError):
                assert proc.poll() is None, log_path.read_text()
                return []

        entries = wait_for(failed, 60, "the unreadable file listed as failed")
        assert len(entries) == 1 and entries[0]["path"] == str(locked)
        assert "unreadable" in entries[0]["reason"] and "Permission denied" in entries[0]["reason"]
        locked.chmod(0o644)   # neither size nor mtime changes: the periodic reconcile still notices
        wait_for(lambda: not failed(), 60, "the file retried once readable")
        wait_for(lambda: requests.get(url + "/api/v1/library/status", timeout=5).json()["counts"]["done"] == 2,
                 120, "both analysed")
    finally:
        proc.terminate()
        proc.wait(20)
    assert "Traceback" not in log_path.read_text()


def test_unreadable_folder_inside_a_root_keeps_its_files(nobody_dir: Path) -> None:
    """A sub-folder that cannot be listed: its known files are not marked missing."""
    import pwd

    user = pwd.getpwnam("nobody")
    library = nobody_dir / "library"
    make_song(library / "sub" / "a.wav", 1)
    make_song(library / "b.wav", 2)
    for path in (library, library / "sub", library / "sub" / "a.wav", library / "b.wav"):
        os.chown(path, user.pw_uid, user.pw_gid)
    script = (
        "import os, sys\n"
        "from playlistgen.config import LibrarySettings\n"
        "from playlistgen.core.storage.db import Database\n"
        "from playlistgen.core.library.reconcile import Library\n"
        f"db = Database({str(nobody_dir / 'x.db')!r})\n"
        f"lib = Library(db, LibrarySettings(paths=[{str(library)!r}]), 'v')\n"
        "lib.reconcile()\n"
        f"os.chmod({str(library / 'sub')!r}, 0)\n"
        "r = lib.reconcile()\n"
        "print(r.missing, db.query(\"SELECT count(*) FROM files WHERE status = 'missing'\")[0][0])\n"
        "db.close()\n")
    proc = subprocess.run(["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
                           sys.executable, "-c", script], cwd=nobody_dir, env=child_env({"HOME": str(nobody_dir)}),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0", "0"], proc.stdout
