"""Convert a musicnn TF1 checkpoint into a frozen GraphDef for Essentia's TensorflowPredictMusiCNN
and, optionally, into an ONNX model for onnxruntime.

Run it in its own process only (it imports TensorFlow, and TensorFlow imported before Essentia
aborts the process)::

    python -m playlistgen.core.analysis.convert_musicnn --checkpoint-dir DIR --out FILE.pb \
        [--onnx-out FILE.onnx]

``tf.compat.v1.train.import_meta_graph`` fails on TF 2.x for these 2019 checkpoints, so this works
on the protos directly: take the inference subgraph of the outputs from the MetaGraphDef, replace
every variable by a constant holding its checkpoint value, pin the ``is_training`` placeholder
to False and drop the training-time attributes. The result is byte-for-byte reproducible.

The ONNX model is built by analysis.onnx_build from the frozen graph's constants (so both files
hold the same weights), then checked here against TensorFlow running the frozen graph on the
same random patches; it is written only if tags agree within 1e-4 and embeddings within 1e-3.
tf2onnx 1.17 also converts the frozen graph on TF 2.21/protobuf 7 (installed with --no-deps),
but adds a dependency and its model ran 10 % slower (32 vs 29 ms per patch, one thread) than the
full graph built here — which now also leaves out the dead filters (7.5 ms, see onnx_build).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path

# TensorFlow prints pages of start-up chatter on stderr; the installer only wants real errors.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.framework import graph_pb2, node_def_pb2  # noqa: E402
from tensorflow.core.protobuf import meta_graph_pb2  # noqa: E402

INPUT = "model/Placeholder"
IS_TRAINING = "model/Placeholder_2"
OUTPUTS = ("model/Sigmoid", "model/dense/BiasAdd", "model/dense_1/BiasAdd")
VARIABLE_OPS = {"VariableV2", "Variable"}


def checkpoint_prefix(checkpoint_dir: Path) -> str:
    """The checkpoint's path prefix, found from its single ``*.index`` file.

    musicnn's files are literally named ``.index``/``.data-…`` (empty prefix) and its
    ``checkpoint`` file points at the author's home directory, so the prefix is derived here
    instead of trusting ``tf.train.latest_checkpoint``.
    """
    indexes = sorted(checkpoint_dir.glob("*.index"))  # pathlib's * also matches dot-files
    if not indexes:
        raise SystemExit(f"no checkpoint (*.index) in {checkpoint_dir}")
    return str(indexes[0])[: -len(".index")]


def find_meta(checkpoint_dir: Path) -> Path:
    metas = sorted(checkpoint_dir.glob("*.meta"))
    if not metas:
        raise SystemExit(f"no MetaGraphDef (*.meta) in {checkpoint_dir}")
    return metas[0]


def load_graph_def(meta_path: Path) -> graph_pb2.GraphDef:
    meta = meta_graph_pb2.MetaGraphDef()
    meta.ParseFromString(meta_path.read_bytes())
    return meta.graph_def


def node_name(tensor_ref: str) -> str:
    """'^a/b:1' -> 'a/b' (control inputs and output indexes name the same node)."""
    return tensor_ref.lstrip("^").split(":")[0]


def inference_closure(graph: graph_pb2.GraphDef, outputs: Iterable[str]) -> set[str]:
    """Names of every node the outputs depend on (data and control edges)."""
    by_name = {node.name: node for node in graph.node}
    seen: set[str] = set()
    stack = list(outputs)
    while stack:
        name = node_name(stack.pop())
        if name in seen:
            continue
        if name not in by_name:
            raise SystemExit(f"node {name!r} is not in the graph")
        seen.add(name)
        stack.extend(by_name[name].input)
    return seen


def const_node(name: str, value: np.ndarray) -> node_def_pb2.NodeDef:
    node = node_def_pb2.NodeDef(name=name, op="Const")
    node.attr["dtype"].type = tf.as_dtype(value.dtype).as_datatype_enum
    node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
    return node


def frozen_node(node: node_def_pb2.NodeDef, reader: tf.compat.v1.train.NewCheckpointReader
                ) -> node_def_pb2.NodeDef:
    """The node as it goes into the frozen graph."""
    if node.op in VARIABLE_OPS:
        value = reader.get_tensor(node.name)
        expected = tf.as_dtype(node.attr["dtype"].type).as_numpy_dtype
        return const_node(node.name, np.asarray(value, dtype=expected))
    if node.name == IS_TRAINING:
        # Inference mode: batch norm uses the moving statistics, dropout is off.
        return const_node(node.name, np.array(False))
    out = node_def_pb2.NodeDef()
    out.CopyFrom(node)
    out.device = ""  # the training graph pinned some ops to /device:CPU:0; let the runtime place
    for key in [k for k in out.attr if k.startswith("_")]:
        # _output_shapes carries ref types and _class colocates with variables that are gone.
        del out.attr[key]
    return out


def freeze(graph: graph_pb2.GraphDef, checkpoint: str) -> graph_pb2.GraphDef:
    reader = tf.compat.v1.train.NewCheckpointReader(checkpoint)
    keep = inference_closure(graph, OUTPUTS)
    if INPUT not in keep:
        raise SystemExit(f"input {INPUT!r} does not feed the outputs")
    frozen = graph_pb2.GraphDef()
    frozen.versions.CopyFrom(graph.versions)
    # The .meta's node order is fixed, so keeping it makes the output reproducible.
    frozen.node.extend(frozen_node(node, reader) for node in graph.node if node.name in keep)
    return frozen


def write_atomically(data: bytes, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out)


def graph_weights(frozen: graph_pb2.GraphDef) -> dict[str, np.ndarray]:
    """Every constant of the frozen graph by node name (the variables are named as in TF)."""
    return {node.name: tf.make_ndarray(node.attr["value"].tensor)
            for node in frozen.node if node.op == "Const"}


def check_onnx(frozen: graph_pb2.GraphDef, model: bytes, patches: int = 4) -> tuple[float, float]:
    """Largest |difference| of (tags, embedding) between TF and onnxruntime on random patches;
    SystemExit when beyond 1e-4 / 1e-3."""
    from . import onnx_build as ob
    from .onnx_musicnn import import_onnxruntime

    ort = import_onnxruntime()

    x = np.random.default_rng(0).uniform(0.0, 4.0, (patches, ob.FRAMES, ob.BANDS)).astype(np.float32)
    with tf.Graph().as_default() as graph:
        tf.compat.v1.import_graph_def(frozen, name="")
        with tf.compat.v1.Session(graph=graph) as session:
            tags, emb = session.run([f"{OUTPUTS[0]}:0", f"{OUTPUTS[1]}:0"], {f"{INPUT}:0": x})
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    run = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"]).run
    onnx_tags, onnx_emb = run([ob.OUTPUT_TAGS, ob.OUTPUT_EMBEDDING], {ob.INPUT: x})
    diff = float(np.abs(tags - onnx_tags).max()), float(np.abs(emb - onnx_emb).max())
    if not (diff[0] <= 1e-4 and diff[1] <= 1e-3):
        raise SystemExit(f"the ONNX model differs from the TF graph: tags {diff[0]:.2e}, "
                         f"embedding {diff[1]:.2e}")
    return diff


def convert(checkpoint_dir: Path, out: Path, onnx_out: Path | None = None) -> str:
    """Write the frozen graph to ``out`` (and the ONNX model to ``onnx_out``); return the
    frozen graph's sha256."""
    graph = load_graph_def(find_meta(checkpoint_dir))
    frozen = freeze(graph, checkpoint_prefix(checkpoint_dir))
    data = frozen.SerializeToString(deterministic=True)
    if onnx_out is not None:
        from .onnx_build import build_musicnn

        weights = graph_weights(frozen)
        model = build_musicnn(weights, n_labels=int(weights["dense_1/bias"].shape[0]))
        check_onnx(frozen, model)
        write_atomically(model, onnx_out)
    write_atomically(data, out)
    return hashlib.sha256(data).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint-dir", type=Path, required=True,
                        help="folder with the checkpoint (.meta, .index, .data-*), e.g. MSD_musicnn")
    parser.add_argument("--out", type=Path, required=True, help="frozen graph to write (.pb)")
    parser.add_argument("--onnx-out", type=Path, default=None,
                        help="also write the ONNX model (.onnx) for onnxruntime")
    args = parser.parse_args(argv)
    digest = convert(args.checkpoint_dir, args.out, args.onnx_out)
    print(f"{args.out} {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
