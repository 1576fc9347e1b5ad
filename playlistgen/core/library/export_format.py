"""The export file format, read defensively: what one line of `playlistgen export` may hold, and
the bounded reader `import` checks every line with before it writes anything.

* **Lines are bounded** (:data:`MAX_LINE_BYTES`, 1 MiB; a real record is about 25 KiB, most of it
  the patch-embedding spread): the reader asks
  for at most that much, so a gzip bomb of one endless line costs 1 MiB, not the decompressed size.
* **The schema** (:data:`FIELDS`, :data:`VECTORS`, :data:`METADATA_FIELDS`, the tags rules) follows
  the analysis contract of ``core/storage/records.py`` and the units of ``core/analysis/result.py``:
  types (a bool is not a number), finite numbers within what the analyzer can produce, vector
  lengths, bounded strings, the key spelling, Camelot codes agreeing with the key, known presets and
  tag sources. Keys the schema does not know are ignored (nothing reads them).

Every problem is a :class:`BadRecord` naming the field (``energy: inf is not a finite number``);
values are described, never echoed at length.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..analysis.presets import PRESETS
from ..music import KEY_NAMES, camelot
from ..storage.records import SPREAD_ROWS, spread_dims

MAX_LINE_BYTES = 1 << 20
MAX_TEXT = 4096            # characters of a tag value (artist, title, ...) or a path
GZIP_MAGIC = b"\x1f\x8b"
READ_ERRORS = (OSError, EOFError, zlib.error)   # gzip.BadGzipFile is an OSError


class BadRecord(ValueError):
    """One line's problem, said in a few words ("tags: expected an object, got a string")."""


class LineTooLong(BadRecord):
    """A line past MAX_LINE_BYTES: the rest of the file is not read."""


# ------------------------------------------------------------------------------------- the schema

@dataclass(frozen=True)
class Number:
    low: float
    high: float
    integer: bool = False


@dataclass(frozen=True)
class Text:
    max_len: int
    pattern: re.Pattern[str] | None = None
    choices: tuple[str, ...] = ()
    what: str = ""             # what the pattern means, for the message


_TOKEN = re.compile(r"[\x21-\x7e]+")          # printable ASCII, no spaces: fingerprints, versions
_CAMELOT = re.compile(r"(1[0-2]|[1-9])[AB]")
_RAMP = re.compile(r"-?\d{1,4}\.\d{1,3} \d{1,6}\.\d{1,3}(;-?\d{1,4}\.\d{1,3} \d{1,6}\.\d{1,3}){0,63}")
UNIT = Number(0.0, 1.0)

# the record's own fields (required) and every scalar of the analysis contract (None allowed)
HEADER: dict[str, Text] = {
    "fingerprint": Text(128, _TOKEN, what="a fingerprint"),
    "audio_fingerprint": Text(128, _TOKEN, what="a fingerprint"),
    "analyzer_version": Text(64, _TOKEN, what="a version like essentia-1.0.0"),
    "preset": Text(32, choices=(*PRESETS, "")),
}
FIELDS: dict[str, Number | Text] = {
    "path": Text(MAX_TEXT),
    "duration_s": Number(0.0, 1e6),                 # seconds (11 days)
    "bpm": Number(0.0, 1000.0),
    "bpm_confidence": UNIT,
    "key": Text(2, choices=KEY_NAMES),
    "scale": Text(5, choices=("major", "minor")),
    "key_strength": UNIT,
    "camelot": Text(3, _CAMELOT, what="a Camelot code like 8A"),
    "loudness_lufs": Number(-100.0, 30.0),         # EBU R128 integrated, gated at -70
    "loudness_range": Number(0.0, 100.0),
    "dynamic_complexity": Number(0.0, 100.0),
    "mixramp_start": Text(1024, _RAMP, what="an MPD mixramp like '-18.00 1.20;-15.00 1.60'"),
    "mixramp_end": Text(1024, _RAMP, what="an MPD mixramp like '-18.00 1.20;-15.00 1.60'"),
    "danceability": UNIT, "energy": UNIT,
    "spectral_centroid": Number(0.0, 11025.0),      # Hz of the 22050 Hz signal
    "spectral_rolloff": Number(0.0, 11025.0),
    "spectral_flatness": UNIT,
    "zcr": UNIT,                                     # crossings per sample
    "valence": UNIT, "acousticness": UNIT, "instrumentalness": UNIT,
}
# (length, element range); float32 once stored, so every bound is far inside its range
VECTORS: dict[str, tuple[int, Number]] = {
    "mfcc_mean": (13, Number(-1e4, 1e4)),          # dB
    "mfcc_std": (13, Number(0.0, 1e4)),
    "chroma": (12, UNIT),
    "embedding": (200, Number(-1e4, 1e4)),
}
# the adaptation fields (migration 0008; older exports have none): the MTT embedding, the patch
# count, and the spread [rows][200 or 400] — 400 exactly when embedding_mtt is set
ADAPTATION_VECTORS: dict[str, tuple[int, Number]] = {"embedding_mtt": (200, Number(-1e4, 1e4))}
PATCHES = Number(0, 10**8, integer=True)
SPREAD_VALUE = Number(-65504.0, 65504.0)     # float16 once stored
METADATA_FIELDS: dict[str, Number | Text] = {
    "artist": Text(MAX_TEXT), "album": Text(MAX_TEXT), "title": Text(MAX_TEXT), "genre": Text(MAX_TEXT),
    "year": Number(0, 9999, integer=True), "track_number": Number(0, 1_000_000, integer=True),
    "musicbrainz_trackid": Text(64),
}
TAG_SOURCES = ("msd", "mtt")
MAX_LABELS = 1000          # per source (MusiCNN has 50)
MAX_LABEL_LEN = 200

def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _shown(value: str) -> str:
    return repr(value) if len(value) <= 40 else f"{len(value)} characters"


def _number(value: float | int) -> str:
    if isinstance(value, int) and abs(value) >= 10**15:
        return f"a {len(str(abs(value)))}-digit number"
    return repr(value)


def _check_number(name: str, value: object, spec: Number) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRecord(f"{name}: expected a number, got {_kind(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise BadRecord(f"{name}: {value} is not a finite number")
    if spec.integer and not (isinstance(value, int) or value.is_integer()):
        raise BadRecord(f"{name}: expected a whole number, got {_number(value)}")
    if not spec.low <= value <= spec.high:
        raise BadRecord(f"{name}: {_number(value)} is out of range ({spec.low:g} to {spec.high:g})")
    return int(value) if spec.integer else float(value)


def _check_text(name: str, value: object, spec: Text) -> str:
    if not isinstance(value, str):
        raise BadRecord(f"{name}: expected a string, got {_kind(value)}")
    if spec.choices:
        if value not in spec.choices:
            raise BadRecord(f"{name}: {_shown(value)} is not one of {', '.join(c for c in spec.choices if c)}")
        return value
    if len(value) > spec.max_len:
        if spec.pattern is not None and len(value) <= 40:
            raise BadRecord(f"{name}: {value!r} is not {spec.what}")
        raise BadRecord(f"{name}: {len(value)} characters, at most {spec.max_len}")
    if "\x00" in value:
        raise BadRecord(f"{name}: holds a NUL character")
    if spec.pattern is not None and not spec.pattern.fullmatch(value):
        raise BadRecord(f"{name}: {_shown(value)} is not {spec.what}")
    return value


def _check(name: str, value: object, spec: Number | Text) -> Any:
    if isinstance(spec, Number):
        return _check_number(name, value, spec)
    return _check_text(name, value, spec)


def _check_vector(name: str, value: object, length: int, spec: Number) -> list[float]:
    if not isinstance(value, list):
        raise BadRecord(f"{name}: expected a list of {length} numbers, got {_kind(value)}")
    if len(value) != length:
        raise BadRecord(f"{name}: {len(value)} values, expected {length}")
    return [_check_number(f"{name}[{i}]", v, spec) for i, v in enumerate(value)]


def _check_spread(value: object, dims: int) -> list[list[float]]:
    rows = SPREAD_ROWS[dims]
    if not isinstance(value, list):
        raise BadRecord(f"embedding_spread: expected a list of rows, got {_kind(value)}")
    if len(value) > rows:
        raise BadRecord(f"embedding_spread: {len(value)} rows, at most {rows} at {dims} dimensions")
    return [_check_vector(f"embedding_spread[{i}]", row, dims, SPREAD_VALUE) for i, row in enumerate(value)]


def _check_tags(value: object) -> dict[str, dict[str, float]]:
    if not isinstance(value, dict):
        raise BadRecord(f"tags: expected an object {{source: {{label: probability}}}}, got {_kind(value)}")
    out: dict[str, dict[str, float]] = {}
    for source, labels in value.items():
        if source not in TAG_SOURCES:
            raise BadRecord(f"tags: {_shown(source)} is not a tag source ({', '.join(TAG_SOURCES)})")
        if not isinstance(labels, dict):
            raise BadRecord(f"tags.{source}: expected an object {{label: probability}}, got {_kind(labels)}")
        if len(labels) > MAX_LABELS:
            raise BadRecord(f"tags.{source}: {len(labels)} labels, at most {MAX_LABELS}")
        checked = {}
        for label, p in labels.items():
            if not label or len(label) > MAX_LABEL_LEN or "\x00" in label:
                raise BadRecord(f"tags.{source}: a label of {len(label)} characters (1-{MAX_LABEL_LEN}, no NUL)")
            shown = label if label.isprintable() and len(label) <= 40 else repr(label[:40])  # no escapes out
            checked[label] = _check_number(f"tags.{source}.{shown}", p, UNIT)
        out[source] = checked
    return out


def _check_metadata(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRecord(f"metadata: expected an object, got {_kind(value)}")
    return {name: _check(f"metadata.{name}", value[name], spec)
            for name, spec in METADATA_FIELDS.items() if value.get(name) is not None}


def check_header(record: object) -> dict[str, str]:
    """The fields every record needs (to count it and match it); BadRecord if one is missing or wrong."""
    if not isinstance(record, dict):
        raise BadRecord(f"not an analysis record: expected a JSON object, got {_kind(record)}")
    missing = [name for name in HEADER if name not in record]
    if missing:
        raise BadRecord(f"not an analysis record: no {', '.join(missing)}")
    return {name: _check_text(name, record[name], spec) for name, spec in HEADER.items()}


def check_record(record: object) -> dict[str, Any]:
    """The record with every field checked against the schema (unknown keys dropped, integers of
    float fields as floats): what `AnalysisResult.from_dict` may take. BadRecord on the first
    problem."""
    out: dict[str, Any] = dict(check_header(record))
    assert isinstance(record, dict)
    for name, spec in FIELDS.items():
        value = record.get(name)
        out[name] = None if value is None else _check(name, value, spec)
    for name, (length, spec) in VECTORS.items():
        value = record.get(name)
        out[name] = None if value is None else _check_vector(name, value, length, spec)
    for name, (length, spec) in ADAPTATION_VECTORS.items():
        value = record.get(name)
        out[name] = None if value is None else _check_vector(name, value, length, spec)
    value = record.get("embedding_patches")
    out["embedding_patches"] = None if value is None else _check_number("embedding_patches", value, PATCHES)
    value = record.get("embedding_spread")
    out["embedding_spread"] = None if value is None else _check_spread(value, spread_dims(out["embedding_mtt"]))
    out["tags"] = {} if record.get("tags") is None else _check_tags(record["tags"])
    out["metadata"] = {} if record.get("metadata") is None else _check_metadata(record["metadata"])
    _check_key(out)
    return out


def _check_key(record: Mapping[str, Any]) -> None:
    key, scale, code = record["key"], record["scale"], record["camelot"]
    if (key is None) != (scale is None):
        raise BadRecord("key and scale: one is set without the other")
    if code is not None and key is None:
        raise BadRecord(f"camelot: {code!r} without a key")
    if code is not None and code != camelot(key, scale):
        raise BadRecord(f"camelot: {code!r} does not match the key {key} {scale} ({camelot(key, scale)})")


# ------------------------------------------------------------------------------------- reading

def decompressed(raw: IO[bytes]) -> IO[bytes]:
    """``raw`` (a file opened "rb") decompressed when it is gzip — told by its first bytes, not its
    name; closing the result leaves ``raw`` open."""
    gzipped = raw.read(2) == GZIP_MAGIC
    raw.seek(0)
    return gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw   # type: ignore[return-value]


@contextmanager
def open_export(path: Path) -> Iterator[IO[bytes]]:
    """The export file as bytes (see :func:`decompressed`)."""
    with open(path, "rb") as raw, decompressed(raw) as fh:
        yield fh


def lines(fh: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of the non-blank lines; LineTooLong for a line past MAX_LINE_BYTES —
    readline's limit means no more than that is ever held, however long the line."""
    number = 0
    while True:
        line = fh.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):   # MAX + 1 with the newline is fine
            raise LineTooLong(f"line {number}: longer than {MAX_LINE_BYTES // (1 << 20)} MiB "
                              "(export lines are a few KiB); reading stopped there")
        if line.strip():
            yield number, line


def parse_line(line: bytes) -> object:
    """One line's JSON value; BadRecord when it is not UTF-8 JSON."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRecord("not UTF-8 text (is this a file written by `playlistgen export`?)") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise BadRecord("JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise BadRecord(f"not JSON ({exc.msg}, column {exc.colno})") from None
    except ValueError as exc:   # e.g. an integer of more than 4300 digits
        raise BadRecord(f"not JSON ({str(exc).split(';')[0][:80]})") from None


def entries(fh: IO[bytes], analyzer_version: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, the checked record or "line N: what is wrong") per non-blank line. A record of
    another analyzer version is checked only for the fields every record has: it is refused anyway.
    Raises LineTooLong (and the READ_ERRORS) from the reader."""
    for number, line in lines(fh):
        try:
            record = parse_line(line)
            header = check_header(record)
            yield number, check_record(record) if header["analyzer_version"] == analyzer_version else header
        except BadRecord as exc:
            yield number, f"line {number}: {exc}"
