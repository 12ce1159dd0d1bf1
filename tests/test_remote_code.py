"""Remote code: shipped *.py files are reviewed as source (never imported) and auto_map checked."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from auditor.model import FileReport
from tests.scan_helpers import rule_ids, scan_files


def _code(tmp_path: Path, source: str, name: str = "modeling_x.py") -> FileReport:
    (tmp_path / name).write_text(textwrap.dedent(source))
    return scan_files(tmp_path)[name]


BENIGN = '''
"""Tiny modeling file in the style of a transformers remote-code model.

See https://arxiv.org/abs/1706.03762 for the architecture.
"""
import importlib.util
import math

import torch
from torch import nn


def flash_available() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


class TinyModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.scale = 1 / math.sqrt(config.hidden_size)

    def forward(self, x):
        code = x * self.scale
        self.eval()
        return torch.tanh(self.proj(code.float()))
'''


def test_benign_modeling_code_is_medium_only(tmp_path, run_cli):
    report = _code(tmp_path, BENIGN)
    assert report.format == "python"
    assert rule_ids(report) == ["AUD-CODE-001"]
    assert report.findings[0].severity.label == "medium"
    assert report.facts["imports"] == ["importlib", "math", "torch"]
    assert report.facts["calls"] == [] and report.facts["urls"] == []
    assert len(report.sha256) == 64
    assert run_cli("scan", tmp_path).code == 0


@pytest.mark.parametrize("source", [
    "import os\nos.system('id')\n",
    "import os as o\no.system('id')\n",
    "from os import system as s\ns('id')\n",
    "from os import *\nsystem('id')\n",
    "import os\ngetattr(os, 'system')('id')\n",
    "import subprocess\nsubprocess.run(['id'])\n",
    "from subprocess import Popen\nPopen('id', shell=True)\n",
    "import os\nos.execv('/bin/sh', ['sh'])\n",
    "import pty\npty.spawn('/bin/sh')\n",
    "import os\nrunner = os.system\nrunner('id')\n",
    "import os\nos.system.__call__('id')\n",
    "__import__('os').system('id')\n",
    "getattr(__import__('os'), 'system')('id')\n",
    "import importlib\nimportlib.import_module('subprocess').run(['id'])\n",
])
def test_process_execution_is_critical(tmp_path, source):
    report = _code(tmp_path, source)
    assert "AUD-CODE-002" in rule_ids(report)
    assert max(f.severity.label for f in report.findings if f.rule == "AUD-CODE-002") \
        == "critical"


def test_exec_of_base64_blob_is_critical(tmp_path):
    report = _code(tmp_path, """
        import base64
        exec(base64.b64decode("cHJpbnQoMSk="))
    """)
    assert "AUD-CODE-004" in rule_ids(report)
    assert "AUD-CODE-003" in rule_ids(report)


def test_blob_through_variables_is_followed(tmp_path):
    report = _code(tmp_path, """
        import zlib, codecs
        raw = codecs.decode("789c", "hex")
        payload = zlib.decompress(raw)
        code_obj = compile(payload, "x", "exec")
    """)
    assert "AUD-CODE-004" in rule_ids(report)


def test_marshal_of_hex_blob_is_critical(tmp_path):
    report = _code(tmp_path, "import marshal\nf = marshal.loads(bytes.fromhex('e3'))\n")
    assert {"AUD-CODE-004", "AUD-CODE-008"} <= set(rule_ids(report))


def test_builtins_indirection_is_resolved(tmp_path):
    report = _code(tmp_path, "import builtins\nbuiltins.eval('1')\n__builtins__['exec']('1')\n"
                   "globals()['__builtins__']['compile']('1', 'f', 'exec')\n")
    assert rule_ids(report).count("AUD-CODE-003") == 3


@pytest.mark.parametrize(("source", "rule"), [
    ("import importlib\nm = importlib.import_module(name)\n", "AUD-CODE-005"),
    ("m = __import__('o' + 's')\n", "AUD-CODE-005"),
    ("import urllib.request\nurllib.request.urlopen('http://198.51.100.7/x')\n", "AUD-CODE-006"),
    ("import requests\nrequests.post(URL, data=open('k').read())\n", "AUD-CODE-006"),
    ("import socket\ns = socket.socket()\n", "AUD-CODE-006"),
    ("import ctypes\nctypes.CDLL('libc.so.6')\n", "AUD-CODE-007"),
    ("import pickle\nobj = pickle.loads(data)\n", "AUD-CODE-008"),
    ("open('/home/user/.bashrc', 'a').write('x')\n", "AUD-CODE-009"),
    ("open('../../../etc/cron.d/x', mode='w')\n", "AUD-CODE-009"),
    ("import shutil\nshutil.rmtree('~/.cache')\n", "AUD-CODE-009"),
    ("from pathlib import Path\nPath('/etc/profile.d/x.sh').write_text('x')\n", "AUD-CODE-009"),
])
def test_dangerous_calls_each_raise_their_rule(tmp_path, source, rule):
    report = _code(tmp_path, source)
    assert rule in rule_ids(report)
    assert report.facts["calls"] or rule == "AUD-CODE-009"


def test_writes_inside_the_folder_and_reads_are_not_flagged(tmp_path):
    report = _code(tmp_path, "open('vocab.txt', 'w').write('x')\nopen('/etc/hostname').read()\n")
    assert rule_ids(report) == ["AUD-CODE-001"]


def test_urls_in_code_are_low_and_listed(tmp_path):
    report = _code(tmp_path, "ENDPOINT = 'https://collector.example/upload'\n")
    assert rule_ids(report) == ["AUD-CODE-001", "AUD-CODE-010"]
    assert report.facts["urls"] == ["https://collector.example/upload"]


def test_syntax_error_fails_closed(tmp_path):
    report = _code(tmp_path, "def broken(:\n    pass\n")
    assert report.coverage.value == "error"
    assert "AUD-CODE-011" in rule_ids(report)
    assert "line 1" in next(f.detail for f in report.findings if f.rule == "AUD-CODE-011")


def test_binary_named_py_is_not_python(tmp_path):
    (tmp_path / "x.py").write_bytes(b"\x00\x01\x02binary")
    report = scan_files(tmp_path)["x.py"]
    assert report.format != "python"
    assert "AUD-FILE-001" in rule_ids(report)


def test_code_is_never_imported_or_run(tmp_path, run_cli):
    canary = tmp_path / "canary"
    payload = f"""
        import os
        open({str(canary)!r}, "w").write("ran")
        os.system("touch {canary}")
        exec("open({str(canary)!r}, 'w')")
    """
    model = tmp_path / "model"
    model.mkdir()
    (model / "modeling_evil.py").write_text(textwrap.dedent(payload))
    (model / "config.json").write_text(json.dumps(
        {"auto_map": {"AutoModel": "modeling_evil.EvilModel"}}))
    run = run_cli("scan", model, "--format", "json")
    assert run.code == 1
    assert not canary.exists()
    doc = json.loads(run.out)
    assert doc["models"][0]["facts"]["remote_code"]["present"] is True


def _config(tmp_path: Path, auto_map: dict) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "x", "auto_map": auto_map}))


def test_auto_map_with_local_module_is_medium(tmp_path):
    _config(tmp_path, {"AutoConfig": "configuration_x.XConfig",
                       "AutoModel": "modeling_x.XModel"})
    (tmp_path / "configuration_x.py").write_text("class XConfig:\n    pass\n")
    (tmp_path / "modeling_x.py").write_text("class XModel:\n    pass\n")
    config = scan_files(tmp_path)["config.json"]
    assert rule_ids(config) == ["AUD-CODE-012"]
    assert "modeling_x.XModel" in config.findings[0].detail


def test_auto_map_module_missing_from_folder(tmp_path):
    _config(tmp_path, {"AutoModel": "modeling_x.XModel"})
    config = scan_files(tmp_path)["config.json"]
    assert rule_ids(config) == ["AUD-CODE-012", "AUD-CODE-015"]
    assert "modeling_x.py" in config.findings[1].detail


def test_auto_map_from_another_repository_is_high(tmp_path):
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"auto_map": {
        "AutoTokenizer": ["other-org/other-repo--tokenization_y.YTokenizer", None]}}))
    report = scan_files(tmp_path)["tokenizer_config.json"]
    assert rule_ids(report) == ["AUD-CODE-012", "AUD-CODE-013"]
    assert "other-org/other-repo" in report.findings[1].detail


@pytest.mark.parametrize("ref", ["/tmp/evil.Evil", "../up.Evil", "no_class", "a b.C"])
def test_malformed_or_escaping_auto_map_is_high(tmp_path, ref):
    _config(tmp_path, {"AutoModel": ref})
    assert "AUD-CODE-014" in rule_ids(scan_files(tmp_path)["config.json"])


def test_exception_names_of_dangerous_modules_are_not_findings(tmp_path):
    report = _code(tmp_path, """
        import subprocess, requests

        def probe(f):
            try:
                return f()
            except (subprocess.CalledProcessError, requests.exceptions.HTTPError):
                return None
    """)
    assert rule_ids(report) == ["AUD-CODE-001"]


def test_custom_pipelines_are_remote_code_too(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"custom_pipelines": {
        "pair-classification": {"impl": "pair_pipeline.PairPipeline", "pt": ["AutoModel"]},
        "other": {"impl": "someone/else--evil_pipe.Pipe"}}}))
    report = scan_files(tmp_path)["config.json"]
    assert rule_ids(report) == ["AUD-CODE-012", "AUD-CODE-013", "AUD-CODE-015"]
    assert "pair_pipeline.py" in next(f.detail for f in report.findings
                                      if f.rule == "AUD-CODE-015")
    assert set(report.facts["custom_pipelines"]) == {"pair-classification", "other"}


@pytest.mark.parametrize("source", [
    "import os\ngetattr(os, 'x' * 10**12)\n",
    "import os\ngetattr(os, ''.join(['y' * 4096] * 4096))\n",
    "import os\ngetattr(os, '%s' * 2000 % tuple(['z' * 4096] * 2000))\n",
    "import os\ngetattr(os, ''.join(''.join(chr(c) for c in range(9)) for d in 'x' * 4096))\n",
    "import os\nk = [c for c in b'a' * 4096 for d in b'a' * 4096]\n"
    "getattr(os, ''.join(chr(c) for c in k))\n",
    "import os\na = b\nb = a\ngetattr(os, a + 'x')\n",
    "import os\ngetattr(os, '{:>999999999}'.format('s'))\n",
    "import os\ngetattr(os, f'{\"s\":>999999999}')\n",
    "import os\ngetattr(os, '%999999999s' % 's')\n",
    "import os\ngetattr(os, 'x'.replace('', 'y' * 4096))\n",
    "import os\ngetattr(os, codecs.decode(b'x' * 4096, 'zlib'))\n",
])
def test_folding_never_allocates_from_hostile_sizes(tmp_path, source):
    """The folder computes names from constants: huge repetitions, formats with widths and
    self-referencing names are left unresolved (high), never built."""
    report = _code(tmp_path, source)
    assert "AUD-CODE-017" in rule_ids(report)
