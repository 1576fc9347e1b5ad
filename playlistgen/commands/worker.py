"""`playlistgen worker` (Dask analysis workers for another machine's daemon) and
`playlistgen cluster certs DIR` (TLS certificates for them)."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import click

from .common import settings_from_ctx, user_errors


@click.command()
@click.option("--scheduler", "scheduler", metavar="ADDR",
              help="The daemon's Dask scheduler, tls://HOST:8786 (tcp:// only on loopback); "
                   "default analysis.dask_scheduler.")
@click.option("--nworkers", type=int, default=0, show_default="CPU cores",
              help="Worker processes; each analyses one file at a time.")
@click.option("--preset", type=click.Choice(["fast", "balanced", "accurate"]),
              help="Only analyse for a daemon using this preset (refuse others).")
@click.option("--tls-ca", type=click.Path(dir_okay=False, exists=True), help="CA certificate (ca.pem).")
@click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True), help="This worker's certificate.")
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True), help="This worker's private key.")
@click.pass_context
@user_errors
def worker(ctx: click.Context, scheduler: str | None, nworkers: int, preset: str | None, tls_ca: str | None,
           tls_cert: str | None, tls_key: str | None) -> None:
    """Analyse files for a playlistgen daemon on another machine (Dask worker processes).

    The models and the files come from the daemon; this machine needs neither the library nor
    the database, only the same playlistgen version. Runs until stopped (Ctrl+C).

    \b
    Examples:
      playlistgen worker --scheduler tls://nas.local:8786 --tls-ca ca.pem \\
          --tls-cert worker.pem --tls-key worker.key
      playlistgen worker --scheduler tcp://127.0.0.1:8786 --nworkers 2
    """
    settings = settings_from_ctx(ctx, {"analysis": {"dask_tls_ca": tls_ca, "dask_tls_cert": tls_cert,
                                                    "dask_tls_key": tls_key}})
    from ..core.execution.dask.config import check_address, tls_files

    tls = tls_files(settings.analysis)
    address = scheduler or settings.analysis.dask_scheduler
    if not address:
        raise click.UsageError("give the daemon's scheduler with --scheduler tls://HOST:8786")
    check_address("--scheduler", address, tls)
    if tls.configured:   # one line for files that cannot work, before Dask tries them
        from ..core.execution.dask.certs import check_files

        check_files(tls.ca, tls.cert, tls.key, role="worker", names=("--tls-ca", "--tls-cert", "--tls-key"))
    if nworkers < 0:
        raise click.BadParameter("must be at least 1 (0 = CPU cores)", param_hint="--nworkers")
    nworkers = nworkers or os.cpu_count() or 1

    from ..app import App
    from ..core.execution.dask.pool import WorkerPool
    from ..logs import configure_logging

    configure_logging(settings.logging.level, settings.logging.format)
    click.echo(f"starting {nworkers} analysis worker(s) on {socket.gethostname()} for {address}", err=True)
    with tempfile.TemporaryDirectory(prefix="playlistgen-worker-") as tmp:
        refusal = Path(tmp) / "refused"
        pool = WorkerPool(address, nworkers, tls.security(), preset=preset or "", refusal_file=str(refusal))
        App.for_worker(settings, pool).run()   # until Ctrl+C / SIGTERM, or the workers end by themselves
        if refusal.exists():
            raise click.ClickException(refusal.read_text(encoding="utf-8").strip())
        if pool.error is not None:
            raise pool.error


@click.group()
def cluster() -> None:
    """Set up analysis on other computers (Dask)."""


@cluster.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--host", "hosts", multiple=True, help="Name or address of this machine the workers use "
              "(repeatable; default: its host name).")
@click.option("--force", is_flag=True, help="Replace certificates already in DIRECTORY.")
@user_errors
def certs(directory: Path, hosts: tuple[str, ...], force: bool) -> None:
    """Make a CA and TLS certificates for the daemon and its workers in DIRECTORY (each names its
    role: a worker's certificate can only analyse, never act for the daemon).

    \b
    Example:
      playlistgen cluster certs ~/.config/playlistgen/certs --host nas.local
    """
    from ..core.execution.dask.certs import WORKER_FILES, make_certs

    paths = make_certs(directory, hosts=list(hosts), force=force)
    d = directory.resolve()
    host = hosts[0] if hosts else socket.gethostname()
    click.echo(f"wrote {', '.join(paths)} to {d} (keep ca.key, which signs certificates, and the daemon's files "
               f"here: a worker machine needs only {', '.join(WORKER_FILES)})")
    click.echo("\nOn this machine, in config.yaml:\n"
               f"  analysis: {{executor: dask, dask_tls_ca: {d / 'ca.pem'}, dask_tls_cert: {d / 'daemon.pem'}, "
               f"dask_tls_key: {d / 'daemon.key'}}}\n")
    click.echo("On the other machine (with the same playlistgen version installed), run:")
    click.echo(f"  mkdir -p ~/playlistgen-certs && "
               f"scp '{host}:{d}/{{{','.join(WORKER_FILES)}}}' ~/playlistgen-certs/")
    click.echo(f"  playlistgen worker --scheduler tls://{host}:8786 --tls-ca ~/playlistgen-certs/ca.pem "
               "--tls-cert ~/playlistgen-certs/worker.pem --tls-key ~/playlistgen-certs/worker.key")
