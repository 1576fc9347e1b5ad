"""The analyzer on generated audio: tempo, key, loudness, cross-format consistency, nasty files,
both backends, the `analyze` command. Real decoders and real models, no mocks.

The ML tests need the models `make test` builds (`playlistgen models install`); without them
they skip with that reason.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from playlistgen.core.analysis.base import EXTRA_FIELDS, METADATA_FIELDS, RESULT_FIELDS
from playlistgen.core.analysis.factory import create_analyzer, essentia_available
from playlistgen.core.analysis.metadata import names_from_path, read_metadata
from playlistgen.core.analysis.result import AnalysisResult
from playlistgen.core.music import camelot, camelot_neighbours, key_from_camelot, pitch_class
from playlistgen.errors import AnalysisError, ConfigError, ModelMissingError
from tests import audio_fixtures as af

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"
SR = 44100

needs_essentia = pytest.mark.skipif(not essentia_available(), reason="essentia not installed")


def _models_ready() -> bool:
    return all((MODELS / f"{name}.pb").is_file() for name in ("msd_musicnn", "mtt_musicnn"))


needs_models = pytest.mark.skipif(not _models_ready(),
                                  reason="models missing: run `playlistgen models install`")


@pytest.fixture(scope="module")
def fast():
    if not essentia_available():
        pytest.skip("essentia not installed")
    return create_analyzer("essentia", "fast", MODELS)


@pytest.fixture(scope="module")
def balanced():
    if not essentia_available() or not _models_ready():
        pytest.skip("essentia or models missing: run `playlistgen models install`")
    return create_analyzer("essentia", "balanced", MODELS)


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("audio")


def _assert_contract(analysed: AnalysisResult) -> None:
    result = analysed.to_dict()   # the JSON of `analyze --json`
    assert set(result) == set(RESULT_FIELDS) | set(EXTRA_FIELDS)
    assert set(result["metadata"]) == set(METADATA_FIELDS)
    assert len(result["mfcc_mean"]) == 13 and len(result["mfcc_std"]) == 13
    assert len(result["chroma"]) == 12
    assert 0.0 <= result["energy"] <= 1.0 and 0.0 <= result["danceability"] <= 1.0
    json.dumps(result, allow_nan=False)   # raises on NaN / inf anywhere
    assert set(result["timings"]) >= {"decode_s", "dsp_s", "ml_s"} and result["cpu_s"] >= 0


# --- pure helpers ------------------------------------------------------------------------------

def test_camelot_wheel() -> None:
    assert camelot("C", "major") == "8B" and camelot("A", "minor") == "8A"
    assert camelot("F#", "major") == "2B" and camelot("Eb", "minor") == "2A"
    assert camelot("Db", "major") == camelot("C#", "major") == "3B"
    for code in (f"{n}{letter}" for n in range(1, 13) for letter in "AB"):
        assert camelot(*key_from_camelot(code)) == code
    assert set(camelot_neighbours("12A")) == {"12A", "1A", "11A", "12B"}
    assert pitch_class("Bb") == pitch_class("A#") == 10
    assert camelot(None, None) is None


def test_names_from_path() -> None:
    meta = names_from_path("/music/Miles Davis/Kind of Blue (1959)/02 - Freddie Freeloader.flac")
    assert meta == {"track_number": 2, "title": "Freddie Freeloader", "album": "Kind of Blue (1959)",
                    "year": 1959, "artist": "Miles Davis"}
    meta = names_from_path("/downloads/Nina Simone - Feeling Good.mp3")
    assert (meta["artist"], meta["title"]) == ("Nina Simone", "Feeling Good")


def test_tags_win_over_path(audio_dir: Path) -> None:
    import mutagen

    path = af.write(audio_dir / "tagged.flac",
                    af.noise(1.0, SR), SR)
    tagged = mutagen.File(path, easy=True)
    tagged.update({"artist": "Ärtist", "album": "Album", "title": "Tïtle", "genre": "Jazz",
                   "date": "1999-05-01", "tracknumber": "3/12"})
    tagged.save()
    meta, duration = read_metadata(str(path))
    assert meta == {"artist": "Ärtist", "album": "Album", "title": "Tïtle", "genre": "Jazz",
                    "year": 1999, "track_number": 3}
    assert duration == pytest.approx(1.0, abs=0.01)


# --- tempo, key, loudness ------------------------------------------------------------------------

@needs_essentia
def test_click_tempo_fast(fast, audio_dir: Path) -> None:
    misses = []
    for bpm in range(70, 181, 10):
        path = af.write(audio_dir / f"click{bpm}.wav", af.click_track(bpm, 15.0, SR), SR)
        result = fast.analyze(str(path))
        if abs(result.bpm - bpm) > 0.02 * bpm:
            misses.append((bpm, result.bpm))
    assert not misses, f"bpm off by more than 2 %: {misses}"


@needs_models
def test_click_tempo_balanced(balanced, audio_dir: Path) -> None:
    for bpm in (70, 125, 180):
        path = af.write(audio_dir / f"bclick{bpm}.wav", af.click_track(bpm, 12.0, SR), SR)
        result = balanced.analyze(str(path))
        assert abs(result.bpm - bpm) <= 0.02 * bpm, (bpm, result.bpm)
        assert len(result.embedding) == 200 and len(result.tags["msd"]) == 50


@needs_essentia
def test_chords_in_24_keys(fast, audio_dir: Path) -> None:
    right, wrong = 0, []
    for tonic in range(12):
        for mode in ("major", "minor"):
            path = af.write(audio_dir / "key.wav", af.chord_progression(tonic, mode, 10.0, SR), SR)
            result = fast.analyze(str(path))
            if (pitch_class(result.key), result.scale) == (tonic, mode):
                right += 1
                assert result.camelot == camelot(result.key, mode)
            else:
                wrong.append((af.PITCH_CLASSES[tonic], mode, result.key, result.scale))
    assert right >= 22, f"only {right}/24 keys right: {wrong}"


@needs_essentia
def test_gain_moves_loudness_by_10_lu(fast, audio_dir: Path) -> None:
    base = af.gain_db(af.song(12.0, SR, 2), -20.0)
    quiet = fast.analyze(str(af.write(audio_dir / "quiet.flac", base, SR)))
    loud = fast.analyze(str(af.write(audio_dir / "loud.flac", af.gain_db(base, 10.0), SR)))
    assert loud.loudness_lufs - quiet.loudness_lufs == pytest.approx(10.0, abs=0.5)
    assert loud.energy >= quiet.energy


@needs_models
def test_same_audio_in_every_format(balanced, audio_dir: Path) -> None:
    audio = af.song(24.0, SR, 2, bpm=120, tonic=9, mode="minor")
    wav = af.write(audio_dir / "song.wav", audio, SR)
    paths = [wav] + [af.write(audio_dir / f"song{ext}", audio, SR) for ext in (".flac", ".ogg", ".mp3")]
    if af.ffmpeg():
        paths.append(af.ffmpeg_convert(wav, audio_dir / "song.m4a", "-c:a", "aac", "-b:a", "192k"))
    results = {p.suffix: balanced.analyze(str(p)) for p in paths}
    ref = results[".wav"]
    assert ref.key == "A" and ref.scale == "minor" and ref.bpm == pytest.approx(120, rel=0.02)
    ref_emb = np.array(ref.embedding)
    for ext, result in results.items():
        _assert_contract(result)
        assert (result.key, result.scale) == (ref.key, ref.scale), ext
        assert abs(result.bpm - ref.bpm) <= 0.1, (ext, result.bpm, ref.bpm)
        emb = np.array(result.embedding)
        cosine = float(emb @ ref_emb / np.linalg.norm(emb) / np.linalg.norm(ref_emb))
        assert cosine >= 0.98, (ext, cosine)


@needs_models
def test_accurate_adds_mtt_tags(audio_dir: Path) -> None:
    accurate = create_analyzer("essentia", "accurate", MODELS)
    path = af.write(audio_dir / "acc.wav", af.song(12.0, SR, 2, bpm=100, tonic=4), SR)
    result = accurate.analyze(str(path))
    _assert_contract(result)
    assert set(result.tags) == {"msd", "mtt"} and len(result.tags["mtt"]) == 50
    assert result.bpm == pytest.approx(100, rel=0.02) and result.preset == "accurate"
    assert all(0.0 <= getattr(result, f) <= 1.0 for f in ("valence", "acousticness", "instrumentalness"))


@pytest.mark.skipif(af.ffmpeg() is None, reason="ffmpeg not installed (apt-get install ffmpeg)")
@needs_essentia
def test_m4a_and_video_with_audio(fast, audio_dir: Path) -> None:
    wav = af.write(audio_dir / "src.wav", af.song(12.0, SR, 2), SR)
    m4a = af.ffmpeg_convert(wav, audio_dir / "src.m4a", "-c:a", "aac")
    video = af.ffmpeg_convert(wav, audio_dir / "clip.mp4", "-f", "lavfi", "-i",
                              "color=c=black:s=64x64:d=12", "-shortest", "-c:a", "aac")
    for path in (m4a, video):
        result = fast.analyze(str(path))
        assert result.duration_s == pytest.approx(12.0, abs=0.3)


# --- odd inputs ---------------------------------------------------------------------------------

@needs_essentia
def test_silence_fails_with_a_reason(fast, audio_dir: Path) -> None:
    path = af.write(audio_dir / "silence.wav", af.silence(5.0, SR), SR)
    with pytest.raises(AnalysisError, match="silent") as info:
        fast.analyze(str(path))
    assert info.value.path == str(path)


@needs_models
def test_half_second_clip(balanced, audio_dir: Path) -> None:
    path = af.write(audio_dir / "short.wav", af.song(0.5, SR, 1), SR)
    result = balanced.analyze(str(path))
    _assert_contract(result)
    assert result.duration_s == pytest.approx(0.5, abs=0.01)
    assert result.bpm is None and "tempo_undetermined" in result.flags
    assert len(result.embedding) == 200


@needs_essentia
def test_broken_files_fail_with_one_line_reasons(fast, audio_dir: Path) -> None:
    good = af.write(audio_dir / "good.flac", af.song(4.0, SR, 2), SR)
    good_wav = af.write(audio_dir / "good.wav", af.song(4.0, SR, 2), SR)
    cases = {
        "zero": af.zero_byte(audio_dir / "zero.mp3"),
        "truncated flac": af.truncated(good, audio_dir / "cut.flac", 5000),
        "truncated wav": af.truncated(good_wav, audio_dir / "cut.wav", 20000),
        "corrupt header": af.corrupt_header(good_wav, audio_dir / "corrupt.wav"),
        "not audio": af.not_audio(audio_dir / "notes.mp3"),
        "missing": audio_dir / "does-not-exist.ogg",
    }
    for what, path in cases.items():
        with pytest.raises(AnalysisError) as info:
            fast.analyze(str(path))
        reason = info.value.one_line()
        assert reason and "\n" not in reason and len(reason) < 400, (what, reason)
        assert info.value.path == str(path), what
    assert "0 bytes" in _reason(fast, cases["zero"])
    # Tracker modules decode through the system ffmpeg (libopenmpt) when it is installed;
    # without it they fail with a reason that says what to do.
    module = af.tracker_module(audio_dir / "tune.mod")
    if af.ffmpeg():
        assert fast.analyze(str(module)).duration_s > 1
    else:
        assert "tracker module" in _reason(fast, module)


def _reason(analyzer, path: Path) -> str:
    with pytest.raises(AnalysisError) as info:
        analyzer.analyze(str(path))
    return info.value.one_line()


@needs_essentia
def test_unusual_but_valid_files(fast, audio_dir: Path) -> None:
    song = af.song(8.0, SR, 1)
    from soxr import resample

    folder = audio_dir / "Ünïcødé Artist" / "Album"
    folder.mkdir(parents=True)
    files = {
        "8k mono": af.write(audio_dir / "low.wav", resample(song, SR, 8000), 8000),
        "96k/24": af.write(audio_dir / "hires.flac", np.repeat(resample(song, SR, 96000)[:, None], 2, 1),
                           96000, subtype="PCM_24"),
        "5.1": af.write(audio_dir / "surround.wav", np.repeat(song[:, None], 6, 1) * 0.5, SR),
        "opus": af.write(audio_dir / "song.opus", resample(song, SR, 48000), 48000),
        "wrong extension": audio_dir / "really-flac.mp3",
        "unicode": af.write(folder / "01 - Çà và – 日本語.ogg", song, SR),
    }
    shutil.copy(af.write(audio_dir / "src.flac", song, SR), files["wrong extension"])
    for what, path in files.items():
        result = fast.analyze(str(path))
        _assert_contract(result)
        assert result.duration_s == pytest.approx(8.0, abs=0.1), what
        assert -40 < result.loudness_lufs < 0, what
    meta = fast.analyze(str(files["unicode"])).metadata
    assert (meta["artist"], meta["title"], meta["track_number"]) == ("Ünïcødé Artist", "Çà và – 日本語", 1)


@needs_essentia
def test_ffmpeg_fallback_whole_and_segmented(fast, audio_dir: Path, monkeypatch) -> None:
    """What libsndfile cannot read goes to Essentia's FFmpeg: whole, or in segments when long."""
    from playlistgen.core.audio import decode as audio

    path = af.write(audio_dir / "fallback.ogg", af.song(12.0, SR, 2, bpm=110, tonic=7), SR)
    reference = fast.analyze(str(path))

    def refuse(_path: str) -> None:
        raise RuntimeError("pretend libsndfile cannot read this")

    monkeypatch.setattr(audio, "_SoundfileSource", refuse)
    whole = fast.analyze(str(path))
    assert whole.source["decoder"] == "essentia" and whole.source["channels"] == 2
    monkeypatch.setattr(audio, "LONG_FILE_S", 5.0)
    monkeypatch.setattr(audio, "LONG_SEGMENT_S", 4.0)
    segmented = fast.analyze(str(path))
    assert segmented.source["codec"] == "ffmpeg (segmented)"
    for result in (whole, segmented):
        assert result.duration_s == pytest.approx(reference.duration_s, abs=0.05)
        assert (result.key, result.bpm) == (reference.key, reference.bpm)
        assert result.loudness_lufs == pytest.approx(reference.loudness_lufs, abs=0.5)


@needs_essentia
def test_long_file_memory_is_flat(audio_dir: Path) -> None:
    """Peak RSS of a 20-minute file stays within 1.3x of a 2-minute one (separate processes)."""
    short = af.write_long(audio_dir / "two.flac", 2)
    long = af.write_long(audio_dir / "twenty.flac", 20)
    # VmHWM is this process's own peak: ru_maxrss of a child exec'd from pytest also carries
    # pytest's peak (Linux records the old mm's high-water mark at exec), hiding the difference
    code = ("import re, sys; from pathlib import Path;"
            "from playlistgen.core.analysis.factory import create_analyzer;"
            "a = create_analyzer('essentia', 'fast', Path(sys.argv[2]));"
            "r = a.analyze(sys.argv[1]);"
            "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1);"
            "print(hwm, r.duration_s)")
    peaks = []
    for path in (short, long):
        out = subprocess.run([sys.executable, "-c", code, str(path), str(MODELS)], check=True,
                             capture_output=True, text=True, cwd=REPO).stdout.split()
        peaks.append(int(out[-2]))
        assert float(out[-1]) == pytest.approx(60 * (2 if path == short else 20), abs=1)
    assert peaks[1] <= 1.3 * peaks[0], peaks


# --- backends, factory, command ------------------------------------------------------------------

def test_librosa_backend_same_fields_no_ml(audio_dir: Path) -> None:
    analyzer = create_analyzer("librosa", "fast", MODELS)
    click = analyzer.analyze(str(af.write(audio_dir / "lclick.wav", af.click_track(120, 12.0, SR), SR)))
    _assert_contract(click)
    assert click.bpm == pytest.approx(120, rel=0.02)
    assert all(getattr(click, f) is None for f in ("embedding", "tags", "valence", "acousticness",
                                          "instrumentalness"))
    chord = analyzer.analyze(str(af.write(audio_dir / "lkey.wav", af.chord_progression(2, "minor", 10.0), SR)))
    assert (chord.key, chord.scale) == ("D", "minor")
    assert chord.analyzer_version.startswith("librosa-")


def test_factory_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    # librosa runs the ML presets on onnxruntime only (tests/test_onnx.py), never on Essentia-TF
    with pytest.raises(ConfigError, match="Essentia backend"):
        create_analyzer("librosa", "balanced", MODELS, "essentia")
    with pytest.raises(ModelMissingError, match="ONNX"):
        create_analyzer("librosa", "balanced", tmp_path / "no-models")
    if essentia_available():
        with pytest.raises(ModelMissingError) as info:
            create_analyzer("essentia", "balanced", tmp_path / "no-models")
        assert "models install" in info.value.one_line()


@needs_essentia
def test_analyze_command_json(audio_dir: Path) -> None:
    from playlistgen.cli import cli

    good = af.write(audio_dir / "cli.wav", af.song(6.0, SR, 1), SR)
    bad = af.zero_byte(audio_dir / "cli-empty.flac")
    env = {"PLAYLISTGEN_ANALYSIS__MODELS_DIR": str(MODELS)}
    out = CliRunner().invoke(cli, ["analyze", "--preset", "fast", "--json", str(good), str(bad)],
                             env=env)
    assert out.exit_code == 1, out.output
    data = json.loads(out.stdout)
    assert data[0]["path"] == str(good) and data[0]["preset"] == "fast"
    assert set(data[0]) == set(RESULT_FIELDS) | set(EXTRA_FIELDS) | {"path"}
    assert data[1] == {"path": str(bad), "error": "empty file (0 bytes)"}
    ok = CliRunner().invoke(cli, ["analyze", "--preset", "fast", str(good)], env=env)
    assert ok.exit_code == 0 and "bpm" in ok.output and "LUFS" in ok.output


def test_help_imports_nothing_heavy() -> None:
    code = ("import sys; from click.testing import CliRunner; from playlistgen.cli import cli;"
            "r = CliRunner().invoke(cli, ['analyze', '--help']); assert r.exit_code == 0;"
            "heavy = [m for m in ('essentia', 'librosa', 'tensorflow', 'numba') if m in sys.modules];"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         cwd=REPO).stdout.strip()
    assert out == "[]"


def test_no_nan_from_pure_noise(audio_dir: Path) -> None:
    analyzer = create_analyzer("librosa", "fast", MODELS)
    result = analyzer.analyze(str(af.write(audio_dir / "noise.wav", af.noise(6.0, SR, 2, 0.2), SR)))
    _assert_contract(result)
    assert all(math.isfinite(v) for v in result.mfcc_mean + result.chroma)
