"""`playlistgen models …`: build the offline ML models from the musicnn wheel and list them."""

from __future__ import annotations

from pathlib import Path

import click

from ..core.analysis.models import ModelInfo, all_models, install_models
from .common import settings_from_ctx, user_errors

models_dir_option = click.option(
    "--models-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Folder of the models (default: analysis.models_dir; relative to the current folder).")


def _models_dir(ctx: click.Context, models_dir: Path | None) -> Path:
    # The flag goes in as an override so it wins over the config file and the environment.
    override = str(models_dir) if models_dir is not None else None
    settings = settings_from_ctx(ctx, {"analysis": {"models_dir": override}})
    return Path(settings.analysis.models_dir)


def _human(size: int | None) -> str:
    if size is None:
        return "-"
    return f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KB"


def _table(infos: list[ModelInfo]) -> str:
    rows = [("NAME", "RUNTIME", "FILE", "STATUS", "LABELS", "SHA256", "SIZE")]
    rows += [(i.name, i.runtime, i.path.name, i.status, str(len(i.labels)), i.sha256[:12] or "-",
              _human(i.size_bytes)) for i in infos]
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


@click.group()
def models() -> None:
    """Build and list the offline ML models (MusiCNN, converted from the musicnn package).

    \b
    Examples:
      playlistgen models install
      playlistgen models install --wheel ~/Downloads/musicnn-0.1.0-py3-none-any.whl
      playlistgen models list
    """


@models.command()
@models_dir_option
@click.option("--wheel", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Use this musicnn-0.1.0-py3-none-any.whl instead of downloading it with pip.")
@click.option("--force", is_flag=True, help="Rebuild even when the installed models are intact.")
@click.option("--no-wheel-cache", is_flag=True,
              help="Do not keep the musicnn wheel (29 MB) in MODELS_DIR/.cache for offline re-installs "
                   "(a container image ships the models only).")
@click.pass_context
@user_errors
def install(ctx: click.Context, models_dir: Path | None, wheel: Path | None, force: bool,
            no_wheel_cache: bool) -> None:
    """Download musicnn==0.1.0 (the wheel only) and convert its checkpoints: frozen graphs for
    Essentia's TensorFlow and ONNX models for onnxruntime (needs TensorFlow: the convert extra).

    Does nothing when the models are already installed and their checksums match.
    Without network access, fetch the wheel elsewhere and pass it with --wheel.

    \b
    Examples:
      playlistgen models install
      playlistgen models install --models-dir /var/lib/playlistgen/models --force
      playlistgen models install --wheel ./musicnn-0.1.0-py3-none-any.whl
      playlistgen models install --models-dir /opt/models --no-wheel-cache
    """
    target = _models_dir(ctx, models_dir)
    install_models(target, wheel=wheel, force=force, keep_wheel=not no_wheel_cache,
                   progress=lambda message: click.echo(message, err=True))
    click.echo(_table(all_models(target)))


@models.command("list")
@models_dir_option
@click.pass_context
@user_errors
def list_(ctx: click.Context, models_dir: Path | None) -> None:
    """Show each model with its status (ok, missing, corrupt), label count, checksum and size.

    \b
    Example:
      playlistgen models list --models-dir ./models
    """
    target = _models_dir(ctx, models_dir)
    infos = all_models(target)
    click.echo(_table(infos))
    if any(not info.ok for info in infos):
        click.echo(f"some models in {target} are not usable: run `playlistgen models install`"
                   f"{' --force' if any(i.status == 'corrupt' for i in infos) else ''}", err=True)
