"""Build the MusiCNN network as an ONNX model from its weights (convert time only).

Used by ``convert_musicnn`` in the throw-away conversion process; imports ``onnx`` (the
``convert`` extra), never TensorFlow. The network is musicnn's ``musicnn`` model (Pons & Serra,
"musicnn", 2019) as its TF1 graph computes it in inference mode, written in ONNX's NCHW layout
so it needs no transposes:

    mel patch [N, 187, 96] → batch norm (1 channel)
    front end: 7×38 and 7×67 convolutions (timbral) and 128×1, 64×1, 32×1 (temporal), each
               ReLU → batch norm → max over frequency                     → [N, 561, 187]
    mid end:   three 7-frame 1-D convolutions of 64 channels, ReLU → batch norm, the last two
               with residual connections; concatenated with the front end → [N, 753, 187]
    back end:  max and mean over time, interleaved per feature (TF's flatten of [753, 2])
               → batch norm → dense 1506→200 = ``embedding`` (before its ReLU, as
               ``model/dense/BiasAdd``) → ReLU → batch norm → dense 200→50 → sigmoid = ``tags``

Computed differently, with the same values (within float32 rounding; the converter checks):

* **Dead filters left out.** Weight decay left most front-end filters with weights of ~1e-30
  (MSD: 164 of 204 and 183 of 204 in the timbral convolutions, 51 of 153 in the temporal ones;
  MTT: 164 of 561). Such a filter outputs its bias for any input, so its channel is a constant:
  it is not computed, and its value is folded into what reads it — the first mid-end
  convolution (a bias that varies only at the two padded ends) and the dense layer (its max and
  mean over time are the constant). MSD runs in a quarter of the time (7.5 vs 29 ms per patch).
* **Pooling.** ReLU → batch norm → max over frequency is a max pool over frequency of the
  convolution with weights signed by the batch norm's scale, then ReLU and the affine (see
  ``_front_conv``): a max pool stays in onnxruntime's blocked NCHWc layout.
* The two batch norms of the back end are folded into the dense layers that follow them
  (affine into affine); those of the mid end and the input stay BatchNormalization nodes.

Dropout is the identity at inference. Weight names are the TF variable names
(``conv2d_3/kernel``, ``batch_normalization_9/moving_mean`` …); every shape is checked, so another
architecture fails loudly instead of producing a wrong model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .models import ONNX_IO

INPUT = ONNX_IO["input"]
OUTPUT_TAGS = ONNX_IO["output_tags"]
OUTPUT_EMBEDDING = ONNX_IO["output_embedding"]
OPSET = 17
IR_VERSION = 8            # what ONNX 1.12+ writes for opset 17; every onnxruntime ≥ 1.12 reads it
FRAMES, BANDS = 187, 96
EPSILON = 1e-3            # every batch norm in musicnn (tf.layers default)
# Weight decay drove most of musicnn's filters to weights of ~1e-30 (MSD: 164 of 204 and 183 of
# 204 in the timbral convolutions): such a filter's output is its bias, to far below float32
# resolution, for any input. They are left out, and their constant outputs folded forward.
DEAD_L1 = 1e-20
CHANNEL_BLOCK = 16        # onnxruntime's NCHWc block (16 floats with AVX-512, 8 with AVX2)

# (conv, its batch norm, kernel shape (time, freq, in, out), TF padding of the time axis)
FRONT_END = (
    ("conv2d", "batch_normalization_1", (7, 38, 1, 204), "pad3"),
    ("conv2d_1", "batch_normalization_2", (7, 67, 1, 204), "pad3"),
    ("conv2d_2", "batch_normalization_3", (128, 1, 1, 51), "same"),
    ("conv2d_3", "batch_normalization_4", (64, 1, 1, 51), "same"),
    ("conv2d_4", "batch_normalization_5", (32, 1, 1, 51), "same"),
)
MID_END = (("conv2d_5", "batch_normalization_6", (7, 561, 1, 64)),
           ("conv2d_6", "batch_normalization_7", (7, 64, 1, 64)),
           ("conv2d_7", "batch_normalization_8", (7, 64, 1, 64)))


class _Graph:
    """Collects nodes and initializers with unique, readable names."""

    def __init__(self, weights: Mapping[str, np.ndarray]) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.weights = weights
        self.nodes: list = []
        self.inits: list = []

    def weight(self, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        if name not in self.weights:
            raise ValueError(f"weight {name!r} is missing: not a musicnn checkpoint")
        value = np.asarray(self.weights[name], dtype=np.float32)
        if shape is not None and value.shape != shape:
            raise ValueError(f"weight {name!r} has shape {value.shape}, expected {shape}")
        return value

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(self.numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs: object) -> str:
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def batch_norm(self, x: str, bn: str, channels: int) -> str:
        """Inference batch norm on axis 1 (moving statistics)."""
        names = [self.const(f"{bn}/{part}", self.weight(f"{bn}/{part}", (channels,)))
                 for part in ("gamma", "beta", "moving_mean", "moving_variance")]
        return self.node("BatchNormalization", [x, *names], f"{bn}/out", epsilon=EPSILON)

    def bn_affine(self, bn: str, channels: int) -> tuple[np.ndarray, np.ndarray]:
        """(scale, shift) of an inference batch norm, in float64 for folding."""
        gamma, beta, mean, var = (self.weight(f"{bn}/{part}", (channels,)).astype(np.float64)
                                  for part in ("gamma", "beta", "moving_mean", "moving_variance"))
        scale = gamma / np.sqrt(var + EPSILON)
        return scale, beta - mean * scale


@dataclass
class _Features:
    """A layer's output with its dead channels left out: ``tensor`` [N, len(alive), 187] holds
    the channels in ``alive`` (indices into the full layer, in order); every other channel has
    the input-independent value in ``const`` (full length)."""

    tensor: str
    alive: np.ndarray
    const: np.ndarray


def _live_filters(kernel: np.ndarray) -> np.ndarray:
    """Indices of the output filters (axis 0) whose weights are not all (near) zero."""
    l1 = np.abs(kernel.astype(np.float64)).reshape(len(kernel), -1).sum(axis=1)
    return np.flatnonzero(l1 >= DEAD_L1)


def _front_conv(g: _Graph, x: str, conv: str, bn: str, shape: tuple[int, int, int, int],
                padding: str) -> _Features:
    kt, kf, _, out = shape
    kernel = g.weight(f"{conv}/kernel", shape).transpose(3, 2, 0, 1)      # HWIO → OIHW
    bias = g.weight(f"{conv}/bias", (out,))
    scale, shift = g.bn_affine(bn, out)
    # A dead filter outputs its bias everywhere: ReLU, pooling and batch norm make a constant.
    const = scale * np.maximum(bias.astype(np.float64), 0.0) + shift
    alive = _live_filters(kernel)
    if not len(alive):
        raise ValueError(f"{conv} has no live filter: not a trained musicnn checkpoint")
    if padding == "pad3":                   # tf.pad 3 frames each side, then VALID
        pads = [3, 0, 3, 0]
    else:                                   # SAME: TF puts the odd frame at the end
        pads = [(kt - 1) // 2, 0, kt - 1 - (kt - 1) // 2, 0]
    # TF: ReLU, batch norm (a per-channel affine s·x + t), max over frequency. With sign
    # σ = ±1 of s: max_f ReLU(conv) = ReLU(max_f conv) and min_f ReLU(conv) =
    # ReLU(-max_f(-conv)), so the convolution runs with σ-signed weights into a max pool over
    # frequency, then ReLU(σ·m) and the affine. A max pool (unlike ReduceMax/Min) stays in
    # onnxruntime's blocked NCHWc layout, which also needs the channel count in whole blocks:
    # zero filters pad it and are sliced off after pooling.
    sign = np.where(scale[alive] > 0, 1.0, -1.0)
    n = len(alive)
    padded = -(-n // CHANNEL_BLOCK) * CHANNEL_BLOCK
    weights = np.zeros((padded, 1, kt, kf), dtype=np.float32)
    weights[:n] = kernel[alive] * sign[:, None, None, None]
    biases = np.zeros(padded, dtype=np.float32)
    biases[:n] = bias[alive] * sign
    y = g.node("Conv", [x, g.const(f"{conv}/kernel", weights), g.const(f"{conv}/bias", biases)],
               f"{conv}/out", kernel_shape=[kt, kf], pads=pads)
    y = g.node("MaxPool", [y], f"{conv}/maxpool", kernel_shape=[1, BANDS - kf + 1])
    y = g.node("Squeeze", [y, g.const(f"{conv}/axis3", np.array([3], np.int64))], f"{conv}/max")
    if padded != n:
        y = g.node("Slice", [y, g.const(f"{conv}/from", np.array([0], np.int64)),
                             g.const(f"{conv}/to", np.array([n], np.int64)),
                             g.const(f"{conv}/axis1", np.array([1], np.int64))], f"{conv}/live")
    f32 = np.float32
    y = g.node("Mul", [y, g.const(f"{bn}/sign", sign.astype(f32).reshape(1, n, 1))],
               f"{conv}/signed")
    y = g.node("Relu", [y], f"{conv}/pooled")
    y = g.node("Mul", [y, g.const(f"{bn}/scale", scale[alive].astype(f32).reshape(1, n, 1))],
               f"{conv}/scaled")
    y = g.node("Add", [y, g.const(f"{bn}/shift", shift[alive].astype(f32).reshape(1, n, 1))],
               f"{conv}/pool")
    return _Features(y, alive, const)


def _concat(g: _Graph, parts: list[_Features], name: str) -> _Features:
    offsets = np.cumsum([0] + [len(p.const) for p in parts[:-1]])     # each part's first channel
    tensor = g.node("Concat", [p.tensor for p in parts], name, axis=1)
    return _Features(tensor, np.concatenate([p.alive + o for p, o in zip(parts, offsets, strict=True)]),
                     np.concatenate([p.const for p in parts]))


def _mid_conv(g: _Graph, x: str | _Features, conv: str, bn: str,
              shape: tuple[int, int, int, int]) -> str:
    kt, features, _, out = shape
    # TF convolves [N, 187, features, 1] with a (7, features) kernel: a 1-D convolution over
    # time with `features` input channels.
    kernel = g.weight(f"{conv}/kernel", shape)[:, :, 0, :].transpose(2, 1, 0)   # [out, in, 7]
    bias = g.weight(f"{conv}/bias", (out,))
    if isinstance(x, str):
        y = g.node("Conv", [x, g.const(f"{conv}/kernel", kernel), g.const(f"{conv}/bias", bias)],
                   f"{conv}/out", kernel_shape=[kt], pads=[3, 3])
    else:
        # Dead input channels are constants: their part of the convolution is a bias that
        # varies only at the two ends, where the zero padding replaces some of them.
        dead = np.setdiff1d(np.arange(features), x.alive)
        per_tap = np.einsum("oct,c->ot", kernel[:, dead].astype(np.float64), x.const[dead])
        valid = np.array([[0 <= t + tap - kt // 2 < FRAMES for t in range(FRAMES)]
                          for tap in range(kt)], dtype=np.float64)          # [tap, time]
        folded = bias.astype(np.float64)[:, None] + per_tap @ valid        # [out, time]
        y = g.node("Conv", [x.tensor, g.const(f"{conv}/kernel", kernel[:, x.alive])],
                   f"{conv}/live", kernel_shape=[kt], pads=[3, 3])
        y = g.node("Add", [y, g.const(f"{conv}/bias", folded.astype(np.float32)[None])],
                   f"{conv}/out")
    y = g.node("Relu", [y], f"{conv}/relu")
    return g.batch_norm(y, bn, out)


def build_musicnn(weights: Mapping[str, np.ndarray], n_labels: int = 50) -> bytes:
    """The serialized ONNX model (deterministic bytes for the same weights)."""
    import onnx
    from onnx import TensorProto, helper

    g = _Graph(weights)
    # input batch norm on the single channel: [N, 187, 96] → [N, 1, 187, 96]
    x = g.node("Unsqueeze", [INPUT, g.const("axes1", np.array([1], dtype=np.int64))], "patch4d")
    x = g.batch_norm(x, "batch_normalization", 1)
    feats = _concat(g, [_front_conv(g, x, *layer) for layer in FRONT_END], "front_end")
    res1 = _mid_conv(g, feats, *MID_END[0])
    res2 = g.node("Add", [_mid_conv(g, res1, *MID_END[1]), res1], "res2")
    res3 = g.node("Add", [_mid_conv(g, res2, *MID_END[2]), res2], "res3")
    mid = g.node("Concat", [feats.tensor, res1, res2, res3], "mid_end", axis=1)
    width = len(feats.alive) + 3 * MID_END[0][2][3]
    peak = g.node("ReduceMax", [mid], "time_max", axes=[2], keepdims=1)     # [N, width, 1]
    mean = g.node("ReduceMean", [mid], "time_mean", axes=[2], keepdims=1)
    pooled = g.node("Concat", [peak, mean], "pooled", axis=2)              # [N, width, 2]
    flat = g.node("Reshape", [pooled, g.const("flat_shape", np.array([-1, 2 * width], np.int64))],
                  "flat")

    # back end: batch norm folded into the dense layer after it; the rows of the dead front-end
    # channels (their max and mean over time are their constant) fold into its bias
    full = 2 * (len(feats.const) + 3 * MID_END[0][2][3])                   # 1506
    scale, shift = g.bn_affine("batch_normalization_9", full)
    dense = g.weight("dense/kernel", (full, 200)).astype(np.float64)
    w = scale[:, None] * dense
    b = shift @ dense + g.weight("dense/bias", (200,))
    channels = np.concatenate([feats.alive, len(feats.const) + np.arange(width - len(feats.alive))])
    dead = np.setdiff1d(np.arange(len(feats.const)), feats.alive)
    b = b + feats.const[dead] @ (w[2 * dead] + w[2 * dead + 1])
    rows = np.stack([2 * channels, 2 * channels + 1], axis=1).reshape(-1)
    emb = g.node("Gemm", [flat, g.const("dense/w", w[rows].astype(np.float32)),
                          g.const("dense/b", b.astype(np.float32))], OUTPUT_EMBEDDING)
    h = g.node("Relu", [emb], "dense/relu")
    scale, shift = g.bn_affine("batch_normalization_10", 200)
    dense = g.weight("dense_1/kernel", (200, n_labels)).astype(np.float64)
    w = (scale[:, None] * dense).astype(np.float32)
    b = (shift @ dense + g.weight("dense_1/bias", (n_labels,))).astype(np.float32)
    logits = g.node("Gemm", [h, g.const("dense_1/w", w), g.const("dense_1/b", b)], "logits")
    g.node("Sigmoid", [logits], OUTPUT_TAGS)

    graph = helper.make_graph(
        g.nodes, "musicnn",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", FRAMES, BANDS])],
        [helper.make_tensor_value_info(OUTPUT_TAGS, TensorProto.FLOAT, ["N", n_labels]),
         helper.make_tensor_value_info(OUTPUT_EMBEDDING, TensorProto.FLOAT, ["N", 200])],
        initializer=g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION, producer_name="playlistgen")
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString(deterministic=True)
