"""GGUF scan throughput vs `openssl dgst -sha256` (run by hand, not a test).

Writes one multi-GiB GGUF file in chunks (memory stays flat): a realistic
header (128k-token vocabulary with scores and token types, a chat template,
general.* metadata) and F32 tensors of 256 MiB each filling the data area.
Then times `openssl dgst -sha256 file` against `auditor scan file` with the
helpers of bench_scan.py (warm page cache, alternating rounds, best of
`--runs`, CPU time, peak RSS, digests cross-checked) and deletes the file
unless `--keep`.

    python bench/bench_gguf.py              # 4 GiB
    python bench/bench_gguf.py --gib 1 --runs 1
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

from bench_scan import CHUNK, GIB, auditor_cmd, best_of, check_digests

TARGET = 1.15
TENSOR_BYTES = 256 << 20
VOCAB = 128_000
TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] | trim }}<|end|>"
            "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")


def _str(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def _kv_str(key: str, value: str) -> bytes:
    return _str(key) + struct.pack("<I", 8) + _str(value)


def header(tensor_count: int) -> bytes:
    kvs = [
        _kv_str("general.architecture", "llama"),
        _kv_str("general.name", "bench"),
        _str("general.file_type") + struct.pack("<II", 4, 0),
        _kv_str("tokenizer.chat_template", TEMPLATE),
        _str("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, VOCAB)
        + b"".join(_str(f"tok{i}") for i in range(VOCAB)),
        _str("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, VOCAB) + bytes(4 * VOCAB),
        _str("tokenizer.ggml.token_type") + struct.pack("<IIQ", 9, 5, VOCAB)
        + struct.pack("<i", 1) * VOCAB,
    ]
    infos = [
        _str(f"blk.{i}.weight") + struct.pack("<IQQIQ", 2, 4096, TENSOR_BYTES // 4 // 4096, 0,
                                              i * TENSOR_BYTES)
        for i in range(tensor_count)
    ]
    head = b"GGUF" + struct.pack("<IQQ", 3, tensor_count, len(kvs)) + b"".join(kvs)
    head += b"".join(infos)
    return head + bytes(-len(head) % 32)


def write_gguf(path: Path, gib: float) -> None:
    tensors = max(1, int(gib * GIB) // TENSOR_BYTES)
    block = bytes(range(256)) * (CHUNK // 256)
    with open(path, "wb") as f:
        f.write(header(tensors))
        left, i = tensors * TENSOR_BYTES, 0
        while left:
            n = min(left, CHUNK)
            f.write((i.to_bytes(8, "little") + block[8:])[:n])
            left -= n
            i += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="where to write the file [a temp dir]")
    parser.add_argument("--gib", type=float, default=4.0)
    parser.add_argument("--runs", type=int, default=2, help="timed runs after the warm-up")
    parser.add_argument("--keep", action="store_true", help="keep the generated file")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="auditor-bench-gguf-", dir=args.dir))
    try:
        big = base / "model.gguf"
        started = time.perf_counter()
        write_gguf(big, args.gib)
        size = big.stat().st_size
        print(f"generated {size / GIB:.2f} GiB in {time.perf_counter() - started:.1f} s",
              file=sys.stderr)
        ossl, aud = best_of([["openssl", "dgst", "-sha256", str(big)], auditor_cmd(big, None)],
                            args.runs)
        check_digests(aud.out, ossl.out)
    finally:
        if args.keep:
            print(f"kept {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)
    ratio = aud.wall / ossl.wall
    print(f"machine: {os.cpu_count()} CPUs; load average at the end {os.getloadavg()[0]:.1f}; "
          f"best of {args.runs} alternating warm runs")
    print()
    print("| case | openssl wall s (cpu) | auditor wall s (cpu) | ratio | target "
          "| auditor peak RSS MB |")
    print("|---|---|---|---|---|---|")
    print(f"| {size / GIB:.2f} GiB GGUF ({VOCAB} tokens) | {ossl.wall:.2f} ({ossl.cpu:.2f}) "
          f"| {aud.wall:.2f} ({aud.cpu:.2f}) | {ratio:.2f} "
          f"| <= {TARGET} ({'ok' if ratio <= TARGET else 'MISSED'}) | {aud.rss_mb:.0f} |")


if __name__ == "__main__":
    main()
