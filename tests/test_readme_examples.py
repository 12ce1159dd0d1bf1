"""Every `$ auditor …` example in the README is run, and the output it shows is what it prints.

Each example's target is built by the same code the other tests use (the bundled example, a
Trainer checkpoint written by transformers, a forged cache, a re-carded R1 distill, a reference
store), in a fresh folder that stands for the reader's working directory. Shown lines must
appear in the real output in order; a shown line ending in `...` matches any line starting
with the text before it (the README cuts long lines). An example with no builder here fails:
a new example must be made testable, not left to drift.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FENCE = re.compile(r"^```")


def examples() -> list[tuple[int, str, list[str]]]:
    """(line number, command, shown output lines) of every `$ auditor` line in a code block."""
    out: list[tuple[int, str, list[str]]] = []
    inside = False
    current: tuple[int, str, list[str]] | None = None
    for n, line in enumerate(README.read_text().splitlines(), 1):
        if FENCE.match(line):
            if inside and current:
                out.append(current)
            inside, current = not inside, None
            continue
        if not inside:
            continue
        if line.startswith("$ "):
            if current:
                out.append(current)
            current = (n, line[2:], []) if line.startswith("$ auditor ") else None
        elif current is not None:
            current[2].append(line)
    return out


# --- what each example's target needs, built in the reader's working directory -------------


def _tiny(cwd: Path) -> None:
    """The bundled example and the policies, as a clone has them (once per folder)."""
    for name in ("examples", "policies"):
        if not (cwd / name).exists():
            shutil.copytree(ROOT / name, cwd / name)


def _trainer(cwd: Path) -> None:
    from tests.benign.trainer import WRITERS

    [gpt2] = [w for w in WRITERS if w.name == "trainer-gpt2"]
    gpt2.make(cwd / "gpt2-finetune")


def _forged(cwd: Path) -> None:
    from tests.test_provenance_grades import SHARD, deepseek_files, flip_a_byte, forge_cache

    _tiny(cwd)
    flip_a_byte(forge_cache(cwd / "hub", deepseek_files()), SHARD)


def _recarded(cwd: Path) -> None:
    from tests.test_fingerprint_cli import MISTRAL_BASE, cache, card, r1_distill_qwen_7b

    _tiny(cwd)
    files = r1_distill_qwen_7b() | {"README.md": card(MISTRAL_BASE, "Mistral-7B-Reasoner")}
    cache(cwd / "hub", "mistralai/Mistral-7B-Reasoner", files)


def _store(cwd: Path) -> None:
    import numpy as np

    from tests.test_fingerprint_cli import model_folder
    from tests.test_fingerprint_weights import weights

    _tiny(cwd)
    base = weights(1)
    noise = np.random.default_rng(7).standard_normal(base.shape).astype(np.float32) * 0.004
    model_folder(cwd / "Qwen2.5-7B", base)
    model_folder(cwd / "some-finetune", base + noise, "---\nlicense: apache-2.0\n---\n# Mine\n")


def _attest_keys(cwd: Path) -> None:
    """The CI pipeline's attestation key pair and the store folder the README makes."""
    from tests import pki

    key = pki.ec_key()
    pki.write_private(key, cwd / "attest-key.pem")
    pki.write_public(key, cwd / "attest-pub.pem")
    (cwd / "attestations").mkdir(exist_ok=True)


def _nothing(cwd: Path) -> None:
    """The command needs no input files (it prints what it is given)."""


BUILDERS: dict[str, Callable[[Path], None]] = {
    "examples/tiny-model": _tiny,
    "gpt2-finetune/checkpoint-2": _trainer,
    "hub/models--deepseek-ai--DeepSeek-V3": _forged,
    "hub/models--mistralai--Mistral-7B-Reasoner": _recarded,
    "./Qwen2.5-7B": _store,
    "./some-finetune": _store,
    "attest-key.pem": _attest_keys,
    "attest-pub.pem": _attest_keys,
    "ghcr.io/acme/auditor:1.0": _nothing,
}


def _builder(command: str) -> Callable[[Path], None] | None:
    return next((b for target, b in BUILDERS.items() if f" {target} " in f" {command} "), None)


def _matches(shown: str, actual: str) -> bool:
    shown, actual = shown.rstrip(), actual.rstrip()
    if shown.endswith("..."):
        return actual.startswith(shown[:-3])
    return shown == actual


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """One working directory for the whole README, built as the examples need it (in README
    order: `fingerprint add` must run before the gate that reads its store)."""
    cwd = tmp_path_factory.mktemp("reader")
    built: set[Callable[[Path], None]] = set()
    for _, command, _ in examples():
        build = _builder(command)
        if build is not None and build not in built:
            built.add(build)
            build(cwd)
    return cwd


@pytest.mark.parametrize("line, command, shown", examples(),
                         ids=[f"README:{n}" for n, _, _ in examples()])
def test_the_readme_shows_what_auditor_prints(workdir, line, command, shown):
    assert _builder(command) is not None, (
        f"README.md:{line}: no builder makes the target of `{command}`: add one here")
    ran = subprocess.run([sys.executable, "-m", "auditor", *command.split()[1:]], cwd=workdir,
                         capture_output=True, text=True, timeout=300)
    actual = (ran.stdout + ran.stderr).replace(f"{workdir}/", "").splitlines()
    at = 0
    for want in (s for s in shown if s.strip()):
        while at < len(actual) and not _matches(want, actual[at]):
            at += 1
        assert at < len(actual), (
            f"README.md:{line}: `{command}` does not print (in this order):\n  {want}\n"
            f"it prints:\n" + "\n".join(actual))
        at += 1
