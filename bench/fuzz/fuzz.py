"""Coverage-guided fuzzing of one byte parser with atheris (run by hand, not in CI).

    pip install 'atheris>=3'   # 2.3.0 miscompiles some Python 3.11 code: false segfaults
    python bench/fuzz/fuzz.py pickle /tmp/fuzz/pickle -max_total_time=300
    python bench/fuzz/fuzz.py pickle crash-<sha1>      # replay one input

TARGET is one of `tests.fuzz_seeds.TARGETS` (pickle, safetensors, gguf, zip,
tar, npy, onnx, tflite, savedmodel); the corpus folder is created and seeded
from that table, further flags go to libFuzzer. Each input is scanned
through the engine exactly as a file of that name would be; an exception
escaping a format module becomes an AUD-SCAN-007 finding there, and this
harness turns that finding into a crash, which libFuzzer saves as
`crash-<sha1>` in the working directory. Every crash belongs in a test.
"""

from __future__ import annotations

import hashlib
import io
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from auditor.scanning.engine import scan_stream  # imports every format module too
    from auditor.scanning.options import ScanOptions

from tests.fuzz_seeds import TARGETS  # seeds are not instrumented

INTERNAL_ERROR = "AUD-SCAN-007"


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: fuzz.py {{{','.join(TARGETS)}}} CORPUS_DIR [libFuzzer flags]")
    target = TARGETS[sys.argv[1]]
    corpus = Path(sys.argv[2])
    options = ScanOptions(jobs=1)

    def one_input(data: bytes) -> None:
        result = scan_stream(target.name, io.BytesIO(data), len(data), options)
        for finding in result.findings:
            if finding.rule == INTERNAL_ERROR:
                raise RuntimeError(f"{target.name}: {finding.detail}")

    if corpus.is_file():  # replay one saved input (a crash) without fuzzing
        one_input(corpus.read_bytes())
        return
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in target.seeds():
        (corpus / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
    atheris.Setup([sys.argv[0], *sys.argv[3:], str(corpus)], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
