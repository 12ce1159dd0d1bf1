"""The formats the engine tries, in the order their `sniff` is tried.

More specific sniffers come first (a PyTorch zip before a generic zip; a
tar-based checkpoint before the generic archive). Adding a format is adding
its module, with a `SPEC`, and one line here. The generic archive format is
given the member layouts of the formats that live in zips and tars.
"""

from __future__ import annotations

from auditor.formats.archives import archive
from auditor.formats.code import (
    jinja,
    json_config,
    modelcard,
    python,
    sentencepiece,
    tiktoken,
    yaml_config,
)
from auditor.formats.contract import FormatSpec
from auditor.formats.pickle import numpy, plain, torch_legacy, torch_zip
from auditor.formats.weights import (
    gguf,
    hdf5,
    keras,
    msgpack,
    onnx,
    safetensors,
    tf_pbtxt,
    tf_savedmodel,
    tflite,
)

SPECS: tuple[FormatSpec, ...] = (
    safetensors.SPEC,
    gguf.SPEC,
    numpy.SPEC,
    torch_zip.SPEC,
    keras.SPEC,
    hdf5.SPEC,
    onnx.SPEC,
    tf_savedmodel.SPEC,
    tflite.SPEC,
    sentencepiece.SPEC,
    tiktoken.SPEC,
    msgpack.SPEC,
    archive.spec(
        zip_layouts=(torch_zip.ZIP_LAYOUT, numpy.NPZ_LAYOUT), tar_layouts=(torch_zip.TAR_LAYOUT,)
    ),
    torch_legacy.SPEC,
    plain.SPEC,
    modelcard.SPEC,
    jinja.SPEC,
    python.SPEC,
    tf_pbtxt.SPEC,
    yaml_config.SPEC,
    json_config.SPEC,
)
