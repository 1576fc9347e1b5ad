"""Shared pieces of the command-line interface: loading settings from the global options and
turning PlaylistgenError into one clear line with a non-zero exit code."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import Any

import click

from ..config import Settings, load_settings
from ..errors import PlaylistgenError


def settings_from_ctx(ctx: click.Context, overrides: Mapping[str, Mapping[str, Any]] | None = None,
                      *, require_library: bool = False) -> Settings:
    """Build Settings from --config (on the group), the environment and this command's flags."""
    root = ctx.find_root()
    config_file = (root.obj or {}).get("config_file")
    settings = load_settings(config_file, overrides=overrides, require_library=require_library)
    _make_data_dir(settings)
    return settings


def _make_data_dir(settings: Settings) -> None:
    """The per-user data folder is made on first use (private: it holds the database), when the
    database lives there — the other defaults in it are made by whoever writes them."""
    if os.path.dirname(settings.database.path) == settings.data_dir and not os.path.isdir(settings.data_dir):
        try:
            os.makedirs(settings.data_dir, mode=0o700, exist_ok=True)
        except OSError:
            pass   # the database open (or doctor) names the folder and the fix


def user_errors(fn: Callable) -> Callable:
    """Print a PlaylistgenError as one line on stderr and exit 2 (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PlaylistgenError as exc:
            raise click.ClickException(exc.one_line()) from None

    return wrapper
