"""`playlistgen scan`: one-shot reconcile + analysis with a progress bar and a summary."""

from __future__ import annotations

import os
import sys
import time

import click

from ..config import Settings
from .common import settings_from_ctx, user_errors

# how long `scan` waits for an analysis worker when none can take a file (Dask: none joined yet)
CAPACITY_WAIT_S = 120.0


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """A one-line progress bar on stderr: files done/total, tracks/min, ETA. On a non-terminal
    (CI, logs) it prints a line every few seconds instead of redrawing."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.started = time.monotonic()
        self.tty = sys.stderr.isatty()
        self._last_print = 0.0
        self._last_done = -1

    def __call__(self, stats) -> None:  # type: ignore[no-untyped-def]
        done = stats.analysed + stats.failed
        now = time.monotonic()
        if not self.tty and (done == self._last_done or (now - self._last_print < 5 and done < self.total)):
            return  # off a terminal: a line every few seconds, and never the same line twice
        self._last_print, self._last_done = now, done
        elapsed = max(now - self.started, 1e-6)
        rate = done / elapsed * 60
        eta = (self.total - done) / (done / elapsed) if done else 0
        width = 24
        filled = int(width * done / self.total) if self.total else width
        line = (f"[{'#' * filled}{'-' * (width - filled)}] {done}/{self.total} files  "
                f"{rate:.1f} tracks/min  ETA {_duration(eta) if done else '?'}  failed {stats.failed}")
        click.echo(("\r" + line) if self.tty else line, err=True, nl=not self.tty)

    def close(self, stats=None) -> None:  # type: ignore[no-untyped-def]
        done = stats.analysed + stats.failed if stats is not None else self._last_done
        if stats is not None and (done != self._last_done or done != self.total):
            self._last_print, self._last_done = float("-inf"), -1
            self.total = done  # copies linked on the way needed no analysis of their own
            self(stats)
        if self.tty:
            click.echo("", err=True)


@click.command()
@click.argument("dirs", nargs=-1, type=click.Path(file_okay=False))
@click.option("--preset", type=click.Choice(["fast", "balanced", "accurate"]), help="Analysis preset.")
@click.option("--workers", type=int, help="Analysis worker processes (0 = CPU cores).")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), help="Database file.")
@click.option("--upgrade", is_flag=True,
              help="Also complete tracks analysed by an older version (the patch-embedding spread the "
                   "similarity projection learns from: MusiCNN only, no DSP), now, in the foreground; "
                   "retries those that failed before. `serve` does it in the background.")
@click.pass_context
@user_errors
def scan(ctx: click.Context, dirs: tuple[str, ...], preset: str | None, workers: int | None,
         db_path: str | None, upgrade: bool) -> None:
    """Reconcile the library with the database and analyse everything new or changed.

    DIRS default to library.paths. DIRS inside library.paths scan that part of the library and
    leave the rest as it is; other DIRS are scanned as folders of their own: files the database
    knows elsewhere are left alone while they exist, and a known file that is gone (a moved
    folder) is followed into DIRS with its analysis, or marked missing. Without DIRS, files under
    folders no longer in library.paths are followed or marked missing. Exits 0 when the run
    completed, even if some files failed (it prints how many and why).

    \b
    Examples:
      playlistgen scan
      playlistgen scan ~/Music --preset fast --workers 2
      playlistgen scan --upgrade
    """
    overrides = {"analysis": {"preset": preset, "workers": workers}, "database": {"path": db_path}}
    settings, roots = _library(ctx, dirs, overrides)
    one_off = bool(dirs) and roots is None   # DIRS outside the configured library

    from ..app import App
    from ..logs import configure_logging

    configure_logging("WARNING" if settings.logging.level == "INFO" else settings.logging.level,
                      settings.logging.format)
    # the database, locked (not while serve runs on it), and the analysis pipeline, not started:
    # it runs here, in the foreground, on the configured executor (a Dask cluster too)
    app = App.for_scan(settings, keep_other_folders=one_off)
    try:
        _scan(settings, app.services.daemon, roots, upgrade=upgrade)
    finally:
        app.stop()


def _library(ctx: click.Context, dirs: tuple[str, ...], overrides: dict) -> tuple[Settings, list[str] | None]:
    """(settings, the roots to reconcile or None for all of library.paths). DIRS all inside the
    configured library are a part of it: reconciling only them must not drop the rest."""
    from ..core.library.roots import under_any
    from ..errors import ConfigError

    if dirs:
        settings = settings_from_ctx(ctx, overrides)
        configured = [os.path.abspath(p) for p in settings.library.paths]
        wanted = [os.path.abspath(d) for d in dirs]
        if all(under_any(d, configured) for d in wanted):
            for folder in wanted:
                if not os.path.isdir(folder):
                    raise ConfigError(f"folder '{folder}' does not exist", hint="check the path", path=folder)
            return settings, wanted
    overrides = {**overrides, "library": {"paths": list(dirs) or None}}
    return settings_from_ctx(ctx, overrides, require_library=True), None


def _scan(settings, daemon, roots: list[str] | None = None, upgrade: bool = False) -> None:  # type: ignore[no-untyped-def]
    """Reconcile (``roots``, default all of library.paths), analyse what is pending with
    ``daemon``'s pipeline, print the summary; with ``upgrade``, complete older analyses too."""
    from ..core.library.reconcile import library_counts

    queue, executor, scheduler = daemon.queue, daemon.executor, daemon.scheduler
    queue.requeue_in_flight()
    started = time.monotonic()
    report = daemon.library.reconcile(trigger="cli", roots=roots)
    pending = queue.pending_count()
    click.echo(f"library: {_buckets(report)}; {report.missing} missing; "
               f"{pending} to analyse with preset '{settings.analysis.preset}'", err=True)
    progress = Progress(pending)
    try:
        if pending:
            executor.start()
            stats = _analyse(queue, executor, scheduler, progress)
        else:
            stats = scheduler.stats
    except KeyboardInterrupt:
        click.echo("\ninterrupted: stopping workers; unfinished files stay queued", err=True)
        scheduler.stop(grace_s=0)
        raise click.exceptions.Exit(130) from None
    finally:
        progress.close(scheduler.stats)
        if not upgrade:
            executor.close(grace_s=0)
    elapsed = time.monotonic() - started
    summary = stats.to_dict()
    per_min = summary["cpu_s_per_audio_min"]
    skipped = report.unchanged + report.linked + report.moved + report.retagged
    click.echo(f"analysed {stats.analysed}, failed {stats.failed}, skipped {skipped} in {_duration(elapsed)}"
               + (f"; {per_min:.2f} CPU-s per audio minute" if per_min else ""))
    if stats.failed:
        for failure in queue.failures(limit=10):
            click.echo(f"  failed: {failure['path']}: {failure['reason']}", err=True)
        click.echo(f"{stats.failed} file(s) could not be analysed; they are retried only when they change. "
                   "All failures: GET /api/v1/tracks/failed or `playlistgen db stats`.", err=True)
    try:
        _upgrade(settings, daemon, run=upgrade)
    finally:
        executor.close(grace_s=0)
    counts = library_counts(daemon.db)
    click.echo(f"database: {counts['done']} analysed, {counts['failed']} failed, {counts['pending']} pending, "
               f"{counts['missing']} missing", err=True)


class _UpgradeStats:
    """The upgrade's counters in the shape Progress reads."""

    def __init__(self, upgrades) -> None:  # type: ignore[no-untyped-def]
        self.upgrades = upgrades

    @property
    def analysed(self) -> int:
        return self.upgrades.upgraded

    @property
    def failed(self) -> int:
        return self.upgrades.failed


def _upgrade(settings, daemon, *, run: bool) -> None:  # type: ignore[no-untyped-def]
    """Tracks analysed before the spread existed: with ``run``, upgrade them now (with a progress
    bar); without, say how many wait and how to do it."""
    upgrades, scheduler, executor = daemon.upgrades, daemon.scheduler, daemon.executor
    if not upgrades.enabled:
        if run:
            click.echo(f"upgrade: preset '{settings.analysis.preset}' runs no model, nothing to upgrade", err=True)
        return
    if not run:
        todo = upgrades.counts()["todo"]
        if todo:
            click.echo(f"upgrade: {todo} track(s) analysed by an older version lack the patch-embedding spread "
                       "(similarity adapts to your library with it); `playlistgen scan --upgrade` adds it now "
                       "(MusiCNN only), `playlistgen serve` in the background", err=True)
        return
    retried = upgrades.retry_failed()
    todo = upgrades.counts()["todo"]
    click.echo(f"upgrade: {todo} track(s) to complete with preset '{settings.analysis.preset}'"
               + (f" ({retried} that failed before are retried)" if retried else ""), err=True)
    if not todo:
        return
    scheduler.upgrades = upgrades
    stats = _UpgradeStats(upgrades)
    progress = Progress(todo)
    started = time.monotonic()
    try:
        executor.start()
        _run_upgrade(upgrades, executor, scheduler, lambda _: progress(stats))
    except KeyboardInterrupt:
        click.echo("\ninterrupted: the tracks not upgraded yet are upgraded later", err=True)
        scheduler.stop(grace_s=0)
        raise click.exceptions.Exit(130) from None
    finally:
        progress.close(stats)
    click.echo(f"upgraded {upgrades.upgraded}, failed {upgrades.failed} in {_duration(time.monotonic() - started)}")
    if upgrades.failed:
        for path, reason in upgrades.failures():
            click.echo(f"  not upgraded: {path or '(no present file)'}: {reason}", err=True)
        click.echo(f"{upgrades.failed} track(s) could not be upgraded: their old embedding keeps answering; "
                   "`scan --upgrade` tries them again", err=True)


def _run_upgrade(upgrades, executor, scheduler, progress) -> None:  # type: ignore[no-untyped-def]
    """Run the upgrade jobs until none is left. As with the analysis (``_analyse``), an executor
    whose capacity comes and goes (Dask) may leave jobs when the scheduler runs dry: wait for
    capacity and go on, until none comes for CAPACITY_WAIT_S or a round with capacity finishes
    nothing (then the rest stays for the daemon)."""
    idle_rounds = 0
    while True:
        before = upgrades.upgraded + upgrades.failed
        scheduler.run_until_idle(progress)
        todo = upgrades.counts()["todo"]
        if not todo:
            return
        idle_rounds = idle_rounds + 1 if upgrades.upgraded + upgrades.failed == before else 0
        if idle_rounds >= 3 or not executor.wait_for_capacity(CAPACITY_WAIT_S):
            click.echo(f"\n{todo} track(s) stay to upgrade: no analysis worker could take them "
                       f"(waited {CAPACITY_WAIT_S:.0f} s); `serve` upgrades them in the background", err=True)
            return


def _buckets(report) -> str:  # type: ignore[no-untyped-def]
    """Every file seen in exactly one bucket: they add up to the count in front (missing files
    were not seen, so they are told apart)."""
    buckets = {"unchanged": report.unchanged, "new or changed": report.queued, "moved": report.moved,
               "copies": report.linked, "retagged": report.retagged, "unreadable": report.unreadable}
    text = ", ".join(f"{n} {name}" for name, n in buckets.items())
    other = report.seen - sum(buckets.values())
    if other:   # a bucket the reconcile gained and this line does not know yet: never hide it
        text += f", {other} other"
    return f"{report.seen} files ({text})"


def _analyse(queue, executor, scheduler, progress):  # type: ignore[no-untyped-def]
    """Analyse everything pending. An executor whose capacity comes and goes (Dask: workers join
    and leave; connecting takes a moment) can leave files pending when the scheduler runs dry:
    wait for capacity and go on, until none comes for CAPACITY_WAIT_S."""
    while True:
        stats = scheduler.run_until_idle(progress)
        if not queue.pending_count():
            return stats
        if not executor.wait_for_capacity(CAPACITY_WAIT_S):
            click.echo(f"\n{queue.pending_count()} file(s) stay queued: no analysis worker could take them "
                       f"(waited {CAPACITY_WAIT_S:.0f} s)", err=True)
            return stats
