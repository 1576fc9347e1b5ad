"""`playlistgen tags write`: the analysis written into the files' own tags (core.tagwriter)."""

from __future__ import annotations

import os
import signal

import click

from .common import settings_from_ctx, user_errors


@click.group()
def tags() -> None:
    """Write analysis results (BPM, key, ReplayGain, moods) into the audio files' tags."""


def _files_under(db, paths: list[str]) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    from ..core.storage.files import live_files

    rows = sorted(live_files(db))
    wanted = [os.path.abspath(p) for p in paths]
    return [(p, t) for p, t in rows
            if any(p == w or p.startswith(w.rstrip(os.sep) + os.sep) for w in wanted)]


@tags.command("write")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("--fields", default="bpm,key,replaygain,mood", show_default=True,
              help="Comma-separated: bpm, key, replaygain, mood, genre (genre replaces the file's GENRE).")
@click.option("--key-notation", type=click.Choice(["standard", "camelot"]), default="standard", show_default=True,
              help='Initial key as "Am" / "F#" or as Camelot "8A".')
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), help="Database file.")
@click.pass_context
@user_errors
def write(ctx: click.Context, paths: tuple[str, ...], fields: str, key_notation: str, dry_run: bool,
          db_path: str | None) -> None:
    """Write the analysis of analysed files under PATH (files or folders; default library.paths).

    Each file is written to a temporary copy next to it, verified (tags read back, audio decodes
    to the same samples) and then atomically swapped in; read-only files are reported and skipped.
    The file's mtime changes (its tags did); playlistgen keeps its analysis.

    \b
    Examples:
      playlistgen tags write --dry-run
      playlistgen tags write ~/Music/Album --fields bpm,key --key-notation camelot
      playlistgen tags write song.flac --fields bpm,key,replaygain,mood,genre
    """
    from ..core.integrations.tags.writer import FIELDS, write_tags
    from ..core.library.tag_copies import Terminated, interrupt_on_sigterm, remove_stale_copies
    from ..errors import BadRequestError

    chosen = [f.strip() for f in fields.split(",") if f.strip()]
    unknown = [f for f in chosen if f not in FIELDS]
    if unknown or not chosen:
        raise BadRequestError(f"unknown field(s) {', '.join(unknown) or '(none)'} in --fields",
                              hint=f"choose from {', '.join(FIELDS)}")
    settings = settings_from_ctx(ctx, {"database": {"path": db_path}})
    from ..core.storage.db import Database
    from ..core.storage.records import get_many_features

    db = Database.from_settings(settings)
    counts: dict[str, int] = {}
    folders: set[str] = set()
    previous_sigterm = interrupt_on_sigterm()
    try:
        files = _files_under(db, list(paths) or settings.library.paths)
        if not files:
            click.echo("no analysed files there (run `playlistgen scan` first)", err=True)
            return
        for start in range(0, len(files), 200):
            part = files[start:start + 200]
            ids = [t for _, t in part]
            records = get_many_features(db, None, ids)
            # the audio each analysis describes: a file replaced since the scan is not written
            audio = dict(db.query(f"SELECT id, audio_fingerprint FROM tracks WHERE id IN ({', '.join('?' * len(ids))})",
                                  ids))
            for path, track_id in part:
                record = records.get(track_id)
                if record is None:
                    continue
                record = {**record, "audio_fingerprint": audio.get(track_id)}
                folder = os.path.dirname(os.path.realpath(path))
                if not dry_run and folder not in folders:   # copies a killed run left behind
                    folders.add(folder)
                    for leftover in remove_stale_copies(folder):
                        click.echo(f"removed a temporary copy left by an interrupted write: {leftover}", err=True)
                outcome = write_tags(path, record, chosen, key_notation=key_notation, dry_run=dry_run,
                                     threshold=settings.playlists.tag_min_probability,
                                     library_roots=settings.library.paths)
                counts[outcome.status] = counts.get(outcome.status, 0) + 1
                changes = ", ".join(f"{k}: {old or '-'} -> {new}" for k, (old, new) in outcome.changes.items())
                if outcome.status in ("written", "would-change"):
                    click.echo(f"{outcome.status}: {path}: {changes}")
                elif outcome.status in ("skipped", "failed"):
                    click.echo(f"{outcome.status}: {path}: {outcome.reason}", err=True)
    except KeyboardInterrupt as exc:
        how = "terminated" if isinstance(exc, Terminated) else "interrupted"
        click.echo(f"\n{how}: the file being written was left as it was", err=True)
        raise click.exceptions.Exit(128 + signal.SIGTERM if how == "terminated" else 130) from None
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)
        db.close()
    click.echo(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing to do", err=True)
    if counts.get("failed"):
        raise click.exceptions.Exit(1)
