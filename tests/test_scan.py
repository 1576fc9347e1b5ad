"""`playlistgen scan` over a library of nasty files, in one run through the real process pool:
every file is either analysed or recorded as failed with a one-line reason, and the run exits 0."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from soxr import resample

from playlistgen.core.storage.db import connect
from tests import audio_fixtures as af
from tests.conftest import run_cli

SR = 22050


def build_nasty_library(lib: Path) -> tuple[set[str], set[str]]:
    """Returns (names expected to be analysed, names expected to fail)."""
    song = af.song(8.0, SR, 2, bpm=118, tonic=4)
    mono = song[:, 0]
    ok: set[str] = set()
    bad: set[str] = set()
    good_wav = af.write(lib / "good.wav", song, SR)
    ok.add("good.wav")
    af.write(lib / "good.flac", song, SR)
    ok.add("good.flac")
    af.zero_byte(lib / "zero.mp3")
    af.truncated(good_wav, lib / "truncated.wav", 20000)
    af.corrupt_header(good_wav, lib / "corrupt.wav")
    af.not_audio(lib / "notes.flac")
    bad |= {"zero.mp3", "truncated.wav", "corrupt.wav", "notes.flac"}
    af.write(lib / "silence.wav", af.silence(5.0, SR), SR)
    bad.add("silence.wav")
    af.write(lib / "short.wav", mono[: SR // 2], SR)  # 0.5 s: analysed, tempo flagged
    af.write(lib / "low 8k mono.wav", resample(mono, SR, 8000), 8000)
    af.write(lib / "hires 96k 24bit.flac", np.repeat(resample(mono, SR, 96000)[:, None], 2, 1), 96000,
             subtype="PCM_24")
    af.write(lib / "surround 5.1.wav", np.repeat(mono[:, None], 6, 1) * 0.5, SR)
    af.write(lib / "song.opus", resample(mono, SR, 48000), 48000)
    shutil.copy(lib / "good.flac", lib / "flac in disguise.mp3")  # wrong extension
    unicode_dir = lib / "Ünïcødé" / "日本語"
    unicode_dir.mkdir(parents=True)
    af.write(unicode_dir / "01 - Çà và.ogg", mono, SR)
    ok |= {"short.wav", "low 8k mono.wav", "hires 96k 24bit.flac", "surround 5.1.wav", "song.opus",
           "flac in disguise.mp3", "01 - Çà và.ogg"}
    # one hour: 8 kHz mono keeps the fixture small; the decoder streams it
    hour = lib / "one hour.wav"
    block = resample(mono, SR, 8000).astype(np.float32)
    with sf.SoundFile(hour, "w", 8000, 1, subtype="PCM_16") as fh:
        for _ in range(int(3600 / 8)):
            fh.write(block)
    ok.add("one hour.wav")
    # Tracker modules: decoded through the system ffmpeg (libopenmpt) when it is installed,
    # otherwise they fail with a reason. The copies under other extensions are linked, not re-run.
    module = af.tracker_module(lib / "tune.mod")
    for ext in ("xm", "it", "s3m"):
        shutil.copy(module, lib / f"tune.{ext}")
    (ok if af.ffmpeg() else bad).update({"tune.mod", "tune.xm", "tune.it", "tune.s3m"})
    if af.ffmpeg():
        af.ffmpeg_convert(good_wav, lib / "song.m4a", "-c:a", "aac", "-b:a", "160k")
        af.ffmpeg_convert(good_wav, lib / "clip.mp4", "-f", "lavfi", "-i", "color=c=black:s=64x64:d=8",
                          "-shortest", "-c:a", "aac", "-c:v", "libx264" if _has_x264() else "mpeg4")
        ok |= {"song.m4a", "clip.mp4"}
    return ok, bad


def _has_x264() -> bool:
    import subprocess

    out = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    return "libx264" in out


@pytest.mark.skipif(not (Path(__file__).parents[1] / "models" / "manifest.json").exists(),
                    reason="models not installed: run `make models`")
def test_one_scan_run_handles_every_nasty_file(tmp_path: Path) -> None:
    lib = tmp_path / "library"
    lib.mkdir()
    ok, bad = build_nasty_library(lib)
    proc = run_cli("scan", str(lib), "--preset", "fast", "--workers", "2", cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    # copies are analysed once: "flac in disguise.mp3" is good.flac's bytes, tune.xm/it/s3m are tune.mod's
    module_copies = 3
    analysed = len(ok) - 1 - (module_copies if af.ffmpeg() else 0)
    failed = len(bad) - (0 if af.ffmpeg() else module_copies)
    assert f"analysed {analysed}, failed {failed}," in proc.stdout
    assert "they are retried only when they change" in proc.stderr
    conn = connect(tmp_path / "playlistgen.db")
    rows = {Path(p).name: (s, e) for p, s, e in conn.execute("SELECT path, status, error FROM files")}
    assert {n for n, (s, _) in rows.items() if s == "done"} == ok
    failed = {n: e for n, (s, e) in rows.items() if s == "failed"}
    assert set(failed) == bad
    for name, reason in failed.items():
        assert reason and "\n" not in reason and len(reason) <= 500, name
    assert "0 bytes" in failed["zero.mp3"] and "silent" in failed["silence.wav"]
    hour = conn.execute("SELECT f.duration_s FROM files x JOIN features f ON f.track_id = x.track_id "
                        "WHERE x.path LIKE '%one hour.wav'").fetchall()
    assert hour and hour[0][0] == pytest.approx(3600, abs=1)
    nan = conn.execute("SELECT count(*) FROM features WHERE bpm != bpm OR loudness_lufs != loudness_lufs").fetchall()
    assert nan == [(0,)]
    # a second run repeats nothing: failed files are retried only when they change
    again = run_cli("scan", str(lib), "--preset", "fast", "--workers", "2", cwd=tmp_path, timeout=600)
    assert again.returncode == 0 and "analysed 0, failed 0" in again.stdout


# ---- issue 20, point 19: a moved music folder -------------------------------------------------------
def _song(path: Path, i: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    song = af.song(5.0, SR, 1, bpm=90 + 9 * i, tonic=i)
    return af.write(path, (song + af.noise(5.0, SR, 1, 0.01, seed=i)[: len(song)]).astype(np.float32), SR)


def _playlist_paths(cwd: Path) -> list[str]:
    proc = run_cli("playlist", "random", "--size", "10", "--format", "m3u8", "--artist-gap", "0",
                   "--album-gap", "0", "--max-per-artist", "0", "--no-dedupe", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line and not line.startswith("#")]


def test_moved_music_folder_keeps_its_analysis_and_playlists_follow(tmp_path: Path) -> None:
    """`scan libX; mv libX libY; scan libY`: moved, not analysed again, no dead libX paths."""
    lib_x, lib_y = tmp_path / "libX", tmp_path / "libY"
    for i in range(3):
        _song(lib_x / "Album" / f"{i} song.wav", i)
    first = run_cli("scan", "libX", "--preset", "fast", "--workers", "1", cwd=tmp_path, timeout=600)
    assert first.returncode == 0 and "analysed 3," in first.stdout, first.stdout + first.stderr
    assert len(_playlist_paths(tmp_path)) == 3
    lib_x.rename(lib_y)

    again = run_cli("scan", "libY", "--preset", "fast", "--workers", "1", cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "3 moved" in again.stderr and "0 missing" in again.stderr and "analysed 0," in again.stdout, \
        again.stdout + again.stderr
    paths = _playlist_paths(tmp_path)
    assert len(paths) == 3 and all("libY" in p and "libX" not in p for p in paths), paths
    conn = connect(tmp_path / "playlistgen.db")
    assert conn.execute("SELECT count(*) FROM files WHERE path LIKE ?", (f"{lib_x}%",)).fetchall() == [(0,)]
    assert conn.execute("SELECT count(*) FROM features").fetchall() == [(3,)]


def test_scan_of_a_folder_inside_the_library_leaves_the_rest(tmp_path: Path) -> None:
    """`scan ~/Music/New` with library.paths [~/Music] is a part of the library, not all of it."""
    lib = tmp_path / "music"
    for i in range(2):
        _song(lib / "Old" / f"{i}.wav", i)
    (tmp_path / "config.yaml").write_text(f"library:\n  paths: [{str(lib)!r}]\n")
    assert run_cli("scan", "--preset", "fast", "--workers", "1", cwd=tmp_path, timeout=600).returncode == 0
    _song(lib / "New" / "2.wav", 2)
    part = run_cli("scan", str(lib / "New"), "--preset", "fast", "--workers", "1", cwd=tmp_path, timeout=600)
    assert part.returncode == 0 and "analysed 1," in part.stdout, part.stdout + part.stderr
    assert "0 missing" in part.stderr and "library: 1 files" in part.stderr, part.stderr
    conn = connect(tmp_path / "playlistgen.db")
    assert conn.execute("SELECT status, count(*) FROM files GROUP BY status").fetchall() == [("done", 3)]


def test_scan_of_another_folder_leaves_the_library_alone(tmp_path: Path) -> None:
    """`scan ~/Downloads/album` with library.paths [~/Music] adds that folder; the library's files,
    still where they were, are not marked missing (only a known file that is gone is)."""
    lib, other = tmp_path / "music", tmp_path / "downloads"
    for i in range(2):
        _song(lib / "Old" / f"{i}.wav", i)
    _song(other / "2.wav", 2)
    (tmp_path / "config.yaml").write_text(f"library:\n  paths: [{str(lib)!r}]\n")
    assert run_cli("scan", "--preset", "fast", "--workers", "1", cwd=tmp_path, timeout=600).returncode == 0
    elsewhere = run_cli("scan", str(other), "--preset", "fast", "--workers", "1", cwd=tmp_path, timeout=600)
    assert elsewhere.returncode == 0 and "0 missing" in elsewhere.stderr, elsewhere.stdout + elsewhere.stderr
    conn = connect(tmp_path / "playlistgen.db")
    assert conn.execute("SELECT status, count(*) FROM files GROUP BY status").fetchall() == [("done", 3)]
    assert len(_playlist_paths(tmp_path)) == 3


# ---- issue 21, point 19: the summary adds up ---------------------------------------------------
BUCKETS = ("unchanged", "new or changed", "moved", "copies", "retagged", "unreadable")


def _summary(stderr: str) -> tuple[int, dict[str, int]]:
    """(files seen, {bucket: count}) from scan's `library: N files (...)` line."""
    import re

    line = next(ln for ln in stderr.splitlines() if ln.startswith("library: "))
    seen = int(re.match(r"library: (\d+) files", line).group(1))
    counts = {}
    for bucket in BUCKETS:
        match = re.search(rf"(\d+) {bucket}\b", line)
        assert match, f"no '{bucket}' in {line!r}"
        counts[bucket] = int(match.group(1))
    return seen, counts


def test_scan_summary_puts_every_file_in_exactly_one_bucket() -> None:
    """New, unchanged, moved, copy, retagged and unreadable files in one run: the buckets add up
    to the files seen. An unreadable file needs a user the permissions bind: as root the second
    scan runs as `nobody` (setpriv), analysing in a thread (it may not exec the interpreter again)."""
    import os
    import subprocess
    import sys
    import tempfile

    from tests.conftest import child_env
    from tests.tagged_library import make_song, set_tags

    as_root = os.geteuid() == 0
    if as_root and not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: no file can be made unreadable")
    work = Path(tempfile.mkdtemp(prefix="playlistgen-scan-"))
    try:
        work.chmod(0o755)
        lib = work / "lib"
        for name in ("keep", "move", "retag", "orig"):
            make_song(lib / f"{name}.flac", len(name) + ord(name[0]))
            set_tags(lib / f"{name}.flac", artist="A", title=name)
        first = run_cli("scan", str(lib), "--preset", "fast", "--workers", "1", cwd=work, timeout=600)
        assert first.returncode == 0 and "analysed 4, failed 0" in first.stdout, first.stdout + first.stderr

        (lib / "sub").mkdir()
        (lib / "move.flac").rename(lib / "sub" / "move.flac")          # moved
        set_tags(lib / "retag.flac", title="retagged in Picard")       # retagged
        shutil.copy(lib / "orig.flac", lib / "copy.flac")             # a copy of an analysed file
        make_song(lib / "new.flac", 40)                               # new
        make_song(lib / "locked.flac", 41).chmod(0)                   # unreadable
        prefix: list[str] = []
        if as_root:
            import pwd

            nobody = pwd.getpwnam("nobody")
            for path in [work, *work.rglob("*")]:
                os.chown(path, nobody.pw_uid, nobody.pw_gid)
            prefix = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
        env = child_env({"HOME": str(work), "PLAYLISTGEN_ANALYSIS__EXECUTOR": "thread"})
        again = subprocess.run([*prefix, sys.executable, "-m", "playlistgen", "scan", str(lib), "--preset", "fast"],
                               cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stderr[-2000:]
        seen, counts = _summary(again.stderr)
        assert counts == {"unchanged": 2, "new or changed": 1, "moved": 1, "copies": 1, "retagged": 1,
                          "unreadable": 1}, again.stderr
        assert seen == sum(counts.values()) == 7, again.stderr
        assert "0 missing" in again.stderr, again.stderr
        assert "analysed 1, failed 0" in again.stdout, again.stdout + again.stderr
    finally:
        for path in work.rglob("*"):
            if not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(work, ignore_errors=True)
