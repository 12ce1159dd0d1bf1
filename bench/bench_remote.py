"""Remote-only Hub audits: bytes transferred vs repo size, and wall time (run by hand).

Serves generated multi-GB repos from the test Hub server on 127.0.0.1 — the
weights are produced on the fly (headers are real, data areas are zeros), so
nothing multi-GB is stored or even held in memory — and runs
`auditor scan hf://… --remote-only --format json` as a subprocess against it.

    python bench/bench_remote.py            # ~8 GiB of safetensors, 4 GiB PyTorch zip, 4 GiB GGUF
    python bench/bench_remote.py --gib 1    # smaller
    python bench/bench_remote.py --download-gib 2   # also: download + verify a 2 GiB shard
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.hubserver import HubFile, HubRepo, HubServer

GiB = 1024**3
SHA = "b" * 40


@dataclass
class Virtual:
    """A file made of literal byte strings and runs of zeros: (offset, bytes | int)."""

    parts: list[bytes | int]

    @property
    def size(self) -> int:
        return sum(p if isinstance(p, int) else len(p) for p in self.parts)

    def chunk(self, start: int, end: int) -> bytes:
        out = bytearray()
        pos = 0
        for part in self.parts:
            n = part if isinstance(part, int) else len(part)
            lo, hi = max(start, pos), min(end, pos + n)
            if lo < hi:
                out += bytes(hi - lo) if isinstance(part, int) else part[lo - pos : hi - pos]
            pos += n
            if pos >= end:
                break
        return bytes(out)

    def hub_file(self, path: str) -> HubFile:
        # remote-only never verifies range-read files, so a declared digest is enough here
        return HubFile(path, size=self.size, chunk=self.chunk, sha256="0" * 64, lfs=True)


def safetensors_shard(n_tensors: int, total: int) -> Virtual:
    per = total // n_tensors // 4 * 4
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for i in range(n_tensors):
        header[f"model.layers.{i}.weight"] = {
            "dtype": "F32", "shape": [per // 4], "data_offsets": [offset, offset + per]}
        offset += per
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return Virtual([struct.pack("<Q", len(raw)) + raw, offset])


def torch_zip(total: int) -> Virtual:
    """A PyTorch zip checkpoint (real pickle, ZIP64) whose one storage is `total` zero bytes."""
    import torch

    numel = total // 4
    assert numel < 2**31
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(70001)}, buf)
    import zipfile

    with zipfile.ZipFile(buf) as zf:
        names = zf.namelist()
        members = {n: zf.read(n) for n in names}
    pkl_name = next(n for n in names if n.endswith("data.pkl"))
    old, new = b"J" + struct.pack("<i", 70001), b"J" + struct.pack("<i", numel)
    members[pkl_name] = members[pkl_name].replace(old, new)
    storage = next(n for n in names if n.endswith("/data/0"))
    crc = 0
    zero = bytes(8 << 20)
    for _ in range(total // len(zero)):
        crc = zlib.crc32(zero, crc)
    crc = zlib.crc32(bytes(total % len(zero)), crc)
    return _zip([(n, total if n == storage else members[n],
                  crc if n == storage else zlib.crc32(members[n])) for n in names])


def _zip(members: list[tuple[str, bytes | int, int]]) -> Virtual:
    parts: list[bytes | int] = []
    central = bytearray()
    offset = 0
    for name, data, crc in members:
        size = data if isinstance(data, int) else len(data)
        big = size >= 0xFFFFFFFF or offset >= 0xFFFFFFFF
        extra = struct.pack("<HHQQ", 1, 16, size, size) if big else b""
        small = 0xFFFFFFFF if big else size
        local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0x21, crc, small, small,
                            len(name), len(extra)) + name.encode() + extra
        cextra = struct.pack("<HHQQQ", 1, 24, size, size, offset) if big else b""
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0x21, crc,
                               small, small, len(name), len(cextra), 0, 0, 0, 0,
                               0xFFFFFFFF if big else offset) + name.encode() + cextra
        parts += [local, data]
        offset += len(local) + size
    n = len(members)
    eocd64 = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, len(central), offset)
    locator = struct.pack("<IIQI", 0x07064B50, 0, offset + len(central), 1)
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    parts += [bytes(central) + eocd64 + locator + eocd]
    return Virtual(parts)


def gguf_file(total: int, n_tensors: int = 200, vocab: int = 128_000) -> Virtual:
    """A GGUF v3 file with a realistic tokenizer vocabulary and `total` bytes of tensors."""
    import gguf
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "head.gguf"
        writer = gguf.GGUFWriter(str(path), "llama")
        writer.add_name("bench")
        writer.add_tokenizer_model("gpt2")
        writer.add_token_list([f"tok{i}" for i in range(vocab)])
        per = total // n_tensors // 32 * 32
        for i in range(n_tensors):
            writer.add_tensor_info(f"blk.{i}.weight", [per // 4], np.dtype(np.float32), per)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        writer.close()
        head = path.read_bytes()
    pad = -len(head) % 32
    return Virtual([head, pad + per * n_tensors])


def run(target: str, url: str, *mode: str) -> dict:
    env = {**os.environ, "HF_ENDPOINT": url, "HF_HUB_DISABLE_TELEMETRY": "1",
           "HF_HUB_DISABLE_XET": "1"}
    env.pop("HF_HUB_OFFLINE", None)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "auditor", "scan", target, *mode,
                           "--format", "json", "--fail-on", "critical"],
                          capture_output=True, text=True, env=env)
    elapsed = time.monotonic() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{target}: exit {proc.returncode}: {proc.stderr.strip()}")
    report = json.loads(proc.stdout)
    model = report["models"][0]
    return {"transfer": model["facts"]["hub"].get("transfer"), "elapsed": elapsed,
            "matched": all(f["facts"]["upstream"]["match"] for f in model["files"]),
            "formats": {f["path"]: (f["format"], f["coverage"]) for f in model["files"]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=4.0, help="size unit of the repos")
    parser.add_argument("--download-gib", type=float, default=0.0,
                        help="also time download + verify of one shard of this size")
    args = parser.parse_args()
    if args.download_gib:
        download(int(args.download_gib * GiB))
    unit = int(args.gib * GiB)
    shards = [safetensors_shard(300, unit) for _ in range(2)]
    shard_names = [f"model-0000{i}-of-00002.safetensors" for i in (1, 2)]
    index = {"metadata": {"total_size": 2 * unit},
             "weight_map": {f"model.layers.{i}.weight": shard_names[0] for i in range(300)}}
    config = HubFile("config.json", b'{"model_type": "llama"}\n')
    repos = [
        HubRepo("bench/safetensors", {SHA: [
            *(s.hub_file(n) for s, n in zip(shards, shard_names, strict=True)),
            HubFile("model.safetensors.index.json", json.dumps(index).encode()), config]},
            refs={"main": SHA}),
        HubRepo("bench/pytorch", {SHA: [torch_zip(unit).hub_file("pytorch_model.bin"), config]},
                refs={"main": SHA}),
        HubRepo("bench/gguf", {SHA: [gguf_file(unit).hub_file("model.gguf")]},
                refs={"main": SHA}),
    ]
    with HubServer(repos) as hub:
        print("| repo | repo size | bytes transferred | ratio | wall time | formats |")
        print("|---|---|---|---|---|---|")
        for repo in repos:
            before = hub.content_bytes
            got = run(f"hf://{repo.repo_id}@{SHA}", hub.url, "--remote-only")
            sent = hub.content_bytes - before
            t = got["transfer"]
            assert t["bytes"] == sent, (t, sent)
            formats = ", ".join(sorted({f"{fmt} ({cov})" for fmt, cov in
                                        got["formats"].values()}))
            print(f"| {repo.repo_id} | {t['repo_bytes'] / GiB:.2f} GiB | {sent:,} B | "
                  f"{t['ratio']:.5%} | {got['elapsed']:.2f} s | {formats} |")


def download(size: int) -> None:
    """Download + verify one safetensors shard; then verify again from the cache (no transfer),
    against hashing the cached blob with hashlib alone."""
    import hashlib

    shard = safetensors_shard(300, size)
    digest = hashlib.sha256()
    for pos in range(0, shard.size, 8 << 20):
        digest.update(shard.chunk(pos, min(pos + (8 << 20), shard.size)))
    hub_file = HubFile("model.safetensors", size=shard.size, chunk=shard.chunk,
                       sha256=digest.hexdigest(), lfs=True)
    with HubServer([HubRepo("bench/download", {SHA: [hub_file]}, refs={"main": SHA})]) as hub, \
            tempfile.TemporaryDirectory() as cache:
        first = run(f"hf://bench/download@{SHA}", hub.url, "--cache-dir", cache)
        again = run(f"hf://bench/download@{SHA}", hub.url, "--cache-dir", cache)
        blob = next(Path(cache).glob("models--bench--download/blobs/*"))
        started = time.monotonic()
        h = hashlib.sha256()
        with open(blob, "rb") as f:
            while chunk := f.read(8 << 20):
                h.update(chunk)
        hash_s = time.monotonic() - started
    print(f"{shard.size / GiB:.2f} GiB shard: download + verify {first['elapsed']:.2f} s; "
          f"verify from the cache {again['elapsed']:.2f} s (matched: {again['matched']}); "
          f"hashlib sha256 of the blob alone {hash_s:.2f} s\n")


if __name__ == "__main__":
    main()
