"""`playlistgen analyze FILE...`: analyse files and print the results, without the database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import AnalysisError
from .common import settings_from_ctx, user_errors

if TYPE_CHECKING:
    from ..core.analysis.result import AnalysisResult


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _summary(path: str, r: AnalysisResult) -> str:
    meta = r.metadata or {}
    title = " - ".join(str(v) for v in (meta.get("artist"), meta.get("title")) if v) or path
    extra = ", ".join(str(v) for v in (meta.get("album"), meta.get("year")) if v)
    lines = [path, f"  {title}{f' ({extra})' if extra else ''}  {_minutes(r.duration_s)}"]
    bpm = f"{r.bpm:.1f} bpm (conf {r.bpm_confidence:.2f})" if r.bpm else "bpm ?"
    key = f"{r.key} {r.scale} ({r.camelot}, {r.key_strength:.2f})" if r.key else "key ?"
    lines.append(f"  {bpm} · {key} · {r.loudness_lufs:.1f} LUFS (LRA {r.loudness_range:.1f})"
                 f" · energy {r.energy:.2f} · danceability {r.danceability:.2f}")
    if r.tags:
        for source, probs in r.tags.items():
            top = sorted(probs.items(), key=lambda kv: -kv[1])[:6]
            lines.append(f"  {source} tags: " + ", ".join(f"{k} {v:.2f}" for k, v in top))
        lines.append(f"  valence {r.valence:.2f} · acousticness {r.acousticness:.2f}"
                     f" · instrumentalness {r.instrumentalness:.2f}")
    if r.flags:
        lines.append("  flags: " + ", ".join(r.flags))
    wall = r.timings.total_s if r.timings is not None else None
    lines.append(f"  {r.analyzer_version} preset {r.preset} · cpu {r.cpu_s or 0:.2f} s"
                 f" · wall {wall or 0:.2f} s")
    return "\n".join(lines)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--preset", type=click.Choice(["fast", "balanced", "accurate"]),
              help="Analysis depth (default: analysis.preset from the config, balanced).")
@click.option("--backend", type=click.Choice(["auto", "essentia", "librosa"]),
              help="Analyzer backend (default: analysis.backend, auto).")
@click.option("--models-dir", type=click.Path(file_okay=False), default=None,
              help="Folder of the ML models (default: analysis.models_dir, ./models).")
@click.option("--ml-runtime", type=click.Choice(["auto", "onnx", "essentia"]), default=None,
              help="Runtime of the MusiCNN models (default: analysis.ml_runtime, auto).")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON list, one object per file; failures as {\"path\", \"error\"}.")
@click.pass_context
@user_errors
def analyze(ctx: click.Context, files: tuple[str, ...], preset: str | None, backend: str | None,
            models_dir: str | None, ml_runtime: str | None, as_json: bool) -> None:
    """Analyse audio files and print their features, without touching the database.

    Prints tempo, key, loudness, energy, timbre and (balanced/accurate) MusiCNN tags and the
    embedding for each FILE. Exits 0 when every file was analysed, 1 when any failed (each
    failure is reported with a one-line reason).

    \b
    Examples:
      playlistgen analyze song.flac
      playlistgen analyze --preset fast --json ~/Music/*.mp3 > features.json
      playlistgen analyze --backend librosa --preset balanced song.ogg
    """
    settings = settings_from_ctx(ctx, {"analysis": {"preset": preset, "backend": backend,
                                                    "models_dir": models_dir,
                                                    "ml_runtime": ml_runtime}})
    from ..core.analysis.factory import create_analyzer
    from ..logs import configure_logging

    configure_logging(settings.logging.level, settings.logging.format)
    analyzer = create_analyzer(settings.analysis.backend, settings.analysis.preset,
                               Path(settings.analysis.models_dir), settings.analysis.ml_runtime)
    results: list[dict[str, Any]] = []
    failed = 0
    for path in files:
        try:
            result = analyzer.analyze(path)
        except AnalysisError as exc:
            failed += 1
            results.append({"path": path, "error": exc.one_line()})
            if not as_json:
                click.echo(f"{path}\n  FAILED: {exc.one_line()}")
            continue
        results.append({"path": path, **result.to_dict()})
        if not as_json:
            click.echo(_summary(path, result))
    if as_json:
        click.echo(json.dumps(results, ensure_ascii=False, indent=1))
    elif len(files) > 1:
        click.echo(f"{len(files) - failed} analysed, {failed} failed", err=True)
    ctx.exit(1 if failed else 0)
