"""Tag writing against the user's own changes and against signals (issue 20, points 1 and 3).

Analyses one long FLAC once, then runs `playlistgen tags write` TRIALS times per case, each time
on the original bytes, and acts on the file while the write runs, at delays spread evenly over
one write's duration (measured first):

* replace  — the file is replaced by another recording (os.replace): did the old audio come back?
* edit     — its title is edited in place with mutagen (as Picard/beets do): did the edit stay?
* sigterm  — SIGTERM to `tags write`: was a temporary copy left behind?
* kill9    — SIGKILL, then `tags write` again with the copy an hour old: was a copy left after it?

Prints, per case, how many trials lost the user's change (or left a copy). ``--code DIR`` runs the
`playlistgen` found in DIR (e.g. an older checkout, for the figure before a fix).

    .venv/bin/python bench/tag_write_races.py [--trials 10] [--minutes 4] [--code DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mutagen  # noqa: E402

from playlistgen.core.audio.fingerprint import audio_fingerprint  # noqa: E402
from tests import audio_fixtures as af  # noqa: E402

ENV = {"PLAYLISTGEN_ANALYSIS__PRESET": "fast", "PLAYLISTGEN_ANALYSIS__WORKERS": "1"}


def _env(code: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYLISTGEN_")}
    env.update(ENV, PYTHONPATH=str(code),
               PLAYLISTGEN_ANALYSIS__MODELS_DIR=str(Path(__file__).resolve().parents[1] / "models"))
    return env


def _start(work: Path, code: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "playlistgen", "tags", "write", "library",
                             "--fields", "bpm,key"], cwd=work, env=_env(code),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _copies(lib: Path) -> list[Path]:
    return list(lib.glob(".*.playlistgen-*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=4.0, help="length of the file written")
    parser.add_argument("--code", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tag-races-") as tmp:
        work = Path(tmp)
        lib = work / "library"
        lib.mkdir()
        path = af.write_long(lib / "big.flac", args.minutes)
        original = path.read_bytes()
        other = af.write_long(work / "other.flac", args.minutes, piece_s=17.0)
        other_audio = audio_fingerprint(other)
        proc = subprocess.run([sys.executable, "-m", "playlistgen", "scan", "library"], cwd=work,
                              env=_env(args.code), capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, proc.stderr

        def restore() -> None:
            for leftover in _copies(lib):
                leftover.unlink()
            path.write_bytes(original)

        restore()
        started = time.monotonic()
        _start(work, args.code).wait(600)
        duration = time.monotonic() - started
        print(f"one write of a {args.minutes:g}-minute FLAC ({len(original) / 1e6:.0f} MB): {duration:.2f} s; "
              f"code: {args.code}")

        def run(case: str, act) -> int:  # type: ignore[no-untyped-def]
            lost = 0
            for i in range(args.trials):
                restore()
                shutil.copy(other, work / "incoming.flac")
                writer = _start(work, args.code)
                time.sleep(duration * (i + 0.5) / args.trials)
                lost += act(writer)
                writer.wait(600)
            print(f"{case:8s} {lost}/{args.trials} trials lost the user's change or left a copy")
            return lost

        def replace(writer: subprocess.Popen) -> int:
            os.replace(work / "incoming.flac", path)
            writer.wait(600)
            return int(audio_fingerprint(path) != other_audio)   # the old recording came back

        def edit(writer: subprocess.Popen) -> int:
            audio = mutagen.File(path)
            audio["TITLE"] = ["Edited by the user"]
            audio.save()
            writer.wait(600)
            return int(mutagen.File(path).get("TITLE") != ["Edited by the user"])

        def sigterm(writer: subprocess.Popen) -> int:
            writer.send_signal(signal.SIGTERM)
            writer.wait(600)
            return int(bool(_copies(lib)))

        def kill9(writer: subprocess.Popen) -> int:
            writer.send_signal(signal.SIGKILL)
            writer.wait(600)
            old = time.time() - 3600
            for leftover in _copies(lib):
                os.utime(leftover, (old, old))
            _start(work, args.code).wait(600)
            return int(bool(_copies(lib)))

        for case, act in (("replace", replace), ("edit", edit), ("sigterm", sigterm), ("kill9", kill9)):
            run(case, act)


if __name__ == "__main__":
    main()
