"""Issue 20, points 1–3: tag writing never loses a user's file.

* a file changed while its tags were being written (replaced by another recording, or edited in
  place the way Picard and beets do, with or without keeping its mtime) is left as the user made it;
* a symbolic link stays a link: its target is written only when it lies inside a library folder;
* SIGTERM removes the temporary copy like Ctrl+C, and the copy a kill -9 leaves behind is removed
  by the next run (and by the library's reconcile) once no writer holds it.

The change "during the write" is made deterministically: the test wraps the writer's decoder and
acts when the writer verifies its temporary copy, i.e. after the copy was made and before the swap.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mutagen
import pytest

from playlistgen.core.integrations.tags import writer
from playlistgen.core.integrations.tags.writer import write_tags
from tests import audio_fixtures as af
from tests.conftest import child_env, run_cli
from tests.helpers import scanned_long_file
from tests.tagged_library import make_song, set_tags

ENV = {"PLAYLISTGEN_ANALYSIS__PRESET": "fast", "PLAYLISTGEN_ANALYSIS__WORKERS": "1"}
RECORD = {"bpm": 121.6, "key": "F#", "scale": "minor", "camelot": "11A", "loudness_lufs": -12.5,
          "tags": {"msd": {"jazz": 0.4, "chill": 0.3}}}
COPY_GLOB = ".*.playlistgen-*"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def during_verification(monkeypatch: pytest.MonkeyPatch, action) -> list[str]:  # type: ignore[no-untyped-def]
    """Run ``action()`` once, when the writer decodes its temporary copy (copy made, swap to come)."""
    real = writer._decode
    seen: list[str] = []

    def decode(path: str):  # type: ignore[no-untyped-def]
        if os.path.basename(path).startswith(".") and not seen:
            seen.append(path)
            action()
        return real(path)

    monkeypatch.setattr(writer, "_decode", decode)
    return seen


# ---- 1: the user's newer file always wins --------------------------------------------------------
def test_file_replaced_by_another_recording_during_the_write_is_kept(tmp_path: Path, monkeypatch) -> None:
    path = make_song(tmp_path / "big.flac", 1)
    other = make_song(tmp_path / "incoming" / "other.flac", 7)
    set_tags(other, title="Another Recording")
    expected = sha(other)
    seen = during_verification(monkeypatch, lambda: os.replace(other, path))

    out = write_tags(str(path), RECORD)
    assert seen, "the writer never verified a copy"
    assert out.status == "skipped" and "changed while" in out.reason, out
    assert sha(path) == expected                     # the other recording, untouched
    assert list(tmp_path.glob(COPY_GLOB)) == []


def test_in_place_title_edit_during_the_write_is_kept(tmp_path: Path, monkeypatch) -> None:
    path = make_song(tmp_path / "song.flac", 2)
    set_tags(path, title="Old title")

    def picard() -> None:
        set_tags(path, title="New title")            # mutagen saves in place, like Picard and beets

    during_verification(monkeypatch, picard)
    out = write_tags(str(path), RECORD)
    assert out.status == "skipped" and "changed while" in out.reason, out
    tags = mutagen.File(path)
    assert tags["TITLE"] == ["New title"] and "BPM" not in tags


def test_in_place_edit_that_keeps_size_and_mtime_is_kept(tmp_path: Path, monkeypatch) -> None:
    """Picard's "preserve timestamps": same size, mtime put back — the inode's ctime still tells."""
    path = make_song(tmp_path / "song.flac", 3)
    set_tags(path, title="Title A")
    before = path.stat()

    def edit_keeping_mtime() -> None:
        set_tags(path, title="Title B")              # same length: same size
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        after = path.stat()
        assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns,
                                                                     before.st_ino)

    during_verification(monkeypatch, edit_keeping_mtime)
    out = write_tags(str(path), RECORD)
    assert out.status == "skipped", out
    assert mutagen.File(path)["TITLE"] == ["Title B"]


def test_file_replaced_since_its_analysis_is_not_given_the_old_analysis(tmp_path: Path) -> None:
    """The record names the audio it describes: another recording at that path is left alone."""
    from playlistgen.core.audio.fingerprint import audio_fingerprint

    path = make_song(tmp_path / "song.flac", 5)
    analysed = {**RECORD, "audio_fingerprint": audio_fingerprint(path)}
    other = make_song(tmp_path / "other.flac", 9)
    os.replace(other, path)
    digest = sha(path)
    out = write_tags(str(path), analysed)
    assert out.status == "skipped" and "audio changed since it was analysed" in out.reason, out
    assert sha(path) == digest
    # the same recording retagged (another copy of it, here) keeps its audio: it is written
    same = make_song(tmp_path / "same.flac", 5)
    set_tags(same, title="Retagged")
    assert write_tags(str(same), analysed).status == "written"


def test_unchanged_file_is_still_written(tmp_path: Path) -> None:
    path = make_song(tmp_path / "song.flac", 4)
    out = write_tags(str(path), RECORD)
    assert out.status == "written", out
    assert mutagen.File(path)["BPM"] == ["122"]


# ---- 2: a symbolic link stays a link ---------------------------------------------------------------
def test_link_to_a_file_outside_the_library_is_left_alone(tmp_path: Path) -> None:
    library, elsewhere = tmp_path / "library", tmp_path / "elsewhere"
    target = make_song(elsewhere / "song.flac", 5)
    link = library / "song.flac"
    library.mkdir()
    link.symlink_to(target)
    digest = sha(target)

    out = write_tags(str(link), RECORD, library_roots=[str(library)])
    assert out.status == "skipped" and "symbolic link" in out.reason, out
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert sha(target) == digest
    # without any library folder given, a link is never written either
    assert write_tags(str(link), RECORD).status == "skipped" and link.is_symlink()


def test_link_to_a_file_inside_the_library_writes_the_target(tmp_path: Path) -> None:
    library = tmp_path / "library"
    target = make_song(library / "Artist" / "song.flac", 6)
    link = library / "Favourites" / "song.flac"
    link.parent.mkdir()
    link.symlink_to(os.path.relpath(target, link.parent))

    out = write_tags(str(link), RECORD, library_roots=[str(library)])
    assert out.status == "written", out
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert mutagen.File(target)["BPM"] == ["122"]
    assert list(link.parent.glob(COPY_GLOB)) == [] and list(target.parent.glob(COPY_GLOB)) == []


# ---- 3: no temporary copy outlives its writer -----------------------------------------------------
def _start_write_and_wait_for_the_copy(tmp_path: Path) -> subprocess.Popen:
    lib = tmp_path / "library"
    proc = subprocess.Popen([sys.executable, "-m", "playlistgen", "tags", "write", "library",
                             "--fields", "bpm,key"], cwd=tmp_path, env=child_env(ENV),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(lib.glob(COPY_GLOB)) and proc.poll() is None:
        time.sleep(0.002)
    assert list(lib.glob(COPY_GLOB)), "the temporary copy never appeared"
    return proc


def test_sigterm_removes_the_copy_like_ctrl_c(tmp_path: Path) -> None:
    path = scanned_long_file(tmp_path)
    digest = sha(path)
    proc = _start_write_and_wait_for_the_copy(tmp_path)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert list((tmp_path / "library").glob(".*")) == []
    assert sha(path) == digest
    assert proc.returncode == 128 + signal.SIGTERM and "terminated" in err, (proc.returncode, err)


def test_copy_left_by_kill_9_is_removed_by_the_next_run(tmp_path: Path) -> None:
    path = scanned_long_file(tmp_path)
    digest = sha(path)
    proc = _start_write_and_wait_for_the_copy(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    left = list((tmp_path / "library").glob(COPY_GLOB))
    assert len(left) == 1 and sha(path) == digest   # nothing can run on kill -9: the copy stays
    old = time.time() - 3600                      # the next run, a while later
    os.utime(left[0], (old, old))
    res = run_cli("tags", "write", "library", "--fields", "bpm,key", cwd=tmp_path, env=ENV, timeout=300)
    assert res.returncode == 0, res.stderr
    assert f"removed a temporary copy left by an interrupted write: {left[0]}" in res.stderr, res.stderr
    assert not left[0].exists()
    assert list((tmp_path / "library").glob(".*")) == []
    assert mutagen.File(path)["BPM"]


def test_stale_copies_are_removed_only_when_ours_old_and_unlocked(tmp_path: Path) -> None:
    from playlistgen.core.library.tag_copies import remove_stale_copies

    folder = tmp_path / "Album"
    folder.mkdir()
    old = time.time() - 3600

    def copy(name: str, age: float | None = old) -> Path:
        p = folder / name
        p.write_bytes(b"x" * 100)
        if age is not None:
            os.utime(p, (age, age))
        return p

    stale = copy(".01 song.playlistgen-ab12_x9z.flac")
    fresh = copy(".02 song.playlistgen-cd34efgh.flac", age=None)        # a writer may just have made it
    locked = copy(".03 song.playlistgen-ij56klmn.mp3")
    users = [copy(".01 song.flac"), copy(".upload-abcd.part"), copy("song.playlistgen-ab12cd34.flac"),
             copy(".x.playlistgen-TOOLONGNAME.flac")]
    link = folder / ".04 song.playlistgen-op78qrst.flac"
    link.symlink_to(users[0])
    holder = subprocess.Popen([sys.executable, "-c",
                               "import fcntl, os, sys, time\n"
                               f"fd = os.open({str(locked)!r}, os.O_RDONLY)\n"
                               "fcntl.flock(fd, fcntl.LOCK_EX)\n"
                               "print('locked', flush=True)\n"
                               "sys.stdin.read()\n"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        removed = remove_stale_copies(str(folder))
    finally:
        holder.communicate("", timeout=30)
    assert removed == [str(stale)]
    assert not stale.exists() and fresh.exists() and locked.exists() and link.is_symlink()
    assert all(p.exists() for p in users)
    # the lock was released with its holder: now the copy is a leftover too
    assert remove_stale_copies(str(folder)) == [str(locked)]
    fd = os.open(fresh, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)   # nobody held the fresh one: only its age kept it
    os.close(fd)


def test_reconcile_removes_a_stale_copy_and_keeps_the_files(tmp_path: Path, database) -> None:
    from playlistgen.config import LibrarySettings
    from playlistgen.core.library.reconcile import Library

    root = tmp_path / "music"
    song = make_song(root / "Album" / "song.flac", 8)
    leftover = root / "Album" / ".song.playlistgen-zz99yy88.flac"
    shutil.copy(song, leftover)
    old = time.time() - 3600
    os.utime(leftover, (old, old))
    report = Library(database, LibrarySettings(paths=[str(root)]), "v").reconcile()
    assert report.seen == 1 and report.queued == 1
    assert report.stale_copies_removed == 1
    assert not leftover.exists() and song.exists()


def test_sigterm_to_the_whole_service_removes_the_writers_copy(tmp_path: Path, daemon_factory) -> None:
    """systemd stops a service by sending SIGTERM to every process in it: the tag writer's process
    (serve with library.write_tags) removes its copy instead of dying with it."""
    import psutil

    lib = tmp_path / "library"
    lib.mkdir()
    path = af.write_long(lib / "long.flac", 6.0)
    daemon = daemon_factory("--library", str(lib), env={**ENV, "PLAYLISTGEN_LIBRARY__WRITE_TAGS": "true",
                                                        "PLAYLISTGEN_LIBRARY__WATCH": "false"})
    daemon.wait_ready(60)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(lib.glob(COPY_GLOB)) and daemon.proc.poll() is None:
        time.sleep(0.002)
    assert list(lib.glob(COPY_GLOB)), "the writer's copy never appeared:\n" + daemon.log_path.read_text()
    group = [daemon.proc.pid, *(c.pid for c in psutil.Process(daemon.proc.pid).children(recursive=True))]
    for pid in group:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    assert daemon.stop(timeout=60) == 0, daemon.log_path.read_text()
    psutil.wait_procs([p for p in map(_process, group) if p is not None], timeout=60)
    assert list(lib.glob(".*")) == [], daemon.log_path.read_text()
    assert mutagen.File(path) is not None         # the original, or the complete tagged copy


def _process(pid: int):  # type: ignore[no-untyped-def]
    import psutil

    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None
