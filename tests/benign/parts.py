"""Files that are parts of a model: ONNX external data, safetensors shards with their index.

Each folder is a whole model as the writer leaves it (the corpus test scans
folders); tests/test_onnx.py and tests/test_torch_zip.py scan the same parts
one file at a time, with their siblings beside them.
"""

from __future__ import annotations

from pathlib import Path

from tests.benign import Writer


def onnx_external(folder: Path) -> None:
    """An ONNX model whose initializers live in `model.onnx_data` beside it."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((64, 32)).astype(np.float32), "weight")
    bias = numpy_helper.from_array(rng.standard_normal(32).astype(np.float32), "bias")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "weight", "bias"], ["y"])], "gemm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32])],
        initializer=[weight, bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save_model(model, str(folder / "model.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="model.onnx_data", size_threshold=0)


def sharded_safetensors(folder: Path) -> None:
    """A transformers checkpoint split into shards with model.safetensors.index.json."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=32)
    BertModel(config).save_pretrained(folder, max_shard_size="20KB")


WRITERS: tuple[Writer, ...] = (
    Writer("onnx-external-data", "onnx.save_model", onnx_external),
    Writer("sharded-safetensors", "transformers.save_pretrained", sharded_safetensors),
)
