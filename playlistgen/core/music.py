"""Music theory in one pure module: pitch classes, key spellings, the Camelot wheel, tempo
compatibility. No I/O; the scalar helpers take strings, the ``*_index`` helpers work on numpy
arrays of Camelot indices (0..23, -1 unknown) for the playlist engine.

Camelot: the number is the position on the circle of fifths (8B = C major, 8A = A minor); the
letter A is minor, B is major. Neighbours are the same code, ±1 with the same letter, and the
relative major/minor (same number, other letter).
"""

from __future__ import annotations

import re

import numpy as np

# The one spelling of the twelve pitch classes (the analysers store these; DJs read them).
KEY_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

_NATURAL = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ACCIDENTAL = {"#": 1, "♯": 1, "b": -1, "♭": -1}
_CAMELOT_RE = re.compile(r"^\s*(1[0-2]|[1-9])\s*([ABab])\s*$")


def pitch_class(name: str) -> int | None:
    """'C#', 'Db', 'Bb', 'A' → 0..11; None if it is not a key name."""
    name = name.strip()
    if not name or name[0].upper() not in _NATURAL:
        return None
    pc = _NATURAL[name[0].upper()]
    for accidental in name[1:]:
        step = _ACCIDENTAL.get(accidental)
        if step is None:
            return None
        pc += step
    return pc % 12


def key_spellings(pc: int) -> list[str]:
    """Every common spelling of a pitch class: 1 → ['C#', 'Db']."""
    sharps = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
    flats = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
    return sorted({sharps[pc % 12], flats[pc % 12]})


def camelot(key: str | None, scale: str | None) -> str | None:
    """Camelot code ('8B' = C major, '8A' = A minor); None for an unknown key."""
    if not key or scale not in ("major", "minor"):
        return None
    pc = pitch_class(key)
    if pc is None:
        return None
    if scale == "minor":
        pc = (pc + 3) % 12          # the relative major shares the number
    number = (7 * pc + 8) % 12 or 12
    return f"{number}{'B' if scale == 'major' else 'A'}"


def key_from_camelot(code: str) -> tuple[str, str]:
    """'8A' → ('A', 'minor'). Raises ValueError for anything else."""
    index = camelot_index(code)
    if index < 0:
        raise ValueError(f"not a Camelot code: {code!r}")
    number, major = index % 12 + 1, index >= 12
    pc = (7 * (number - 8)) % 12    # 7 is its own inverse mod 12
    if major:
        return KEY_NAMES[pc], "major"
    return KEY_NAMES[(pc - 3) % 12], "minor"


def camelot_neighbours(code: str) -> list[str]:
    """Harmonically compatible codes: the same, ±1 on the wheel, and the relative major/minor."""
    index = camelot_index(code)
    if index < 0:
        raise ValueError(f"not a Camelot code: {code!r}")
    number, letter = index % 12 + 1, "B" if index >= 12 else "A"
    other = "A" if letter == "B" else "B"
    return [f"{number}{letter}", f"{number % 12 + 1}{letter}", f"{(number - 2) % 12 + 1}{letter}",
            f"{number}{other}"]


# --- Camelot indices (vectorised) ------------------------------------------------------------------

def camelot_index(text: str | None) -> int:
    """'8A' → 0..23 (number-1, +12 for B); -1 when unknown."""
    if not text:
        return -1
    m = _CAMELOT_RE.match(text)
    if not m:
        return -1
    return int(m.group(1)) - 1 + (12 if m.group(2).upper() == "B" else 0)


def camelot_name(index: int) -> str | None:
    """0..23 → '1A'..'12B'; None for -1."""
    return None if index < 0 else f"{index % 12 + 1}{'B' if index >= 12 else 'A'}"


def camelot_compatible(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray | bool:
    """Same code, ±1 on the wheel with the same letter, or the relative major/minor."""
    with np.errstate(invalid="ignore"):
        ok = np.asarray(camelot_distance(a, b)) <= 1
    return ok if ok.ndim else bool(ok)


def camelot_distance(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray | float:
    """Steps between two Camelot indices: 0 same key; 1 for ±1 on the wheel or the relative
    major/minor; otherwise wheel steps (0..6) plus 1 for a change of letter. NaN when either is
    unknown (-1) — the caller decides what an unknown key costs."""
    a, b = np.asarray(a), np.asarray(b)
    step = np.abs((a % 12) - (b % 12))
    step = np.minimum(step, 12 - step).astype(np.float64)
    letter_change = ((a >= 12) != (b >= 12)).astype(np.float64)
    out = step + letter_change
    out = np.where((a < 0) | (b < 0), np.nan, out)
    return out if out.ndim else float(out)


def tempo_ratio_distance(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray | float:
    """|log2| of the tempo ratio after folding half/double time: 0 for equal (or 2×) tempi,
    ~0.085 for a 6 % change, 0.585 (the maximum) for a 3:2 ratio. NaN for unknown tempi."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        octaves = np.abs(np.log2(b / a))
        folded = np.abs(octaves - np.round(octaves))
    folded = np.where(np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0), folded, np.nan)
    return folded if folded.ndim else float(folded)


def tempo_compatible(a: np.ndarray | float, b: np.ndarray | float, tolerance: float = 0.06) -> np.ndarray | bool:
    """Tempo ratio within ``tolerance`` of 1, or of 2 / 0.5 (half or double time), the same either
    way round: |log2 ratio| after folding half/double time at most log2(1 + tolerance)."""
    with np.errstate(invalid="ignore"):
        ok = np.asarray(tempo_ratio_distance(a, b)) <= np.log2(1.0 + tolerance) + 1e-12
    return ok if ok.ndim else bool(ok)


# --- harmonic mixing: how far a transition strays from a strictly compatible one ------------------

STRICT, ENERGY_BOOST, WIDE_TEMPO, CLOSEST_KEY = 0, 1, 2, 3
HARMONIC_LEVELS = {ENERGY_BOOST: "energy boost (±2 on the Camelot wheel)", WIDE_TEMPO: "wider tempo window",
                   CLOSEST_KEY: "closest key"}


def wide_tempo_tolerance(tolerance: float) -> float:
    """The tempo window of a relaxed harmonic transition: twice the strict one, at least +6 %."""
    return max(2.0 * tolerance, tolerance + 0.06)


def camelot_energy_boost(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray | bool:
    """Two steps round the wheel with the same letter (8A → 10A or 6A): a DJ's energy boost/drop."""
    a, b = np.asarray(a), np.asarray(b)
    step = np.abs((a % 12) - (b % 12))
    ok = (np.minimum(step, 12 - step) == 2) & ((a >= 12) == (b >= 12)) & (a >= 0) & (b >= 0)
    return ok if ok.ndim else bool(ok)


def harmonic_level(cam_a: np.ndarray | int, bpm_a: np.ndarray | float, cam_b: np.ndarray | int,
                   bpm_b: np.ndarray | float, tolerance: float = 0.06) -> np.ndarray:
    """Per transition (broadcasting): STRICT (Camelot-compatible key, tempo within ``tolerance``),
    ENERGY_BOOST (±2 on the wheel, tempo within ``tolerance``), WIDE_TEMPO (either key rule, tempo
    within ``wide_tempo_tolerance``) or CLOSEST_KEY (anything else). Symmetric in a and b."""
    near = np.asarray(camelot_compatible(cam_a, cam_b), dtype=bool)
    boost = np.asarray(camelot_energy_boost(cam_a, cam_b), dtype=bool)
    tempo = np.asarray(tempo_compatible(bpm_a, bpm_b, tolerance), dtype=bool)
    wide = np.asarray(tempo_compatible(bpm_a, bpm_b, wide_tempo_tolerance(tolerance)), dtype=bool)
    level = np.full(np.broadcast_shapes(near.shape, tempo.shape), CLOSEST_KEY, dtype=np.int8)
    level[(near | boost) & wide] = WIDE_TEMPO
    level[boost & tempo] = ENERGY_BOOST
    level[near & tempo] = STRICT
    return level
