"""Settings: every key with its default and a help line; loaded from YAML, overridden by
``PLAYLISTGEN_<SECTION>__<KEY>`` environment variables and then by command-line flags,
validated once, and passed explicitly (there is no global settings object)."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import socket
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config_fields import setting
from .config_paths import data_dir, find_config_file, is_path_key, resolve_defaults, resolve_value
from .config_similarity import SimilaritySettings
from .errors import ConfigError
from .suggest import did_you_mean

ENV_PREFIX = "PLAYLISTGEN_"
DEFAULT_EXTENSIONS = [
    ".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".wav", ".aif", ".aiff",
    ".wma", ".ape", ".wv", ".mpc", ".mod", ".xm", ".it", ".s3m", ".mp4", ".webm", ".mka",
]


@dataclass
class LibrarySettings:
    paths: list[str] = setting(["./library"], "Music folders to watch and analyse.")
    ignore: list[str] = setting([], "Glob patterns (matched against the path) to skip, e.g. '*/Podcasts/*'.")
    extensions: list[str] = setting(DEFAULT_EXTENSIONS, "File extensions treated as audio.")
    watch: bool = setting(True, "Watch the folders for changes while serving.")
    polling: bool = setting(False, "Use a polling observer (network mounts, Docker volumes).")
    settle_seconds: float = setting(5.0, "Wait until a file has stopped changing this long before analysing it.", min=0)
    rescan_interval_s: int = setting(3600, "Full reconcile every N seconds to catch missed events (0 = off).", min=0)
    write_tags: bool = setting(False, "Write BPM, key, ReplayGain and moods into each file's tags after analysis "
                               "(`playlistgen tags write` does it on demand).")


@dataclass
class DatabaseSettings:
    path: str = setting("./playlistgen.db", "SQLite database file (WAL mode).")
    pool_min: int = setting(1, "Read connections kept open.", min=1, max=64)
    pool_max: int = setting(8, "Upper bound of read connections.", min=1, max=256)
    busy_timeout_ms: int = setting(5000, "How long SQLite waits on a lock before reporting busy.", min=0)
    batch_size: int = setting(64, "Writes grouped into one transaction by the writer thread.", min=1, max=10000)


@dataclass
class AnalysisSettings:
    preset: str = setting("balanced", "Analysis depth: fast (DSP only), balanced (+MusiCNN), accurate.",
                          choices=("fast", "balanced", "accurate"))
    backend: str = setting("auto", "Analyzer backend; auto picks essentia when it imports.",
                           choices=("auto", "essentia", "librosa"))
    workers: int = setting(0, "Analysis worker processes (0 = number of CPU cores).", min=0, max=256)
    executor: str = setting("process", "Run analysis in local worker processes, threads, or on a Dask cluster.",
                            choices=("process", "thread", "dask"))
    timeout_s: float = setting(600.0, "Per-file analysis time limit in seconds.", min=1)
    max_memory_mb: int = setting(1500, "Replace a worker whose RSS passes this many MB.", min=64)
    max_tasks_per_child: int = setting(500, "Replace a worker after this many files.", min=1)
    models_dir: str = setting("./models", "Where `playlistgen models install` puts the ML models.")
    ml_runtime: str = setting("auto", "Runtime of the MusiCNN models; auto = onnx when onnxruntime and the ONNX "
                              "models are present, else essentia.", choices=("auto", "onnx", "essentia"))
    dask_scheduler: str = setting("", "Dask scheduler (tcp://host:8786 or tls://host:8786) for executor dask; "
                                  "empty = start one inside serve on dask_listen.")
    dask_listen: str = setting("", "Where serve's own Dask scheduler listens; empty = tls://0.0.0.0:8786 when TLS "
                               "is configured, else tcp://127.0.0.1:8786.")
    dask_tls_ca: str = setting("", "CA certificate (PEM) for Dask TLS (`playlistgen cluster certs DIR` makes one).")
    dask_tls_cert: str = setting("", "This machine's certificate (PEM) for Dask TLS.")
    dask_tls_key: str = setting("", "This machine's private key (PEM) for Dask TLS.")
    dask_path_map: dict[str, str] = setting({}, "Daemon path prefix -> worker path prefix, for workers that mount "
                                            "the library themselves (otherwise the file's bytes are shipped).")
    dask_max_ship_mb: int = setting(1024, "Largest file shipped to a Dask worker; bigger files are analysed "
                                    "locally.", min=1)
    dask_max_attempts: int = setting(3, "A file that killed this many Dask workers is failed.", min=1, max=100)
    dask_fallback: str = setting("local", "When the Dask scheduler is unreachable: analyse locally, or wait.",
                                 choices=("local", "wait"))


@dataclass
class CacheSettings:
    size_mb: int = setting(64, "Feature cache size limit (compressed bytes).", min=0)
    ttl_s: int = setting(3600, "Seconds before a cached entry expires.", min=1)
    compression: str = setting("lz4", "Compression of cached entries (lz4: fast; zlib: ~15% smaller, slower).",
                               choices=("zlib", "lz4", "none"))


@dataclass
class ApiSettings:
    host: str = setting("127.0.0.1", "Address to bind; a non-loopback address requires api.key.")
    port: int = setting(8500, "TCP port of the HTTP API and dashboard.", min=1, max=65535)
    key: str = setting("", "API key clients send as X-API-Key (required when host is not loopback).")
    max_upload_mb: int = setting(500, "Largest accepted upload in MB.", min=1)
    slow_request_ms: int = setting(1000, "Requests slower than this are logged with their parameters.", min=0)
    allowed_hosts: list[str] = setting([], "Extra Host names the API answers to and sites that may POST to it "
                                       "(e.g. behind a reverse proxy; '.example.com' matches subdomains); "
                                       "the bound address, localhost, 127.0.0.1 and ::1 are always allowed.")


@dataclass
class PlaylistSettings:
    default_size: int = setting(25, "Tracks in a playlist when the request gives no size.", min=1, max=10000)
    artist_gap: int = setting(3, "Minimum number of tracks between two by the same artist.", min=0)
    album_gap: int = setting(2, "Minimum number of tracks between two from the same album.", min=0)
    output_dir: str = setting("./playlists", "Folder where saved playlists are written as M3U8.")
    file_extension: str = setting("m3u8", "Extension of saved playlist files (the content is UTF-8 M3U either way): "
                                  "m3u8 for Navidrome and Jellyfin, m3u when output_dir is MPD's "
                                  "playlist_directory (MPD lists only *.m3u there).", choices=("m3u8", "m3u"))
    max_per_artist: int = setting(0, "At most this many tracks by one artist in a playlist (0 = no cap).", min=0)
    dedupe: bool = setting(True, "Drop other versions of a song already in the playlist (remaster, live, radio edit).")
    # cosine and weight_embedding 3.0: tuned with bench/quality.py (docs/benchmarks.md, "Weight tuning"); re-measured
    # with the projected embedding by bench/similarity_weights.py (issue 22): flat within noise, so kept
    metric: str = setting("cosine", "Similarity metric over the weighted feature vectors.",
                          choices=("euclidean", "cosine"))
    weight_scalars: float = setting(1.0, "Similarity weight of the standardised scalars (tempo, energy, loudness...).",
                                    min=0)
    weight_mfcc: float = setting(1.0, "Similarity weight of the timbre summary (MFCC means and spreads).", min=0)
    weight_chroma: float = setting(0.5, "Similarity weight of the pitch-class profile (chroma).", min=0)
    weight_embedding: float = setting(3.0, "Similarity weight of the MusiCNN embedding (absent for preset fast).",
                                      min=0)
    tag_min_probability: float = setting(0.1, "Default minimum tag probability for mood/tag filters.", min=0, max=1)
    index_check_s: float = setting(5.0, "Seconds between checks whether the library changed (index rebuild).",
                                   min=0)
    path_map: dict[str, str] = setting({}, "Library path prefix -> the player's prefix, applied to every exported "
                                       "M3U8/XSPF, e.g. {/srv/music: /music}.")
    relative_paths: str = setting("auto", "Paths in saved playlists: auto = relative when output_dir is inside the "
                                  "library (as Navidrome expects), always, or never.",
                                  choices=("auto", "always", "never"))
    transition_weights: dict[str, float] = setting(
        {"camelot": 1.0, "tempo": 1.0, "loudness": 0.5, "energy": 0.5, "embedding": 1.0},
        "Weights of the transition cost used by order smooth/energy_arc.")
    exclude: dict[str, Any] = setting(
        {"paths": [], "folders": [], "genres": [], "tags": {}, "max_duration_min": 20.0},
        "Rules applied to automatic playlists unless a request sets include_excluded: path globs, folders, "
        "genres, ML tags {label: min probability}, and tracks longer than max_duration_min (0 = no limit).")
    schedule: list[dict[str, Any]] = setting([], "Mixes generated daily and saved under a stable name, e.g. "
                                             "[{name: Daily mix 1, strategy: for_you, at: '07:00', size: 40}].")


@dataclass
class MediaServerSettings:
    url: str = setting("", "Subsonic/OpenSubsonic server (Navidrome, gonic, Airsonic...), e.g. "
                       "http://127.0.0.1:4533; empty = no link.")
    user: str = setting("", "User name on the media server.")
    password: str = setting("", "Password on the media server (prefer PLAYLISTGEN_MEDIASERVER__PASSWORD); "
                            "never logged or shown.")
    path_map: dict[str, str] = setting({}, "Server path prefix -> library path prefix, when the server sees the "
                                       "files under another root (e.g. a Docker volume).")
    link_interval_s: int = setting(3600, "Re-link the server's songs every N seconds (0 = only on demand).", min=0)
    push_playlists: bool = setting(True, "Create/update saved playlists on the server as native playlists.")
    proxy: bool = setting(False, "Answer /rest/* as a proxy of the server, adding sonic similarity for every "
                          "Subsonic app.")


@dataclass
class MpdSettings:
    enabled: bool = setting(False, "Keep MPD's queue filled with radio continuations while serving.")
    host: str = setting("127.0.0.1", "MPD host.")
    port: int = setting(6600, "MPD port.", min=1, max=65535)
    password: str = setting("", "MPD password (empty = none); never logged.")
    music_directory: str = setting("", "MPD's music_directory as playlistgen sees it; empty = the first "
                                   "library.paths entry.")
    min_queue: int = setting(5, "Append songs whenever fewer than this many follow the current one.", min=1, max=1000)
    history: int = setting(200, "Never add a song among the last N played.", min=0)


@dataclass
class FeedbackSettings:
    skip_threshold_s: float = setting(30.0, "A song left within its first N seconds (its first half, when "
                                      "shorter) is a skip (MPD radio, /rest now-playing and OpenSubsonic playback "
                                      "reports).", min=1)
    play_fraction: float = setting(0.9, "A song heard past this part of its length is a full play; it cancels "
                                   "the song's earlier skips.", min=0.1, max=1)
    avoid_days: float = setting(30.0, "Radio, for_you and mixes leave out songs skipped within N days and rank "
                                "their neighbours lower; MPD radio lets a song skipped once back when it runs "
                                "short, never one skipped twice (0 = ignore skips).", min=0)
    neighbours: int = setting(5, "How many closest neighbours of a skipped song are ranked lower.", min=0, max=100)


@dataclass
class LoggingSettings:
    level: str = setting("INFO", "Log level.", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    format: str = setting("text", "Log line format.", choices=("text", "json"))
    tracemalloc: bool = setting(False, "Trace Python allocations (tracemalloc) for memory hunting; "
                                "/api/v1/performance/metrics then shows growth by source line. Costs CPU.")


@dataclass
class Settings:
    library: LibrarySettings = field(default_factory=LibrarySettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    playlists: PlaylistSettings = field(default_factory=PlaylistSettings)
    similarity: SimilaritySettings = field(default_factory=SimilaritySettings)
    mediaserver: MediaServerSettings = field(default_factory=MediaServerSettings)
    mpd: MpdSettings = field(default_factory=MpdSettings)
    feedback: FeedbackSettings = field(default_factory=FeedbackSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    # where the settings came from (not settings themselves): shown by doctor and /health
    config_file: str = field(default="", compare=False)
    data_dir: str = field(default="", compare=False)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def effective_workers(self) -> int:
        return self.analysis.workers or os.cpu_count() or 1


def sections() -> dict[str, type]:
    """Section name → its dataclass, in declaration order."""
    hints = typing.get_type_hints(Settings)
    return {f.name: hints[f.name] for f in dataclasses.fields(Settings) if dataclasses.is_dataclass(hints[f.name])}


def keys_with_help() -> list[tuple[str, Any, str]]:
    """(dotted key, default, help) for every setting — used for docs and `config.yaml`."""
    out = []
    defaults = Settings()
    for name, cls in sections().items():
        for f in dataclasses.fields(cls):
            out.append((f"{name}.{f.name}", getattr(getattr(defaults, name), f.name), f.metadata["help"]))
    return out


def _coerce(key: str, value: Any, hint_type: Any, source: str) -> Any:
    """Check a raw value against the field's type; strings from the environment are parsed."""
    origin = typing.get_origin(hint_type)
    args = typing.get_args(hint_type)
    if origin is dict:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key '{key}' must be a mapping (from {source}), got {value!r}",
                              hint=f"write it as {key.split('.')[-1]}: {{name: value}}")
        if args and args[1] is not Any:
            return {str(k): _coerce(f"{key}.{k}", v, args[1], source) for k, v in value.items()}
        return {str(k): v for k, v in value.items()}
    if origin is list and args and typing.get_origin(args[0]) is dict:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise ConfigError(f"config key '{key}' must be a list of mappings (from {source}), got {value!r}",
                              hint=f"write it as {key.split('.')[-1]}: [{{name: ..., ...}}]")
        return [dict(v) for v in value]
    if origin is list:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
            raise ConfigError(f"config key '{key}' must be a list of strings (from {source}), got {value!r}",
                              hint=f"write it as {key.split('.')[-1]}: [a, b]")
        return [str(v) for v in value]
    if hint_type is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key '{key}' must be true or false (from {source}), got {value!r}")
    if hint_type is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"config key '{key}' must be a whole number (from {source}), got {value!r}")
    if hint_type is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"config key '{key}' must be a number (from {source}), got {value!r}")
    if hint_type is str:
        if isinstance(value, bool):   # YAML 1.1 reads off/on/no/yes as booleans: the word the docs mean
            return "on" if value else "off"
        if isinstance(value, (str, int, float)):
            return str(value)
        raise ConfigError(f"config key '{key}' must be a string (from {source}), got {value!r}")
    raise AssertionError(f"unsupported settings type {hint_type}")


def _apply(settings: Settings, overrides: Mapping[str, Any], source: str, base: Path) -> None:
    """Apply {section: {key: value}} to settings, refusing unknown names; relative paths are taken
    from ``base`` (config_paths says which folder that is for each source)."""
    known = sections()
    for section_name, values in overrides.items():
        if section_name not in known:
            raise ConfigError(f"unknown config section '{section_name}' in {source}",
                              hint=did_you_mean(section_name, list(known)))
        if values is None:
            continue
        if not isinstance(values, Mapping):
            raise ConfigError(f"config section '{section_name}' in {source} must be a mapping of keys")
        cls = known[section_name]
        hints = typing.get_type_hints(cls)
        section = getattr(settings, section_name)
        for key, value in values.items():
            dotted = f"{section_name}.{key}"
            if key not in hints:
                raise ConfigError(f"unknown config key '{dotted}' in {source}",
                                  hint=did_you_mean(str(key), list(hints), f"{section_name}."))
            value = _coerce(dotted, value, hints[key], source)
            setattr(section, key, resolve_value(value, base) if is_path_key(section_name, key) else value)


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX):].partition("__")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        out.setdefault(section.lower(), {})[key.lower()] = value
    return out


def validate(settings: Settings, *, require_library: bool = False) -> None:
    """Check limits, choices and relations between keys. Raises ConfigError naming the key."""
    for name, cls in sections().items():
        section = getattr(settings, name)
        for f in dataclasses.fields(cls):
            value = getattr(section, f.name)
            key = f"{name}.{f.name}"
            meta = f.metadata
            if meta["choices"] and value not in meta["choices"]:
                raise ConfigError(f"config key '{key}' must be one of {', '.join(meta['choices'])}; got {value!r}",
                                  hint=did_you_mean(str(value), list(meta["choices"])))
            if meta["min"] is not None and value < meta["min"]:
                raise ConfigError(f"config key '{key}' must be at least {meta['min']}; got {value}")
            if meta["max"] is not None and value > meta["max"]:
                raise ConfigError(f"config key '{key}' must be at most {meta['max']}; got {value}")
    db = settings.database
    if db.pool_min > db.pool_max:
        raise ConfigError(f"config key 'database.pool_min' ({db.pool_min}) is larger than "
                          f"'database.pool_max' ({db.pool_max})", hint="lower pool_min or raise pool_max")
    if not settings.library.paths:
        raise ConfigError("config key 'library.paths' is empty", hint="give at least one music folder")
    _validate_playlist_maps(settings.playlists)
    from .core.execution.dask.config import validate_analysis  # no Dask import

    validate_analysis(settings.analysis)
    settings.library.extensions = [e.lower() if e.startswith(".") else "." + e.lower()
                                   for e in settings.library.extensions]
    if not settings.api.key:   # with a key any address will do (and no name is looked up)
        _check_keyless_host(settings.api.host)
    if require_library:
        for path in settings.library.paths:
            p = Path(path)
            if not p.is_dir():
                raise ConfigError(f"config key 'library.paths': folder '{path}' does not exist",
                                  hint=f"create it (mkdir -p {path}) or fix the path", path=path)
            if not os.access(p, os.R_OK | os.X_OK):
                raise ConfigError(f"config key 'library.paths': folder '{path}' is not readable", path=path)


TRANSITION_WEIGHT_NAMES = ("camelot", "tempo", "loudness", "energy", "embedding")
EXCLUDE_RULE_NAMES = ("paths", "folders", "genres", "tags", "max_duration_min")


def _validate_playlist_maps(playlists: PlaylistSettings) -> None:
    """The mapping-valued playlist keys: known names only, sane values."""
    for name, weight in playlists.transition_weights.items():
        if name not in TRANSITION_WEIGHT_NAMES:
            raise ConfigError(f"unknown config key 'playlists.transition_weights.{name}'",
                              hint=did_you_mean(name, list(TRANSITION_WEIGHT_NAMES), "playlists.transition_weights."))
        if weight < 0:
            raise ConfigError(f"config key 'playlists.transition_weights.{name}' must be at least 0; got {weight}")
    for name in playlists.exclude:
        if name not in EXCLUDE_RULE_NAMES:
            raise ConfigError(f"unknown config key 'playlists.exclude.{name}'",
                              hint=did_you_mean(name, list(EXCLUDE_RULE_NAMES), "playlists.exclude."))
    for i, entry in enumerate(playlists.schedule):
        where = f"playlists.schedule[{i}]"
        for required in ("name", "strategy", "at"):
            if not entry.get(required):
                raise ConfigError(f"config key '{where}' has no '{required}'",
                                  hint="each entry needs name, strategy and at: 'HH:MM'")
        at = str(entry["at"])
        hh, _, mm = at.partition(":")
        if not (hh.isdigit() and mm.isdigit() and 0 <= int(hh) < 24 and 0 <= int(mm) < 60 and len(mm) == 2):
            raise ConfigError(f"config key '{where}.at' must be a time 'HH:MM'; got {at!r}",
                              hint="quote it in YAML: at: '07:30'")


def resolve_addresses(name: str) -> list[str]:
    """Every address ``name`` resolves to (the system resolver: /etc/hosts, then DNS)."""
    return [info[4][0] for info in socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)]


def host_addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address] | None:
    """The addresses binding to ``host`` would use: an IP literal itself, a name what it resolves
    to; [] for every interface (empty host); None when it is neither an address nor a name that
    resolves. Digits and dots only are an address (inet_aton's forms, '127.1' included), never
    looked up: no top-level domain is numeric."""
    name = host.strip().removeprefix("[").removesuffix("]")
    if not name:
        return []
    try:
        return [ipaddress.ip_address(name.split("%", 1)[0])]   # without an IPv6 zone ("fe80::1%eth0")
    except ValueError:
        pass
    if all(c.isdigit() or c == "." for c in name):
        try:
            return [ipaddress.IPv4Address(socket.inet_aton(name))]
        except OSError:
            return None
    try:
        return [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolve_addresses(name)] or None
    except (OSError, UnicodeError, ValueError):
        return None


def _loopback(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(ip, "ipv4_mapped", None)          # ::ffff:127.0.0.1
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def is_loopback_host(host: str) -> bool:
    """Whether binding to ``host`` serves this machine only: an address in 127.0.0.0/8 or ::1, or a
    name every address of which is one. Judged by addresses, never by spelling
    ('127.0.0.1.example.invalid' is anybody's name); a name that does not resolve is not loopback,
    nor is an empty host or 0.0.0.0/:: (every interface)."""
    addresses = host_addresses(host)
    return bool(addresses) and all(_loopback(ip) for ip in addresses)


def _check_keyless_host(host: str) -> None:
    """Without api.key the API may listen on loopback only."""
    addresses = host_addresses(host)
    if addresses is None:
        raise ConfigError(f"config key 'api.host' is {host!r}: not an IP address, nor a name that resolves",
                          hint="use --host 127.0.0.1 (this machine only), or set api.key and use the address of "
                          "one of its network interfaces")
    if not addresses or not all(_loopback(ip) for ip in addresses):
        raise ConfigError(f"config key 'api.host' is {host!r} (not loopback) but 'api.key' is empty",
                          hint="set api.key (or PLAYLISTGEN_API__KEY) before exposing the API on a network")


def load_settings(config_file: str | None = None, *, environ: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Mapping[str, Any]] | None = None,
                  require_library: bool = False) -> Settings:
    """Defaults ← YAML file ← environment ← command-line overrides; then validate. Relative paths
    are made absolute as config_paths says (the file's folder, the current folder, the data folder)."""
    environ = os.environ if environ is None else environ
    settings = Settings()
    cwd = Path.cwd()
    path = find_config_file(config_file, environ)
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"config file '{path}' does not exist",
                              hint="pass an existing file to --config or drop the option", path=str(path))
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise ConfigError(f"config file '{path}'{where} is not valid YAML: "
                              f"{getattr(exc, 'problem', exc)}", path=str(path)) from None
        if not isinstance(data, Mapping):
            raise ConfigError(f"config file '{path}' must be a mapping of sections", path=str(path))
        _apply(settings, data, str(path), (cwd / path).parent)
        settings.config_file = str(cwd / path)
    _apply(settings, _env_overrides(environ), "environment", cwd)
    if overrides:
        _apply(settings, {k: {kk: vv for kk, vv in v.items() if vv is not None}
                          for k, v in overrides.items()}, "command line", cwd)
    settings.data_dir = str(data_dir(environ))
    resolve_defaults(settings, Path(settings.data_dir))
    validate(settings, require_library=require_library)
    return settings


def render_yaml() -> str:
    """The documented config.yaml: every key, its default and its help line."""
    lines = ["# playlistgen configuration. Every key is shown with its default.",
             "# Environment variables override keys: PLAYLISTGEN_<SECTION>__<KEY>, e.g. PLAYLISTGEN_API__PORT=9000.",
             "# Relative paths in this file are taken from the folder this file is in; a path given on the",
             "# command line or in an environment variable from the current folder. A path key given nowhere",
             "# lives in the data folder: $PLAYLISTGEN_DATA_DIR, else $XDG_DATA_HOME/playlistgen, else",
             "# ~/.local/share/playlistgen.", ""]
    defaults = Settings()
    for name, cls in sections().items():
        lines.append(f"{name}:")
        for f in dataclasses.fields(cls):
            lines.append(f"  # {f.metadata['help']}")
            if f.metadata["choices"]:
                lines.append(f"  # one of: {', '.join(f.metadata['choices'])}")
            value = getattr(getattr(defaults, name), f.name)
            dumped = yaml.safe_dump({f.name: value}, default_flow_style=True, width=1000).strip()
            lines.append(f"  {dumped[1:-1]}")
        lines.append("")
    return "\n".join(lines)
