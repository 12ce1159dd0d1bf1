"""Models whose reference SBOMs live in `sboms/`, and the command that regenerates them.

`python -m tests.sbom_models` rewrites every golden file (run it after a
deliberate change to the SBOM, then review the diff); `test_sbom_golden.py`
regenerates them in a temporary folder and compares byte for byte.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from tests.builders import safetensors_bytes, write_tiny_model

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "tiny-model"
GOLDEN = ROOT / "sboms"

MERGED_CARD = """---
license: llama3.1
base_model:
- example-org/tiny-base
- other-org/tiny-chat
base_model_relation: merge
pipeline_tag: text-generation
library_name: transformers
language:
- en
- fr
datasets:
- example-org/tiny-corpus
- other-org/tiny-instructions
---

# merged-model

A merge of two tiny bases, used to test lineage in SBOMs.

## Intended uses

Testing SBOM generation only.

## Limitations

Its weights are a counting pattern; it generates nothing meaningful.

## Bias, risks, and limitations

None beyond being useless.
"""


def write_example(folder: Path) -> Path:
    """The bundled example, copied so the model name (the folder name) stays `tiny-model`."""
    shutil.copytree(EXAMPLE, folder)
    return folder


def write_with_findings(folder: Path) -> Path:
    """The tiny model plus a safetensors file with trailing bytes and an unknown binary."""
    write_tiny_model(folder)
    (folder / "extra.safetensors").write_bytes(
        safetensors_bytes({"w": ("F32", [2, 2])}, trailing=b"\x00" * 8)
    )
    (folder / "blob.bin").write_bytes(bytes(range(256)) * 4)
    return folder


def write_merged(folder: Path) -> Path:
    """A merge of two bases with datasets and card considerations."""
    write_tiny_model(folder)
    (folder / "README.md").write_text(MERGED_CARD)
    return folder


# golden file stem -> (model folder name, builder, extra CLI arguments, extension)
GOLDEN_MODELS: dict[str, tuple[str, Callable[[Path], Path], tuple[str, ...], str]] = {
    "tiny-model": ("tiny-model", write_example, (), "json"),
    "tiny-model-xml": ("tiny-model", write_example, ("--output-format", "xml"), "xml"),
    "tiny-model-sha512-spec1.5": ("tiny-model", write_example,
                                  ("--hash", "sha512", "--spec", "1.5"), "json"),
    "with-findings": ("with-findings", write_with_findings, (), "json"),
    "merged-model": ("merged-model", write_merged, (), "json"),
}


def golden_name(stem: str) -> str:
    return f"{stem}.cdx.{GOLDEN_MODELS[stem][3]}"


def generate(stem: str, workdir: Path, out: Path) -> None:
    """Build the model under `workdir` and write its reproducible SBOM to `out`."""
    from auditor.cli import main

    folder_name, build, extra, _ = GOLDEN_MODELS[stem]
    folder = build(workdir / stem / folder_name)
    try:
        main(["scan", str(folder), "--format", "json", "-o", str(workdir / f"{stem}.report.json"),
              "--sbom", str(out), "--reproducible", *extra])
    except SystemExit as exc:
        if exc.code not in (0, 1):
            raise


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for name in GOLDEN_MODELS:
            generate(name, Path(tmp), GOLDEN / golden_name(name))
            print(f"wrote {GOLDEN / golden_name(name)}", file=sys.stderr)
