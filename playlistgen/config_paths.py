"""Where the relative paths of the settings point, whatever folder playlistgen is started in.

The rule (config.yaml's header and the README say it too):

* a path on the command line (``--db``, ``--library``…) is relative to the current folder;
* a path in a config file is relative to that file's folder;
* a path in an environment variable is relative to the current folder;
* a path key given nowhere takes its default inside the data folder: ``$PLAYLISTGEN_DATA_DIR``,
  else ``$XDG_DATA_HOME/playlistgen``, else ``~/.local/share/playlistgen`` — except the models
  when none are installed there but the source checkout playlistgen runs from has them
  (`make models`): a checkout's `playlistgen scan ~/Music` works from any folder.

The config file is ``--config``, else ``$PLAYLISTGEN_CONFIG``, else ``./config.yaml``, else
``$XDG_CONFIG_HOME/playlistgen/config.yaml`` (``~/.config/playlistgen/config.yaml``).

``~`` is expanded everywhere; an empty value stays empty (it means "none").
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DATA_DIR_ENV = "PLAYLISTGEN_DATA_DIR"

# section -> its keys that hold file or folder paths (path *prefixes* such as path_map are not paths)
PATH_KEYS: dict[str, tuple[str, ...]] = {
    "library": ("paths",),
    "database": ("path",),
    "analysis": ("models_dir", "dask_tls_ca", "dask_tls_cert", "dask_tls_key"),
    "playlists": ("output_dir",),
    "mpd": ("music_directory",),
}


def data_dir(environ: Mapping[str, str]) -> Path:
    """The per-user data folder (absolute). XDG_DATA_HOME counts only when absolute, as the XDG
    base directory specification says."""
    explicit = environ.get(DATA_DIR_ENV, "")
    if explicit:
        return Path(os.path.abspath(os.path.expanduser(explicit)))
    xdg = environ.get("XDG_DATA_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "playlistgen"
    home = environ.get("HOME") or str(Path.home())
    return Path(home) / ".local" / "share" / "playlistgen"


def is_path_key(section: str, key: str) -> bool:
    return key in PATH_KEYS.get(section, ())


def resolve(value: str, base: Path | str) -> str:
    """``value`` made absolute against ``base`` (``~`` expanded, no symlink followed)."""
    if not value:
        return value
    return os.path.normpath(os.path.join(base, os.path.expanduser(value)))


def resolve_value(value: str | list[str], base: Path | str) -> str | list[str]:
    if isinstance(value, list):
        return [resolve(v, base) for v in value]
    return resolve(value, base)


def checkout_models() -> Path | None:
    """The models `make models` built in the source checkout this code runs from (an editable
    install or PYTHONPATH), when there are any; None for an installed wheel."""
    models = Path(__file__).resolve().parents[1] / "models"
    return models if (models / "manifest.json").is_file() else None


def resolve_defaults(settings: object, base: Path) -> None:
    """Path keys still relative were given nowhere: their defaults go under ``base``. The models'
    default is the data folder's, unless none are installed there and the checkout has them."""
    for section_name, keys in PATH_KEYS.items():
        section = getattr(settings, section_name)
        for key in keys:
            value = getattr(section, key)
            values = value if isinstance(value, list) else [value]
            if any(v and not os.path.isabs(os.path.expanduser(v)) for v in values):
                setattr(section, key, resolve_value(value, base))
                if (section_name, key) == ("analysis", "models_dir"):
                    section.models_dir = _default_models(Path(section.models_dir))


def _default_models(in_data_dir: Path) -> str:
    checkout = None if (in_data_dir / "manifest.json").is_file() else checkout_models()
    return str(checkout or in_data_dir)


def find_config_file(explicit: str | None, environ: Mapping[str, str]) -> Path | None:
    """--config, else $PLAYLISTGEN_CONFIG, else ./config.yaml, else the per-user
    $XDG_CONFIG_HOME/playlistgen/config.yaml (~/.config/playlistgen/config.yaml); None without one."""
    if explicit:
        return Path(explicit)
    if environ.get("PLAYLISTGEN_CONFIG"):
        return Path(environ["PLAYLISTGEN_CONFIG"])
    xdg = environ.get("XDG_CONFIG_HOME", "")
    home = Path(environ.get("HOME") or Path.home())
    user = (Path(xdg) if xdg and os.path.isabs(xdg) else home / ".config") / "playlistgen" / "config.yaml"
    # os.path.isfile: an unreadable home (a service user's) is "no file there", not a crash
    return next((p for p in (Path("config.yaml"), user) if os.path.isfile(p)), None)
