"""MusiCNN on ONNX Runtime: the converted models, their equivalence with Essentia's TensorFlow on
the same patches (generated and real audio), the runtime choice and its fallbacks, and the ML
presets on the librosa backend with Essentia hidden from the import.

Real models (the repository's `models/`, built by `make test` via `playlistgen models install`),
real onnxruntime and real Essentia — no mocks. An "import guard" hides packages from a child
process: a sitecustomize.py on PYTHONPATH puts None into sys.modules for them (so `import X`
fails and importlib.util.find_spec says it is absent) and reports at exit which of them were
loaded after all, as modules or as shared libraries mapped into the process.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from playlistgen.core.analysis.base import ML_FIELDS
from playlistgen.core.analysis.factory import create_analyzer, essentia_available
from playlistgen.core.analysis.mel import MUSICNN_RATE, MusicnnMel
from playlistgen.core.analysis.models import list_models, require_model
from playlistgen.core.analysis.presets import MUSICNN_PATCH_FRAMES
from playlistgen.core.analysis.runtime import factory_target, resolve_ml_runtime
from playlistgen.errors import ConfigError, ModelMissingError
from tests import audio_fixtures as af

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"
SR = 44100
NAMES = ("msd_musicnn", "mtt_musicnn")


def _ready(runtime: str) -> bool:
    infos = {info.name: info for info in list_models(MODELS, runtime)}
    return all(infos[name].ok for name in NAMES)


needs_onnx = pytest.mark.skipif(not _ready("onnx"),
                                reason="ONNX models missing: run `playlistgen models install`")
needs_both = pytest.mark.skipif(not (essentia_available() and _ready("onnx") and _ready("essentia")),
                                reason="needs essentia and both model formats (`playlistgen models install`)")


def _corpus() -> Path | None:
    # the dev corpus if one is built, else the few real tracks `make test` unpacks (make realaudio)
    for candidate in (os.environ.get("PLAYLISTGEN_CORPUS"), str(REPO.parent / "corpus"),
                      str(REPO / ".cache" / "real-audio")):
        if candidate and (Path(candidate) / "manifest.tsv").is_file():
            return Path(candidate)
    return None


def patches_of(signal16k: np.ndarray) -> np.ndarray:
    """All non-overlapping log-mel patches of a 16 kHz signal, as the analyzers cut them."""
    mel = MusicnnMel()
    frames = mel(mel.framer().push(signal16k.astype(np.float32)))
    n = len(frames) // MUSICNN_PATCH_FRAMES
    return frames[: n * MUSICNN_PATCH_FRAMES].reshape(n, MUSICNN_PATCH_FRAMES, -1)


@functools.cache
def generated_signals() -> dict[str, np.ndarray]:
    """16 kHz mono test signals (mono generators return 1-D arrays)."""
    import soxr

    out = {"song": af.song(15.0, SR, 1, bpm=124, tonic=2, mode="major"),
           "noise": af.noise(9.0, SR, 1, 0.3, seed=3),
           "clicks": af.click_track(95, 9.0, SR, 1),
           "loud chords": np.clip(4 * af.chord_progression(7, "minor", 9.0, SR, 1), -1, 1)}
    return {k: soxr.resample(v.astype(np.float32), SR, MUSICNN_RATE) for k, v in out.items()}


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def runtimes():
    """Both runtimes of both models, loaded once: {name: (onnx, essentia-tf)}."""
    if not (essentia_available() and _ready("onnx") and _ready("essentia")):
        pytest.skip("needs essentia and both model formats (`playlistgen models install`)")
    from playlistgen.core.analysis.essentia_backend import TfMusicnn
    from playlistgen.core.analysis.onnx_musicnn import OnnxMusicnn

    return {name: (OnnxMusicnn(require_model(MODELS, name, "onnx")),
                   TfMusicnn(require_model(MODELS, name, "essentia"))) for name in NAMES}


def assert_equivalent(runtimes, patches: np.ndarray, what: str) -> dict:
    figures = {}
    for name, (onnx_model, tf_model) in runtimes.items():
        tags_o, emb_o = onnx_model.predict(patches)
        tags_t, emb_t = tf_model.predict(patches)
        assert tags_o.shape == tags_t.shape == (len(patches), 50)
        assert emb_o.shape == emb_t.shape == (len(patches), 200)
        tag_diff = float(np.abs(tags_o - tags_t).max())
        patch_cos = min(cosine(a, b) for a, b in zip(emb_o, emb_t, strict=True))
        track_cos = cosine(emb_o.mean(0), emb_t.mean(0))
        assert tag_diff <= 0.01, (what, name, tag_diff)
        assert patch_cos >= 0.999 and track_cos >= 0.999, (what, name, patch_cos, track_cos)
        figures[name] = (tag_diff, patch_cos, track_cos)
    return figures


# --- equivalence on the same patches ------------------------------------------------------------

def test_same_patches_same_outputs_generated_audio(runtimes) -> None:
    for what, signal in generated_signals().items():
        patches = patches_of(signal)
        assert len(patches) >= 3, what
        figures = assert_equivalent(runtimes, patches, what)
        logging.getLogger(__name__).info("%s: %s", what, figures)
    # different sounds get different tags (a model stuck in training-mode batch norm would not)
    onnx_msd = runtimes["msd_musicnn"][0]
    a = onnx_msd.predict(patches_of(generated_signals()["noise"]))[0].mean(0)
    b = onnx_msd.predict(patches_of(generated_signals()["song"]))[0].mean(0)
    assert np.abs(a - b).max() > 0.01


def test_same_patches_same_outputs_real_audio(runtimes) -> None:
    corpus = _corpus()
    if corpus is None:
        pytest.skip("no dev corpus (bash ../shared/corpus/dev_corpus.sh ../corpus)")
    from playlistgen.core.audio.decode import open_audio

    files = sorted(corpus.rglob("*.ogg"))
    for path in files[::max(1, len(files) // 4)][:4]:    # four spread over the corpus (styles)
        with open_audio(str(path), (MUSICNN_RATE,)) as audio:
            first = next(iter(audio)).mono[MUSICNN_RATE]      # the first chunk: ~20 s
        assert_equivalent(runtimes, patches_of(first), path.name)


@needs_both
def test_whole_result_identical_except_ml_fields(tmp_path: Path) -> None:
    """Same file through the Essentia backend on both runtimes: every non-ML field identical,
    tags within 0.01, embedding cosine >= 0.999, the same analyzer_version."""
    path = af.write(tmp_path / "song.flac", af.song(20.0, SR, 2, bpm=110, tonic=4), SR)
    results = {}
    for runtime in ("onnx", "essentia"):
        analyzer = create_analyzer("essentia", "accurate", MODELS, runtime)
        results[runtime] = analyzer.analyze(str(path)).to_dict()
    onnx_result, tf_result = results["onnx"], results["essentia"]
    skip = set(ML_FIELDS) | {"timings", "cpu_s"}
    assert {k: v for k, v in onnx_result.items() if k not in skip} == \
           {k: v for k, v in tf_result.items() if k not in skip}
    assert onnx_result["analyzer_version"] == tf_result["analyzer_version"] == "essentia-1.0.0"
    for source in ("msd", "mtt"):
        a, b = onnx_result["tags"][source], tf_result["tags"][source]
        assert a.keys() == b.keys() and max(abs(a[k] - b[k]) for k in a) <= 0.01
    assert cosine(np.array(onnx_result["embedding"]), np.array(tf_result["embedding"])) >= 0.999
    for field in ("valence", "acousticness", "instrumentalness"):
        assert abs(onnx_result[field] - tf_result[field]) <= 0.01


def test_numpy_mel_matches_essentia_input() -> None:
    """The one mel implementation both runtimes share is Essentia's TensorflowInputMusiCNN."""
    if not essentia_available():
        pytest.skip("essentia not installed")
    from playlistgen.core.analysis.essentia_backend import load_essentia

    es = load_essentia()
    signal = generated_signals()["song"][: 3 * MUSICNN_RATE]
    ours = MusicnnMel()
    rows = ours(ours.framer().push(signal))
    ref_alg = es.TensorflowInputMusiCNN()
    padded = np.concatenate([np.zeros(256, np.float32), signal])
    ref = np.array([ref_alg(padded[i * 256: i * 256 + 512]) for i in range(len(rows))])
    # float32 filterbank/FFT rounding: at most a few 1e-4 on values of 0..5
    assert rows.shape == ref.shape == (len(rows), 96)
    assert float(np.abs(rows - ref).max()) < 2e-3


# --- the librosa backend with Essentia hidden ------------------------------------------------------

GUARD = '''
import atexit, json, os, sys
_blocked = [m for m in os.environ.get("PLAYLISTGEN_TEST_BLOCK", "").split(",") if m]
for _name in _blocked:
    sys.modules[_name] = None          # `import _name` raises, find_spec() returns None

def _ours(path):
    """A file of a blocked package: a path segment named after it (essentia/,
    essentia_tensorflow.libs/, _essentia.so, libonnxruntime..., .onnxruntime/)."""
    return any(seg.lstrip("._").removeprefix("lib").startswith(b)
               and seg.lstrip("._").removeprefix("lib")[len(b):][:1] in ("", ".", "_", "-")
               for seg in path.split("/") for b in _blocked)

def _report():
    loaded = sorted(m for m, mod in sys.modules.items()
                    if mod is not None and m.split(".")[0] in _blocked)
    with open("/proc/self/maps") as maps:
        libs = sorted({line.split()[-1] for line in maps
                       if line.split()[-1].startswith("/") and _ours(line.split()[-1])})
    with open(os.environ["PLAYLISTGEN_TEST_REPORT"], "w") as out:
        json.dump({"blocked": _blocked, "modules": loaded, "libraries": libs}, out)

atexit.register(_report)
'''


def run_guarded(tmp_path: Path, blocked: str, args: list[str],
                code: str | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    guard = tmp_path / "guard"
    guard.mkdir(exist_ok=True)
    (guard / "sitecustomize.py").write_text(GUARD)
    report = tmp_path / f"report-{blocked.replace(',', '-')}.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYLISTGEN_")}
    env.update(PYTHONPATH=os.pathsep.join([str(guard), str(REPO)]),
               PLAYLISTGEN_TEST_BLOCK=blocked, PLAYLISTGEN_TEST_REPORT=str(report),
               PLAYLISTGEN_ANALYSIS__MODELS_DIR=str(MODELS))
    cmd = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "playlistgen", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    return proc, json.loads(report.read_text())


@needs_onnx
def test_librosa_backend_runs_balanced_without_essentia(tmp_path: Path) -> None:
    path = af.write(tmp_path / "song.ogg", af.song(14.0, SR, 2, bpm=100, tonic=0), SR)
    proc, report = run_guarded(tmp_path, "essentia,tensorflow",
                               ["analyze", "--backend", "librosa", "--preset", "balanced",
                                "--json", str(path)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert report == {"blocked": ["essentia", "tensorflow"], "modules": [], "libraries": []}
    result = json.loads(proc.stdout)[0]
    assert result["analyzer_version"].startswith("librosa-") and result["preset"] == "balanced"
    assert len(result["embedding"]) == 200 and len(result["tags"]["msd"]) == 50
    assert all(0 <= result[f] <= 1 for f in ("valence", "acousticness", "instrumentalness"))
    if essentia_available() and _ready("onnx"):
        # Same mel code, same ONNX model: the Essentia backend gets exactly the same ML output.
        ref = create_analyzer("essentia", "balanced", MODELS, "onnx").analyze(str(path)).to_dict()
        assert result["tags"] == ref["tags"]
        assert cosine(np.array(result["embedding"]), np.array(ref["embedding"])) > 0.99999


def test_guard_really_hides_a_package(tmp_path: Path) -> None:
    """The guard itself: a blocked package that the code does import is reported as missing
    (so an empty report above means essentia was never imported)."""
    code = "import sys\ntry:\n    import numpy\nexcept ImportError:\n    print('blocked')\n"
    proc, report = run_guarded(tmp_path, "numpy", [], code=code)
    assert proc.stdout.strip() == "blocked" and report["modules"] == []


# --- runtime choice and fallbacks ----------------------------------------------------------------

@needs_both
def test_missing_onnxruntime_falls_back_with_one_log_line(tmp_path: Path) -> None:
    path = af.write(tmp_path / "clip.wav", af.song(5.0, SR, 1), SR)
    code = ("import logging, sys; from pathlib import Path;"
            "logging.basicConfig(level=logging.INFO, format='LOG %(levelname)s %(message)s');"
            "from playlistgen.core.analysis.factory import create_analyzer;"
            "a = create_analyzer('essentia', 'balanced', Path(sys.argv[2]), 'auto');"
            "r = a.analyze(sys.argv[1]); print('TAGS', len(r.tags['msd']))")
    proc, report = run_guarded(tmp_path, "onnxruntime", [str(path), str(MODELS)], code=code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "TAGS 50" in proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.startswith("LOG")]
    assert len(lines) == 1, lines
    assert lines[0].startswith("LOG WARNING onnxruntime is not installed")
    assert report["modules"] == [] and report["libraries"] == []


@needs_onnx
def test_librosa_without_onnxruntime_is_a_clear_error(tmp_path: Path) -> None:
    path = af.write(tmp_path / "clip.wav", af.song(3.0, SR, 1), SR)
    proc, _ = run_guarded(tmp_path, "essentia,onnxruntime",
                          ["analyze", "--backend", "librosa", "--preset", "balanced", str(path)])
    assert proc.returncode != 0
    assert "onnxruntime, which is not installed" in proc.stderr
    assert "Traceback" not in proc.stderr


def _models_without_onnx(tmp_path: Path) -> Path:
    """A copy of the models whose manifest predates the ONNX models."""
    target = tmp_path / "old-models"
    target.mkdir()
    manifest = json.loads((MODELS / "manifest.json").read_text())
    for entry in manifest["models"].values():
        entry.pop("onnx", None)
        (target / entry["file"]).write_bytes((MODELS / entry["file"]).read_bytes())
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


@needs_both
def test_runtime_resolution(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    msd = ("msd_musicnn",)
    assert resolve_ml_runtime("auto", "essentia", MODELS, msd) == "onnx"
    assert resolve_ml_runtime("essentia", "essentia", MODELS, msd) == "essentia"
    assert resolve_ml_runtime("auto", "librosa", MODELS, msd) == "onnx"
    with pytest.raises(ConfigError, match="needs the Essentia backend"):
        resolve_ml_runtime("essentia", "librosa", MODELS, msd)
    with pytest.raises(ConfigError, match="unknown ML runtime"):
        resolve_ml_runtime("tflite", "essentia", MODELS, msd)
    old = _models_without_onnx(tmp_path)
    assert {i.status for i in list_models(old, "onnx")} == {"missing"}
    with caplog.at_level(logging.INFO):
        assert resolve_ml_runtime("auto", "essentia", old, msd) == "essentia"
    assert "models install" in caplog.text
    with pytest.raises(ModelMissingError, match=r"\(ONNX\) is not installed"):
        create_analyzer("librosa", "balanced", old)
    assert factory_target("onnx").endswith(":create_onnx_analyzer")


@needs_onnx
def test_daemon_accepts_ml_presets_on_librosa(tmp_path: Path) -> None:
    from playlistgen.config import load_settings
    from playlistgen.core.analysis.factory import analyzer_spec, check_models

    settings = load_settings(environ={}, overrides={"analysis": {
        "backend": "librosa", "preset": "balanced", "models_dir": str(MODELS)}})
    check_models(settings)
    spec = analyzer_spec(settings)
    assert spec.backend == "librosa" and spec.factory == factory_target("onnx")
    settings = load_settings(environ={}, overrides={"analysis": {
        "backend": "librosa", "preset": "balanced", "models_dir": str(tmp_path)}})
    with pytest.raises(ModelMissingError) as err:
        check_models(settings)
    assert "(ONNX) is not installed" in err.value.one_line()
    assert "playlistgen models install" in err.value.one_line()


# --- building the ONNX models ----------------------------------------------------------------

def test_onnx_build_refuses_other_architectures() -> None:
    pytest.importorskip("onnx")
    from playlistgen.core.analysis.onnx_build import build_musicnn

    with pytest.raises(ValueError, match="is missing"):
        build_musicnn({})
    weights = {"batch_normalization/gamma": np.ones(2, np.float32)}
    with pytest.raises(ValueError, match="has shape"):
        build_musicnn(weights)


@needs_onnx
def test_onnxruntime_telemetry_is_off(tmp_path: Path) -> None:
    """onnxruntime >= 1.29 writes a device id and an event database under ~/.cache/Microsoft
    and uploads them unless ORT_DISABLE_TELEMETRY is set before it starts: we set it."""
    code = ("import sys, numpy as np; from pathlib import Path;"
            "from playlistgen.core.analysis.models import require_model;"
            "from playlistgen.core.analysis.onnx_musicnn import OnnxMusicnn;"
            "m = OnnxMusicnn(require_model(Path(sys.argv[1]), 'msd_musicnn', 'onnx'));"
            "print(m.predict(np.ones((2, 187, 96), np.float32))[0].shape)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORT_", "XDG_"))}
    env.update(HOME=str(tmp_path), PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code, str(MODELS)], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "(2, 50)"
    assert list(tmp_path.iterdir()) == [], "onnxruntime wrote into $HOME"


@needs_onnx
def test_stream_equals_plain_patch_mean() -> None:
    """The streamed balanced path (chunks of odd sizes, every third patch, mel computed only for
    the patches that run) gives exactly the mean over every third patch of the whole signal."""
    from playlistgen.core.analysis.musicnn import MusicnnStream
    from playlistgen.core.analysis.onnx_musicnn import OnnxMusicnn
    from playlistgen.core.analysis.presets import get_preset

    model = OnnxMusicnn(require_model(MODELS, "msd_musicnn", "onnx"))
    stream = MusicnnStream([model], get_preset("balanced"))
    signal = np.concatenate([generated_signals()["song"], generated_signals()["clicks"]])
    state = stream.begin()
    for start in range(0, len(signal), 77_777):
        stream.push(state, signal[start:start + 77_777])
    out = stream.finish(state)
    embedding, tags = out.embedding, out.tags
    chosen = patches_of(signal)[::3]
    ref_tags, ref_emb = model.predict(chosen)
    assert state.analysed == len(chosen) >= 3
    # float32 outputs computed in other batches differ in the last bits, and by how much depends on
    # the CPU's kernels (AVX-512 or not): a float32-sized tolerance, never an exact one.
    np.testing.assert_allclose(embedding, ref_emb.mean(0), rtol=1e-5, atol=1e-6)
    expected = {label: float(p) for label, p in zip(model.labels, ref_tags.mean(0), strict=True)}
    assert tags["msd"].keys() == expected.keys()
    assert all(abs(tags["msd"][k] - v) <= 5e-5 + 1e-6 for k, v in expected.items())   # rounded to 4 places
