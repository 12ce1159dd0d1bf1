"""Instantiation targets as data: what a config's `_target_` may name, and what it must not.

Hydra's `instantiate` (and NeMo, and every trainer built on them) imports the
dotted name in `_target_` and calls it with the config's other keys; with
`_partial_` it hands back a `functools.partial` that the program calls later.
Either way the named object is called, so a target is judged as a call:

- a class of an installed ML framework, built from the config's values, is
  what these configs exist for → clean (`CLASS_PACKAGES`: a CapWords name in
  the package or its submodules; a method such as `from_pretrained` is not a
  class and is not covered);
- a few pure functions are named on purpose (`FUNCTION_PACKAGES`: one plain
  name directly in the package, so no attribute walk);
- anything that runs programs, executes code, touches files or the network,
  or resolves another name at run time → critical (the pickle import table's
  dangerous entries, plus `DANGEROUS` here for what only targets reach);
- everything else → high: code the audit cannot vouch for runs on load.

The same grading names the libraries a diffusers pipeline, a PEFT adapter
and a sentence-transformers model may import their classes from.
"""

from __future__ import annotations

# Package -> why building any class defined in it (or its submodules) from config values is safe.
CLASS_PACKAGES: dict[str, str] = {
    "torch.nn": "layers, losses and containers: constructing one allocates parameters",
    "torch.optim": "optimizers and learning-rate schedulers: they hold parameters and numbers",
    "transformers": "configs, models, tokenizers and processors built from the given values; "
                    "loading from a path or the Hub is a method (from_pretrained), not covered",
    "diffusers": "UNets, VAEs, schedulers and pipelines built from the given values",
    "nemo.collections": "NeMo's models, modules, losses and metrics, built from the config",
    "omegaconf": "DictConfig and ListConfig: plain config containers",
    "ldm": "CompVis latent-diffusion models, encoders and autoencoders, which every Stable "
           "Diffusion v1/v2 inference config names (target: ldm.models.diffusion.ddpm.…)",
    "sgm": "Stability's generative-models classes, named by SDXL and SVD inference configs",
    "taming": "taming-transformers VQGAN models and losses, named by latent-diffusion configs",
    "lightning.pytorch.callbacks": "checkpointing, early stopping and monitors: hooks of the "
                                   "training loop a LightningCLI config.yaml names",
    "pytorch_lightning.callbacks": "the same callbacks under Lightning's older package name",
    "hydra._internal.core_plugins": "Hydra's basic launcher and sweeper, which every run records "
                                    "in .hydra/hydra.yaml; constructing one only stores settings",
}

# Package -> why calling one of its functions (named directly in it) is safe.
FUNCTION_PACKAGES: dict[str, str] = {
    "torch.nn.functional": "activations and losses: arithmetic on tensors (a `_partial_` "
                           "activation in a model config)",
    "torch.nn.init": "weight initialisers: fill the tensor they are given",
}

# Exact names outside those packages -> why they are safe.
EXACT: dict[str, str] = {
    "torch.utils.data.DataLoader": "batches a dataset in this process (workers are forks of "
                                   "it); its callables are targets judged on their own",
}

# What only a target reaches (the pickle table covers os, subprocess, builtins.eval, …).
_PATH_CLASSES = ("pathlib.Path", "pathlib.PosixPath", "pathlib.WindowsPath", "pathlib.PurePath")
_PATH_WRITES = ("write_text", "write_bytes", "unlink", "rmdir", "rename", "replace", "touch",
                "mkdir", "symlink_to", "hardlink_to", "chmod", "lchmod", "open", "copy",
                "copy_into", "move", "move_into")
DANGEROUS: dict[str, tuple[str, ...]] = {
    "resolves and calls another name given as data (a second, hidden target)": (
        "hydra.utils", "hydra._internal.utils", "hydra._internal.instantiate", "hydra.core.utils",
        "omegaconf.OmegaConf.register_new_resolver", "transformers.dynamic_module_utils",
    ),
    "writes, moves or deletes files": tuple(
        f"{cls}.{method}" for cls in _PATH_CLASSES for method in _PATH_WRITES
    ),
    "opens network connections (downloads or uploads)": ("huggingface_hub", "fsspec", "boto3"),
}

# Hydra helpers that only look a name up (no call): the name in their `path` is judged instead.
LOOKUPS: frozenset[str] = frozenset({
    "hydra.utils.get_class", "hydra.utils.get_method", "hydra.utils.get_object",
})

# Names a diffusers `model_index.json` component may give as its library besides diffusers and
# transformers: diffusers looks them up in `diffusers.pipelines` before anything else, so the
# class comes from diffusers itself (safety checkers, watermarkers, text encoders of a pipeline).
# Only long-standing names: a name an older diffusers lacks falls through to the component
# folder's `<name>.py`, which is remote code.
DIFFUSERS_PIPELINE_MODULES: frozenset[str] = frozenset({
    "alt_diffusion", "audioldm2", "blip_diffusion", "deepfloyd_if", "kandinsky", "kandinsky2_2",
    "latent_diffusion", "paint_by_example", "semantic_stable_diffusion", "shap_e",
    "spectrogram_diffusion", "stable_audio", "stable_cascade", "stable_diffusion",
    "stable_diffusion_safe", "stable_diffusion_xl", "unclip", "unidiffuser",
    "versatile_diffusion", "wuerstchen", "kolors",
})
