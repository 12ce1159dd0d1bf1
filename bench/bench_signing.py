"""Sign and verify a multi-GB model folder with auditor and with model_signing; compare wall time.

Run by hand (not a test): `python bench/bench_signing.py [--gib 4] [--dir /tmp/x]`.
Needs the `interop` extra (model_signing). Each command runs twice and the second
(warm page cache) time is reported for both tools.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

CHUNK = 64 << 20


def make_folder(root: Path, gib: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    block = bytes(range(256)) * (CHUNK // 256)
    for i in range(gib):
        with open(root / f"model-{i:05d}-of-{gib:05d}.safetensors", "wb") as f:
            for j in range(1024 // 64):
                f.write(block[: CHUNK - 1] + bytes([(i * 31 + j) % 256]))
    (root / "config.json").write_text('{"model_type": "llama"}')


def timed(cmd: list[str]) -> float:
    best = None
    for _ in range(2):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        best = time.perf_counter() - start
    return best  # the second (warm) run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=int, default=4)
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-sign-"))
    model = work / "model"
    try:
        make_folder(model, args.gib)
        key = ec.generate_private_key(ec.SECP256R1())
        (work / "key.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        (work / "pub.pem").write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        py = sys.executable
        k, p = str(work / "key.pem"), str(work / "pub.pem")
        a_sig, m_sig = str(work / "a.sig"), str(work / "m.sig")
        rows = [
            ("sign", timed([py, "-m", "auditor", "sign", str(model), "--key", k, "-o", a_sig]),
             timed([py, "-m", "model_signing", "sign", "key", str(model), "--private_key", k,
                    "--signature", m_sig])),
            ("verify", timed([py, "-m", "auditor", "verify", str(model), "--key", p,
                              "--signature", a_sig]),
             timed([py, "-m", "model_signing", "verify", "key", str(model), "--signature",
                    m_sig, "--public_key", p])),
        ]
        print(f"folder: {args.gib} x 1 GiB + config.json")
        print("| step | auditor (s) | model_signing (s) | ratio |")
        print("|---|---|---|---|")
        for step, ours, theirs in rows:
            print(f"| {step} | {ours:.2f} | {theirs:.2f} | {ours / theirs:.2f} |")
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
