"""LibraryWatcher on the real filesystem with real observers (inotify and polling)."""

from __future__ import annotations

import errno
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from watchdog.observers import Observer

from playlistgen.core.library.paths import is_candidate
from playlistgen.core.library.watcher import LibraryChange, LibraryWatcher
from playlistgen.errors import PlaylistgenError

EXTS = [".mp3", ".flac"]


class Recorder:
    """The ``on_changes`` callback: keeps every batch and when it arrived."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, list[LibraryChange]]] = []
        self._lock = threading.Lock()

    def __call__(self, changes: list[LibraryChange]) -> None:
        with self._lock:
            self.calls.append((time.monotonic(), list(changes)))

    @property
    def changes(self) -> list[LibraryChange]:
        with self._lock:
            return [c for _, batch in self.calls for c in batch]

    def wait_for(self, predicate: Callable[[list[LibraryChange]], bool], timeout: float = 10) -> list[LibraryChange]:
        deadline = time.monotonic() + timeout
        while not predicate(self.changes):
            assert time.monotonic() < deadline, f"timed out; got {self.changes}"
            time.sleep(0.05)
        return self.changes

    def wait_quiet(self, seconds: float, timeout: float = 10) -> list[LibraryChange]:
        """Wait until nothing new has arrived for ``seconds``."""
        start = time.monotonic()
        deadline = start + timeout
        while True:
            with self._lock:
                last = max(self.calls[-1][0] if self.calls else start, start)
            if time.monotonic() - last >= seconds:
                return self.changes
            assert time.monotonic() < deadline, "changes never stopped"
            time.sleep(0.05)


def paths_of(changes: list[LibraryChange], kind: str) -> list[str]:
    return [c.path for c in changes if c.kind == kind]


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    path = tmp_path / "lib"
    path.mkdir()
    return path


@pytest.fixture
def watch(lib: Path) -> Iterator[Callable[..., tuple[LibraryWatcher, Recorder]]]:
    started: list[LibraryWatcher] = []

    def start(mode: str = "native", **kw) -> tuple[LibraryWatcher, Recorder]:
        rec = Recorder()
        options = {"extensions": EXTS, "ignore": [], "settle_seconds": 0.5, "poll_interval": 1.0, **kw}
        watcher = LibraryWatcher([str(lib)], polling=mode == "polling", on_changes=rec, **options)
        watcher.start()
        started.append(watcher)
        return watcher, rec

    yield start
    for watcher in started:
        watcher.stop()


def write(path: Path, data: bytes = b"\0" * 4096) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_is_candidate() -> None:
    assert is_candidate("/m/a/Song.MP3", EXTS, [])
    assert is_candidate("/m/a/song.flac", ["flac"], [])
    assert not is_candidate("/m/a/song.ogg", EXTS, [])
    assert not is_candidate("/m/a/.song.mp3", EXTS, [])
    assert not is_candidate("/m/.stash/song.mp3", EXTS, [])
    for temp in ("s.mp3.part", "s.mp3.crdownload", "s.mp3.tmp", "s.mp3.partial", "s.mp3~", ".~lock.s.mp3#"):
        assert not is_candidate(f"/m/a/{temp}", EXTS, []), temp
    assert not is_candidate("/m/Podcasts/ep.mp3", EXTS, ["*/Podcasts/*"])
    assert is_candidate("/home/u/.music/a.mp3", EXTS, [], root="/home/u/.music")


@pytest.mark.parametrize("mode", ["native", "polling"])
def test_slow_copy_is_reported_once_after_it_settles(watch, lib: Path, mode: str) -> None:
    _, rec = watch(mode, settle_seconds=1.0)
    target = lib / "slow.mp3"
    with open(target, "wb") as fh:
        for _ in range(5):
            fh.write(b"\1" * 8192)
            fh.flush()
            time.sleep(0.3)
    last_write = time.monotonic()
    rec.wait_for(lambda ch: paths_of(ch, "changed"))
    assert rec.calls[0][0] >= last_write + 0.9, "reported before the copy had settled"
    assert rec.wait_quiet(1.5) == [LibraryChange("changed", str(target))]


@pytest.mark.parametrize("mode", ["native", "polling"])
def test_burst_of_files_is_batched(watch, lib: Path, mode: str) -> None:
    _, rec = watch(mode)
    expected = {str(write(lib / f"album{i % 5}" / f"t{i:02}.mp3")) for i in range(50)}
    rec.wait_for(lambda ch: set(paths_of(ch, "changed")) >= expected)
    changes = rec.wait_quiet(1.0)
    assert sorted(paths_of(changes, "changed")) == sorted(expected)
    assert len(rec.calls) <= 3


@pytest.mark.parametrize("mode", ["native", "polling"])
def test_temporary_name_is_reported_once_renamed(watch, lib: Path, mode: str) -> None:
    _, rec = watch(mode)
    part = write(lib / "x.mp3.part")
    sentinel = write(lib / "sentinel.mp3")
    rec.wait_for(lambda ch: str(sentinel) in paths_of(ch, "changed"))
    part.rename(lib / "x.mp3")
    rec.wait_for(lambda ch: str(lib / "x.mp3") in paths_of(ch, "changed"))
    changes = rec.wait_quiet(1.0)
    assert changes == [LibraryChange("changed", str(sentinel)), LibraryChange("changed", str(lib / "x.mp3"))]


def test_hidden_ignored_and_foreign_files_are_skipped(watch, lib: Path) -> None:
    _, rec = watch(ignore=["*/Podcasts/*", "*.demo.mp3"])
    for name in (".hidden.mp3", ".stash/a.mp3", "Podcasts/ep1.mp3", "b.demo.mp3", "notes.txt", "c.mp3.tmp"):
        write(lib / name)
    kept = write(lib / "Kept.MP3")
    sentinel = write(lib / "zz" / "sentinel.flac")
    rec.wait_for(lambda ch: str(sentinel) in paths_of(ch, "changed"))
    assert set(rec.wait_quiet(0.6)) == {LibraryChange("changed", str(kept)), LibraryChange("changed", str(sentinel))}


def test_modified_file_is_reported(watch, lib: Path) -> None:
    song = write(lib / "a.mp3")
    _, rec = watch()
    with open(song, "ab") as fh:
        fh.write(b"\2" * 100)
    assert rec.wait_for(lambda ch: ch) == [LibraryChange("changed", str(song))]


def test_file_deleted_and_restored_identically_is_reported_again(watch, lib: Path, tmp_path: Path) -> None:
    backup = write(tmp_path / "backup.mp3")
    _, rec = watch()
    song = lib / "a.mp3"
    shutil.copy2(backup, song)  # same size and mtime_ns each time
    rec.wait_for(lambda ch: ch)
    song.unlink()
    rec.wait_for(lambda ch: paths_of(ch, "deleted"))
    shutil.copy2(backup, song)
    assert rec.wait_for(lambda ch: len(ch) == 3) == [LibraryChange("changed", str(song)),
                                                    LibraryChange("deleted", str(song)),
                                                    LibraryChange("changed", str(song))]


@pytest.mark.parametrize("mode", ["native", "polling"])
def test_delete_and_rename(watch, lib: Path, mode: str) -> None:
    doomed, moving = write(lib / "a.mp3"), write(lib / "b.mp3", b"\3" * 5000)
    _, rec = watch(mode)
    doomed.unlink()
    moving.rename(lib / "sub.mp3")
    rec.wait_for(lambda ch: len(ch) >= 2)
    assert sorted(rec.wait_quiet(1.0), key=lambda c: c.kind) == [
        LibraryChange("deleted", str(doomed)), LibraryChange("moved", str(moving), str(lib / "sub.mp3"))]


@pytest.mark.parametrize("mode", ["native", "polling"])
def test_folder_rename_is_one_move_that_covers_its_files(watch, lib: Path, mode: str) -> None:
    files = [write(lib / "album" / n) for n in ("01.mp3", "02.mp3", "cd2/03.flac")]
    _, rec = watch(mode)
    (lib / "album").rename(lib / "Album (2001)")
    rec.wait_for(lambda ch: ch)
    changes = rec.wait_quiet(1.0)
    assert changes == [LibraryChange("moved", str(lib / "album"), str(lib / "Album (2001)"))]
    move = changes[0]
    followed = [move.dest + str(f)[len(move.path):] for f in files if str(f).startswith(move.path + os.sep)]
    assert len(followed) == 3 and all(os.path.isfile(p) for p in followed)


@pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")  # watchdog re-adding a watch it races
@pytest.mark.parametrize("mode", ["native", "polling"])
def test_folder_copied_in_yields_all_its_files(watch, lib: Path, tmp_path: Path, mode: str) -> None:
    source = tmp_path / "incoming"
    names = ["01.mp3", "02.mp3", "deep/03.mp3"]
    for name in names:
        write(source / name)
    _, rec = watch(mode)
    shutil.copytree(source, lib / "incoming")
    expected = sorted(str(lib / "incoming" / n) for n in names)
    rec.wait_for(lambda ch: len(paths_of(ch, "changed")) >= 3)
    assert sorted(paths_of(rec.wait_quiet(0.6), "changed")) == expected


def test_folder_moved_out_is_deleted(watch, lib: Path, tmp_path: Path) -> None:
    write(lib / "album" / "01.mp3")
    _, rec = watch()
    (lib / "album").rename(tmp_path / "elsewhere")
    assert rec.wait_for(lambda ch: ch) == [LibraryChange("deleted", str(lib / "album"))]


def test_overflow_becomes_one_rescan(watch, lib: Path) -> None:
    watcher, rec = watch(max_pending=5)
    for i in range(40):
        write(lib / f"t{i:02}.mp3")
    rec.wait_for(lambda ch: paths_of(ch, "rescan"))
    changes = rec.wait_quiet(1.0)
    assert paths_of(changes, "rescan") == [str(lib)]
    assert not paths_of(changes, "changed")
    health = watcher.health()
    assert health["dropped_to_rescan"] > 0 and health["pending"] == 0


def test_health_and_idempotent_stop(watch, lib: Path) -> None:
    watcher, rec = watch()
    song = write(lib / "a.mp3")
    rec.wait_for(lambda ch: ch)
    health = watcher.health()
    assert health["ready"] and health["mode"] == "native" and health["paths"] == [str(lib)]
    assert health["events"] >= 1 and health["last_event_at"] is not None and health["pending"] == 0
    watcher.stop()
    watcher.stop(timeout=1)
    assert not watcher.health()["ready"]
    song.unlink()
    idle = LibraryWatcher([str(lib)], extensions=EXTS, ignore=[], polling=True, settle_seconds=1,
                          on_changes=rec)
    idle.stop()
    idle.stop()
    assert idle.health()["mode"] == "polling" and not idle.health()["ready"]


def test_inotify_limit_gives_a_clear_error(lib: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class FullObserver(Observer):  # what watchdog raises when fs.inotify.max_user_watches is reached
        def start(self) -> None:
            raise OSError(errno.ENOSPC, "inotify watch limit reached")

    watcher = LibraryWatcher([str(lib)], extensions=EXTS, ignore=[], polling=False, settle_seconds=1,
                             on_changes=Recorder())
    monkeypatch.setattr(watcher, "_make_observer", FullObserver)
    with pytest.raises(PlaylistgenError) as info:
        watcher.start()
    assert "max_user_watches" in info.value.hint and "library.polling: true" in info.value.hint
    watcher.stop()
