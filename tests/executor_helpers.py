"""A small real analyzer for executor tests, loaded inside the workers by import path.

Each test "audio" file is a text file whose content says what analysing it does:

    ok               return a result (the command, path and analyzer's pid in its metadata)
    fail             raise AnalysisError (an ordinary bad file)
    segv             read address 0 in native code (SIGSEGV)
    abort            os.abort() (SIGABRT)
    sleep SECONDS    sleep, then return a result
    alloc MB [SECONDS]  keep MB of touched memory alive (a leak), optionally sleep, then return
    exit CODE        os._exit(CODE) (native code calling exit())

Any other file (``.wav``, ``.m4a``...) is real audio: it is decoded through the real decoder chain
(``core/audio/decode.py``) and the result says which decoder read it and how long it is. Set
``PLAYLISTGEN_TEST_CRASH_DECODERS`` (see core/audio/policy.py) to make chosen decoders segfault.

Presets: ``broken`` raises at start-up (e.g. models missing), ``abort`` aborts at start-up.
"""

from __future__ import annotations

import ctypes
import os
import time
from pathlib import Path

from playlistgen.core.analysis.factory import AnalyzerSpec
from playlistgen.core.analysis.result import AnalysisResult
from playlistgen.errors import AnalysisError, ModelMissingError

FACTORY = "tests.executor_helpers:create"


def spec(preset: str = "test") -> AnalyzerSpec:
    return AnalyzerSpec(factory=FACTORY, backend="scripted", preset=preset, models_dir="/nonexistent")


class ScriptedAnalyzer:
    def __init__(self, backend: str, preset: str, models_dir: Path) -> None:
        if preset == "broken":
            raise ModelMissingError(f"model file missing in {models_dir}", hint="run `playlistgen models install`")
        if preset == "abort":
            os.abort()
        self.backend, self.preset = backend, preset
        self.leak: list[bytes] = []
        self.loaded_in = os.getpid()

    def analyze(self, path: str) -> AnalysisResult:
        if not path.endswith(".txt"):
            return self.decode(path)
        words = Path(path).read_text().split()
        command, args = words[0], [float(w) for w in words[1:]]
        if command == "fail":
            raise AnalysisError(f"cannot decode {Path(path).name}: corrupt header", path=path)
        if command == "segv":
            ctypes.string_at(0)
        if command == "abort":
            os.abort()
        if command == "exit":
            os._exit(int(args[0]))
        if command == "sleep":
            time.sleep(args[0])
        if command == "alloc":
            self.leak.append(b"\x01" * int(args[0] * 1024 * 1024))
            time.sleep(args[1] if len(args) > 1 else 0)
        return AnalysisResult(preset=self.preset,
                              metadata={"command": command, "path": path, "loaded_in": self.loaded_in})


    def decode(self, path: str) -> AnalysisResult:
        from playlistgen.core.audio.decode import open_audio

        with open_audio(path, rates=()) as audio:
            for _chunk in audio:
                pass
            return AnalysisResult(preset=self.preset, duration_s=audio.duration_s,
                                  source={"decoder": audio.info.decoder},
                                  metadata={"command": "decode", "path": path, "loaded_in": self.loaded_in})


def create(backend: str, preset: str, models_dir: Path) -> ScriptedAnalyzer:
    return ScriptedAnalyzer(backend, preset, models_dir)
