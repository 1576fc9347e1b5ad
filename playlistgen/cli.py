"""The `playlistgen` command. Sub-commands live in playlistgen/commands/; this module only wires
them together. Log handlers are configured by playlistgen/logs.py, called from the commands."""

from __future__ import annotations

import click

from . import __version__
from .commands.analyze import analyze
from .commands.db import db
from .commands.doctor import doctor
from .commands.mediaserver import mediaserver
from .commands.models import models
from .commands.mpd import mpd
from .commands.playlist import playlist
from .commands.scan import scan
from .commands.serve import serve
from .commands.similarity import similarity
from .commands.tags import tags
from .commands.transfer import export, import_
from .commands.worker import cluster, worker


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="playlistgen")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="YAML config file (default: $PLAYLISTGEN_CONFIG, else ./config.yaml, else "
                   "~/.config/playlistgen/config.yaml; relative paths in it are relative to its folder).")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None) -> None:
    """Analyse a local music library once and serve good playlists over HTTP.

    \b
    Examples:
      playlistgen serve --library ~/Music
      playlistgen db stats
      playlistgen doctor
    """
    ctx.ensure_object(dict)
    ctx.obj["config_file"] = config_file


for command in (serve, scan, analyze, db, doctor, models, playlist):
    cli.add_command(command)
for command in (export, import_, tags, mpd):   # issue 12
    cli.add_command(command)
cli.add_command(mediaserver)   # issue 11
for command in (worker, cluster):   # issue 13
    cli.add_command(command)
cli.add_command(similarity)   # issue 22


def main() -> None:
    cli(prog_name="playlistgen")
