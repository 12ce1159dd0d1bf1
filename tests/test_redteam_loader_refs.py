"""Red team: classes loaders import from JSON configs beyond `auto_map`.

diffusers imports each `model_index.json` component's `[library, class]` (a
library that is not diffusers/transformers/a pipeline module comes from the
component folder's `<library>.py` or any installed package), a list
`_class_name` or a `custom_pipeline` runs pipeline code; PEFT imports
`auto_mapping.parent_library`; sentence-transformers imports each module
`type` and calls its `load`. Standard files pass (a Stable Diffusion index,
library module types; PEFT's own auto_mapping is in tests/benign/configs.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.scan_helpers import scan_files

SD_INDEX = {
    "_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.30.0",
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
    "scheduler": ["diffusers", "PNDMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"], "image_encoder": [None, None],
    "requires_safety_checker": True,
}


def findings(folder: Path) -> list[tuple[str, str, str]]:
    return [(f.rule, f.severity.label, f.detail) for r in scan_files(folder).values()
            for f in r.findings]


def write(tmp_path: Path, name: str, doc: object) -> Path:
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(json.dumps(doc))
    return folder


@pytest.mark.parametrize(("change", "severity", "where"), [
    ({"unet": ["my_unet", "MyUNet"]}, "high", "a Python module of this repository"),
    ({"unet": ["org/other-repo", "MyUNet"]}, "high", "repository org/other-repo"),
    ({"scheduler": ["os", "system"]}, "critical", "runs programs"),
    ({"vae": ["diffusers", "Auto encoder"]}, "high", "not a library and class name"),
    ({"_class_name": ["pipeline_custom", "MyPipeline"]}, "high", "pipeline_custom"),
    ({"custom_pipeline": "someone/evil-pipeline"}, "high", "repository someone/evil-pipeline"),
    ({"custom_pipeline": "lpw_stable_diffusion"}, "high", "community pipeline"),
])
def test_diffusers_component_outside_the_libraries(tmp_path, change, severity, where):
    folder = write(tmp_path, "model_index.json", {**SD_INDEX, **change})
    (found,) = findings(folder)
    assert found[:2] == ("AUD-JSON-005", severity), found
    assert where in found[2]


def test_standard_diffusers_index_passes_and_configs_with_lists_are_not_indexes(tmp_path):
    folder = write(tmp_path, "model_index.json", SD_INDEX)
    write(tmp_path, "unet_config.json", {"_class_name": "UNet2DConditionModel",
                                         "_diffusers_version": "0.30.0",
                                         "block_out_channels": [320, 640],
                                         "down_block_types": ["CrossAttnDownBlock2D",
                                                              "DownBlock2D"]})
    assert findings(folder) == []


@pytest.mark.parametrize(("mapping", "severity"), [
    ({"base_model_class": "MyModel", "parent_library": "modeling_custom"}, "high"),
    ({"base_model_class": "system", "parent_library": "os"}, "critical"),
    ({"base_model_class": "Thing", "parent_library": "transformers.utils.hub.subprocess"},
     "critical"),
    ({"base_model_class": "X"}, "high"),
    ("transformers.BertModel", "high"),
])
def test_peft_auto_mapping_outside_transformers(tmp_path, mapping, severity):
    folder = write(tmp_path, "adapter_config.json", {"peft_type": "LORA", "auto_mapping": mapping,
                                                     "task_type": None, "r": 8})
    (found,) = findings(folder)
    assert found[:2] == ("AUD-JSON-006", severity), found


@pytest.mark.parametrize(("kind", "severity"), [
    ("sentence_transformers.util.torch", "high"),  # a module with a load() that unpickles
    ("sentence_transformers.util.np.load", "high"),  # numpy by an alias: not a class
    ("sentence_transformers.util.os.system", "critical"),
    ("sentence_transformers.models.Transformer.load", "high"),
    ("sentence_transformers_evil.Pooling", "high"),
    ("modeling_custom.Layer", "high"),
    ("subprocess.Popen", "critical"),
])
def test_sentence_transformers_type_outside_the_library_classes(tmp_path, kind, severity):
    modules = [{"idx": 0, "name": "0", "path": "", "type": kind}]
    folder = write(tmp_path, "modules.json", modules)
    (found,) = findings(folder)
    assert found[:2] == ("AUD-JSON-004", severity), found


def test_sentence_transformers_library_classes_pass(tmp_path):
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize",
         "type": "sentence_transformers.base.modules.normalize.Normalize"},
    ]
    assert findings(write(tmp_path, "modules.json", modules)) == []


def test_loader_files_too_big_to_parse_whole_are_refused(tmp_path):
    """Padding past the whole-parse size must not hide the references (streamed files keep
    only top-level keys)."""
    from auditor.formats.code.json_config import FULL_PARSE_BYTES

    pad = "x" * FULL_PARSE_BYTES
    folder = write(tmp_path, "model_index.json", {**SD_INDEX, "_pad": pad,
                                                  "unet": ["my_unet", "MyUNet"]})
    write(tmp_path, "adapter_config.json", {"_pad": pad, "auto_mapping": {
        "base_model_class": "system", "parent_library": "os"}})
    write(tmp_path, "hparams.json", {"_pad": pad, "_target_": "os.system"})
    found = {(f[0], f[1]) for f in findings(folder)}
    assert found == {("AUD-JSON-005", "high"), ("AUD-JSON-006", "critical"),
                     ("AUD-YAML-003", "critical")}, found
