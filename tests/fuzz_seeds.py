"""Seed inputs for every byte parser, built by code: the fuzz tests and the atheris harnesses
(`bench/fuzz/`) start from these and mutate them.

Each target names the file name the engine sees (sniffing and extension
checks use it) and a function returning a few valid, small inputs.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

from tests import pickle_corpus
from tests.builders import safetensors_bytes


@dataclass(frozen=True)
class Target:
    name: str  # what the file is called when scanned
    seeds: Callable[[], list[bytes]]


def pickles() -> list[bytes]:
    value = {"w": [1.5, 2, None], "name": "layer", "t": (1, b"x"), "s": {1}}
    out = [pickle.dumps(value, protocol=p) for p in range(6)]
    out += [c.data for c in pickle_corpus.malicious("/nonexistent/canary")[:12]]
    return out


def safetensors() -> list[bytes]:
    return [
        safetensors_bytes({"w": ("F32", [2, 2]), "b": ("I64", [3])}, {"format": "pt"}),
        safetensors_bytes({"e": ("BF16", [0])}),
    ]


def _gguf_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def gguf() -> list[bytes]:
    kvs = [
        _gguf_string("general.architecture") + struct.pack("<I", 8) + _gguf_string("llama"),
        _gguf_string("general.file_type") + struct.pack("<II", 4, 1),
        _gguf_string("tokenizer.chat_template") + struct.pack("<I", 8)
        + _gguf_string("{% for m in messages %}{{ m.content }}{% endfor %}"),
        _gguf_string("tokenizer.ggml.tokens") + struct.pack("<II", 9, 8) + struct.pack("<Q", 2)
        + _gguf_string("a") + _gguf_string("b"),
    ]
    tensor = _gguf_string("w") + struct.pack("<I", 1) + struct.pack("<Q", 4) \
        + struct.pack("<I", 0) + struct.pack("<Q", 0)
    head = b"GGUF" + struct.pack("<IQQ", 3, 1, len(kvs)) + b"".join(kvs) + tensor
    head += b"\x00" * (-len(head) % 32)
    return [head + bytes(16)]


def zips() -> list[bytes]:
    out = []
    for method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", method) as zf:
            zf.writestr("archive/data.pkl", pickle.dumps({"w": 1}, protocol=2))
            zf.writestr("archive/version", b"3\n")
            zf.writestr("archive/data/0", bytes(16))
        out.append(buf.getvalue())
    return out


def tars() -> list[bytes]:
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in (("config.json", b'{"a": 1}'), ("model.pkl", pickle.dumps([1]))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return [buf.getvalue()]


def npy() -> list[bytes]:
    import numpy as np

    out = []
    for array in (np.arange(6, dtype=np.float32).reshape(2, 3), np.array([b"ab", b"c"]),
                  np.zeros((0,), dtype=[("x", "<i4"), ("y", "<f8")])):
        buf = io.BytesIO()
        np.save(buf, array)
        out.append(buf.getvalue())
    return out


def onnx_models() -> list[bytes]:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    nodes = [helper.make_node("Add", ["x", "x"], ["y"]),
             helper.make_node("Custom", ["x"], ["z"], domain="evil.ops")]
    graph = helper.make_graph(nodes, "g", [x], [y])
    return [helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
            .SerializeToString(), onnx.ModelProto().SerializeToString() + b"\x08\x07"]


def tflite() -> list[bytes]:
    from tests import test_tflite as t

    return [t.model([t.opcode(t.ADD), t.opcode(t.CUSTOM, "Evil")], [t.operator(0), t.operator(1)])]


def savedmodel() -> list[bytes]:
    from tests import test_savedmodel as t

    return [t.saved_model(*t.CHECKPOINT), t.saved_model(t.const_string("c", "hello"))]


TARGETS: dict[str, Target] = {
    "pickle": Target("model.pkl", pickles),
    "safetensors": Target("model.safetensors", safetensors),
    "gguf": Target("model.gguf", gguf),
    "zip": Target("model.pt", zips),
    "tar": Target("model.tar", tars),
    "npy": Target("array.npy", npy),
    "onnx": Target("model.onnx", onnx_models),
    "tflite": Target("model.tflite", tflite),
    "savedmodel": Target("saved_model.pb", savedmodel),
}
