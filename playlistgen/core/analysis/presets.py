"""Analysis presets: how deep each file is analysed.

* fast      DSP only: tempo (Degara), key, EBU R128 loudness, energy, danceability, spectral,
            MFCC, chroma. No model needed.
* balanced  fast + MusiCNN MSD and MTT tags and embeddings, averaged over every third
            non-overlapping 3 s patch (3 s of every 9 s): on Essentia's TensorFlow the model is
            most of the cost, and on 14 real tracks the mean embedding stayed within cosine 0.996
            (mean 0.9985) of the all-patches mean. MTT as well since issue 22: measured side by
            side (bench/costs.py, 4 corpus files, 3 rounds) MSD alone 0.113x MusicExtractor's CPU,
            MSD + MTT 0.157x (budget 0.18x), and MSD+MTT raised artist-filtered P@10 by +0.018 to
            +0.027 in every dev-corpus variant (bench/similarity.py, docs/similarity.md).
* accurate  balanced with the multi-feature beat tracker, MTT tags as well, and half-overlapping
            MusiCNN patches (about 2.5x the ML cost).

Loudness is EBU R128 on the native-rate, all-channel signal in every preset (it is cheap when
streamed), so a file's loudness does not depend on the preset.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import BadRequestError
from ...suggest import did_you_mean

MUSICNN_PATCH_FRAMES = 187          # 3 s of 16 kHz audio at hop 256


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    models: tuple[str, ...]          # model names for models.require_model(); () = DSP only
    tempo_method: str                # "degara" | "multifeature"
    patch_hop: int                   # MusiCNN patch hop in frames (187 = no overlap)
    patch_stride: int = 1            # analyse every n-th patch

    @property
    def uses_ml(self) -> bool:
        return bool(self.models)


PRESETS: dict[str, Preset] = {
    "fast": Preset("fast", "DSP only: tempo, key, loudness, energy, timbre.", (), "degara",
                   MUSICNN_PATCH_FRAMES),
    "balanced": Preset("balanced", "fast + MusiCNN MSD and MTT tags and embeddings.",
                       ("msd_musicnn", "mtt_musicnn"), "degara", MUSICNN_PATCH_FRAMES, patch_stride=3),
    "accurate": Preset("accurate", "multi-feature beats, MSD + MTT tags, overlapping patches.",
                       ("msd_musicnn", "mtt_musicnn"), "multifeature", 93),
}


def get_preset(name: str) -> Preset:
    """The preset called `name`; unknown names get a "did you mean"."""
    try:
        return PRESETS[name]
    except KeyError:
        raise BadRequestError(f"unknown analysis preset '{name}'", hint=did_you_mean(str(name), PRESETS)) from None
