"""Configs that instantiate framework classes, written by the libraries that write them.

Hydra records every run's composed config and its own settings (launcher,
sweeper) with OmegaConf; NeMo bundles `model_config.yaml` (OmegaConf.save)
and `torch.save`d weights in a `.nemo` tar; PEFT writes `auto_mapping` for an
adapter saved without a task type. All of them name `_target_`s or classes
of the frameworks, which must pass.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from tests.benign import Writer

RECIPE = """\
model:
  _target_: transformers.BertConfig
  hidden_size: 8
  num_hidden_layers: 1
optim:
  _target_: torch.optim.AdamW
  _partial_: true
  lr: 0.001
sched:
  _target_: torch.optim.lr_scheduler.CosineAnnealingLR
  _partial_: true
  T_max: 10
loss:
  _target_: torch.nn.CrossEntropyLoss
  label_smoothing: 0.1
"""


def _hydra_run(folder: Path) -> None:
    """What a Hydra run leaves: the composed config and .hydra/{config,hydra,overrides}.yaml."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    conf = folder.parent / f"{folder.name}-conf"
    conf.mkdir()
    (conf / "train.yaml").write_text(RECIPE)
    with initialize_config_dir(config_dir=str(conf), version_base=None):
        run = compose(config_name="train", overrides=["optim.lr=0.01"], return_hydra_config=True)
        cfg = compose(config_name="train", overrides=["optim.lr=0.01"])
    record = folder / ".hydra"
    record.mkdir()
    OmegaConf.save({"hydra": run.hydra}, record / "hydra.yaml")
    OmegaConf.save(cfg, record / "config.yaml")
    OmegaConf.save(OmegaConf.create(["optim.lr=0.01"]), record / "overrides.yaml")
    OmegaConf.save(cfg, folder / "config.yaml")


def _nemo_bundle(folder: Path) -> None:
    """A `.nemo`: model_config.yaml (OmegaConf.save) and the state dict (torch.save) in a tar."""
    import torch
    from omegaconf import OmegaConf

    torch.manual_seed(0)
    cfg = OmegaConf.create({
        "sample_rate": 16000,
        "preprocessor": {"_target_":
                         "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
                         "features": 8},
        "encoder": {"_target_": "nemo.collections.asr.modules.ConvASREncoder",
                    "activation": "relu", "feat_in": 8},
        "decoder": {"_target_": "nemo.collections.asr.modules.ConvASRDecoder", "num_classes": 4},
        "optim": {"name": "adamw", "lr": 0.001},
        "target": "nemo.collections.asr.models.ctc_models.EncDecCTCModel",
    })
    config, weights = io.StringIO(), io.BytesIO()
    config.write(OmegaConf.to_yaml(cfg))
    torch.save({"encoder.weight": torch.randn(4, 8)}, weights)
    with tarfile.open(folder / "asr.nemo", "w") as tar:
        for name, data in (("./model_config.yaml", config.getvalue().encode()),
                           ("./model_weights.ckpt", weights.getvalue())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _peft_auto_mapping(folder: Path) -> None:
    """PEFT's save_pretrained without a task type records the model's class in auto_mapping."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2Model

    torch.manual_seed(0)
    model = GPT2Model(GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=16, n_positions=8,
                                 bos_token_id=0, eos_token_id=0))
    get_peft_model(model, LoraConfig(r=2, target_modules=["c_attn"],
                                     fan_in_fan_out=True)).save_pretrained(folder)


WRITERS: tuple[Writer, ...] = (
    Writer("hydra-run-record", "hydra.compose", _hydra_run),
    Writer("nemo-style-bundle", "omegaconf.OmegaConf", _nemo_bundle),
    Writer("peft-auto-mapping", "peft.PeftModel", _peft_auto_mapping),
)
