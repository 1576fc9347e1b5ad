"""Build the MusiCNN network as an ONNX model from its weights (convert time only).

Used by ``convert_musicnn`` in the throw-away conversion process; imports ``onnx`` (the
``convert`` extra), never TensorFlow. The network is musicnn's ``musicnn`` model (Pons & Serra,
"musicnn", 2019) exactly as its TF1 graph computes it in inference mode, written in ONNX's NCHW
layout so it needs no transposes:

    mel patch [N, 187, 96] → batch norm (1 channel)
    front end: 7×38 and 7×67 convolutions (timbral) and 128×1, 64×1, 32×1 (temporal), each
               ReLU → batch norm → max over frequency                     → [N, 561, 187]
               (computed as max or min over frequency, by the sign of the batch norm's scale,
               then the batch norm's affine: the same values, one pass fewer)
    mid end:   three 7-frame 1-D convolutions of 64 channels, ReLU → batch norm, the last two
               with residual connections; concatenated with the front end → [N, 753, 187]
    back end:  max and mean over time, interleaved per feature (TF's flatten of [753, 2])
               → batch norm → dense 1506→200 = ``embedding`` (before its ReLU, as
               ``model/dense/BiasAdd``) → ReLU → batch norm → dense 200→50 → sigmoid = ``tags``

The two batch norms of the back end are folded into the dense layers that follow them (affine
into affine); those of the mid end and the input stay ONNX BatchNormalization nodes. Dropout
is the identity at inference. Weight names are the TF variable names (``conv2d_3/kernel``,
``batch_normalization_9/moving_mean`` …); every shape is checked, so another architecture fails
loudly instead of producing a wrong model.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .models import ONNX_IO

INPUT = ONNX_IO["input"]
OUTPUT_TAGS = ONNX_IO["output_tags"]
OUTPUT_EMBEDDING = ONNX_IO["output_embedding"]
OPSET = 17
IR_VERSION = 8            # what ONNX 1.12+ writes for opset 17; every onnxruntime ≥ 1.12 reads it
FRAMES, BANDS = 187, 96
EPSILON = 1e-3            # every batch norm in musicnn (tf.layers default)

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


def _front_conv(g: _Graph, x: str, conv: str, bn: str, shape: tuple[int, int, int, int],
                padding: str) -> str:
    kt, kf, _, out = shape
    kernel = g.weight(f"{conv}/kernel", shape).transpose(3, 2, 0, 1)      # HWIO → OIHW
    if padding == "pad3":                   # tf.pad 3 frames each side, then VALID
        pads = [3, 0, 3, 0]
    else:                                   # SAME: TF puts the odd frame at the end
        pads = [(kt - 1) // 2, 0, kt - 1 - (kt - 1) // 2, 0]
    y = g.node("Conv", [x, g.const(f"{conv}/kernel", kernel),
                        g.const(f"{conv}/bias", g.weight(f"{conv}/bias", (out,)))],
               f"{conv}/out", kernel_shape=[kt, kf], pads=pads)
    y = g.node("Relu", [y], f"{conv}/relu")
    # TF: batch norm, then max over frequency. The batch norm is a per-channel affine s·x + t, so
    # max(s·x + t) = s·max(x) + t where s > 0 and s·min(x) + t where s < 0: pooling first and
    # applying the affine to [N, out, 187] skips a pass over the [N, out, 187, freq] tensor
    # (4 % of the model's time).
    scale, shift = g.bn_affine(bn, out)
    peak = g.node("ReduceMax", [y], f"{conv}/max", axes=[3], keepdims=0)
    low = g.node("ReduceMin", [y], f"{conv}/min", axes=[3], keepdims=0)
    y = g.node("Where", [g.const(f"{bn}/positive", (scale > 0).reshape(1, out, 1)), peak, low],
               f"{conv}/pooled")
    y = g.node("Mul", [y, g.const(f"{bn}/scale", scale.astype(np.float32).reshape(1, out, 1))],
               f"{conv}/scaled")
    return g.node("Add", [y, g.const(f"{bn}/shift", shift.astype(np.float32).reshape(1, out, 1))],
                  f"{conv}/pool")


def _mid_conv(g: _Graph, x: str, conv: str, bn: str, shape: tuple[int, int, int, int]) -> str:
    kt, features, _, out = shape
    # TF convolves [N, 187, features, 1] with a (7, features) kernel: a 1-D convolution over
    # time with `features` input channels.
    kernel = g.weight(f"{conv}/kernel", shape)[:, :, 0, :].transpose(2, 1, 0)   # [out, in, 7]
    y = g.node("Conv", [x, g.const(f"{conv}/kernel", kernel),
                        g.const(f"{conv}/bias", g.weight(f"{conv}/bias", (out,)))],
               f"{conv}/out", kernel_shape=[kt], pads=[3, 3])
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
    front = [_front_conv(g, x, *layer) for layer in FRONT_END]
    feats = g.node("Concat", front, "front_end", axis=1)                    # [N, 561, 187]
    res1 = _mid_conv(g, feats, *MID_END[0])
    res2 = g.node("Add", [_mid_conv(g, res1, *MID_END[1]), res1], "res2")
    res3 = g.node("Add", [_mid_conv(g, res2, *MID_END[2]), res2], "res3")
    mid = g.node("Concat", [feats, res1, res2, res3], "mid_end", axis=1)    # [N, 753, 187]
    peak = g.node("ReduceMax", [mid], "time_max", axes=[2], keepdims=1)     # [N, 753, 1]
    mean = g.node("ReduceMean", [mid], "time_mean", axes=[2], keepdims=1)
    pooled = g.node("Concat", [peak, mean], "pooled", axis=2)              # [N, 753, 2]
    flat = g.node("Reshape", [pooled, g.const("flat_shape", np.array([-1, 1506], np.int64))],
                  "flat")

    # back end: batch norm folded into the dense layer after it
    scale, shift = g.bn_affine("batch_normalization_9", 1506)
    dense = g.weight("dense/kernel", (1506, 200)).astype(np.float64)
    w = (scale[:, None] * dense).astype(np.float32)
    b = (shift @ dense + g.weight("dense/bias", (200,))).astype(np.float32)
    emb = g.node("Gemm", [flat, g.const("dense/w", w), g.const("dense/b", b)], OUTPUT_EMBEDDING)
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
