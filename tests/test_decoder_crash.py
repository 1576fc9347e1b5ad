"""A decoder that crashes the worker (SIGSEGV inside native decoding code) is not the file's
verdict: the executor retries the file once in a fresh worker told to skip that decoder, and only
a second crash fails it, naming both decoders (issue 21, point 2).

Real worker processes and the real decoder chain; the crash is real too: the test-only variable
``PLAYLISTGEN_TEST_CRASH_DECODERS`` makes the named decoders ``SIGSEGV`` their process when they
start (see ``core/audio/policy.py``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from playlistgen.core.audio.decode import open_audio
from playlistgen.core.audio.policy import CRASH_ENV, decoder_policy
from playlistgen.core.optional import essentia_available
from playlistgen.errors import AnalysisError
from tests import test_executor
from tests.test_executor import assert_ok, run_all

executors, make_files = test_executor.executors, test_executor.make_files   # the executor tests' fixtures

needs_essentia = pytest.mark.skipif(not essentia_available(), reason="Essentia is not installed")


@pytest.fixture
def wav(tmp_path: Path) -> str:
    sr = 44100
    t = np.arange(sr * 3) / sr
    path = tmp_path / "tone.wav"
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32), sr)
    return str(path)


@needs_essentia
def test_a_decoder_crash_is_retried_once_with_the_next_decoder(monkeypatch, executors, make_files, wav) -> None:
    monkeypatch.setenv(CRASH_ENV, "soundfile")
    ex = executors(timeout_s=120)
    files = [*make_files("ok", "segv"), (900, wav), *make_files("ok", "ok")]
    outcomes = run_all(ex, files, limit_s=180)
    decoded = outcomes[900]
    assert decoded.error is None and not decoded.requeue, decoded
    assert decoded.result.source["decoder"] == "essentia"          # the next decoder read it
    assert abs(decoded.result.duration_s - 3.0) < 0.05
    assert decoded.crashed_decoders == ("soundfile",)
    assert decoded.result.source["crashed_decoders"] == ["soundfile"]   # stored with the result
    # a crash outside any decoder is still the file's verdict, at once
    segv = outcomes[files[1][0]]
    assert segv.error == "worker crashed (SIGSEGV)" and segv.crashed_decoders == ()
    for index in (0, 3, 4):   # innocent files ran once each (run_all refuses two outcomes)
        assert_ok(outcomes[files[index][0]])
    health = ex.health()
    assert health["retried"] == 1 and health["restarts"]["crash"] == 2 and health["failed"] == 1


@needs_essentia
def test_a_second_crash_fails_the_file_naming_both_decoders(monkeypatch, executors, make_files, wav) -> None:
    monkeypatch.setenv(CRASH_ENV, "soundfile,essentia")
    ex = executors(timeout_s=120)
    files = [(900, wav), *make_files("ok", "ok")]
    outcomes = run_all(ex, files, limit_s=180)
    failed = outcomes[900]
    assert failed.error == "worker crashed (SIGSEGV) in decoder soundfile; retried with essentia: crashed (SIGSEGV)"
    assert not failed.requeue and failed.result is None
    assert failed.crashed_decoders == ("soundfile", "essentia")
    for file_id, _ in files[1:]:
        assert_ok(outcomes[file_id])
    assert ex.health()["retried"] == 1 and ex.health()["restarts"]["crash"] == 2


@needs_essentia
def test_a_retry_that_fails_as_usual_still_names_the_crash(monkeypatch, executors, tmp_path: Path) -> None:
    monkeypatch.setenv(CRASH_ENV, "soundfile")
    junk = tmp_path / "junk.mp3"
    junk.write_text("not audio at all\n" * 100)
    ex = executors(workers=1, timeout_s=120)
    (outcome,) = run_all(ex, [(1, str(junk))], limit_s=180).values()
    assert outcome.error.startswith("worker crashed (SIGSEGV) in decoder soundfile; retried without soundfile: "
                                    "not a readable audio file (libsndfile: skipped; ffmpeg: "), outcome.error
    assert not outcome.requeue and outcome.crashed_decoders == ("soundfile",)


@needs_essentia
@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is needed to write an AAC file")
def test_an_essentia_crash_on_a_file_libsndfile_cannot_read_goes_to_audioread(
        monkeypatch, executors, wav, tmp_path: Path) -> None:
    """The issue's case: libsndfile cannot read the file, Essentia's loader crashes on it."""
    m4a = tmp_path / "tone.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", wav, "-c:a", "aac", str(m4a)],
                   check=True, timeout=60)
    monkeypatch.setenv(CRASH_ENV, "essentia")
    ex = executors(workers=1, timeout_s=120)
    (outcome,) = run_all(ex, [(1, str(m4a))], limit_s=180).values()
    assert outcome.error is None, outcome.error
    assert outcome.result.source["decoder"] == "audioread" and outcome.crashed_decoders == ("essentia",)
    assert abs(outcome.result.duration_s - 3.0) < 0.1


@needs_essentia
def test_the_decoder_policy_skips_decoders_and_reports_the_running_one(wav) -> None:
    seen: list[str | None] = []
    with decoder_policy(skip=("soundfile",), on_decoder=seen.append):
        with open_audio(wav, rates=(22050,)) as audio:
            assert audio.info.decoder == "essentia"
            assert seen[-1] is None       # back in the caller's code: no decoder is running
            chunks = list(audio)
        assert seen[0] == "essentia" and "soundfile" not in seen and seen[-1] is None
        assert sum(len(c.mono[22050]) for c in chunks) == pytest.approx(3 * 22050, abs=64)
    with decoder_policy(skip=("soundfile", "essentia", "audioread")):
        with pytest.raises(AnalysisError, match="libsndfile: skipped"):
            open_audio(wav)
    with open_audio(wav) as audio:   # outside the block the whole chain is back
        assert audio.info.decoder == "soundfile"
