"""Measured lineage at real shapes: precision/recall, time per model, bytes read (run by hand).

The evaluation set of tests/test_fingerprint_eval.py (tests/fingerprint_models.py:
fine-tunes, dtype copies, GGUF Q8_0/Q4_K, FP8 block scales, re-carded copies,
distills, unrelated twins) at the shapes of real checkpoints: H 2048-7168, V up
to 152,064. Files have their full size, but only the sampled embedding rows
(8 runs of 32 ids) hold weights: everything else is a sparse hole of zeros, so
a 2 GB embedding costs a few MB of disk. The scan still hashes every byte, so
times are those of a real file of that size (from the page cache).

Reports, per model: `auditor fingerprint show DIR --fingerprints STORE --format
json` wall time (in-process) and the bytes it read from disk (`rchar` of
/proc/self/io); the same for every variant of one base served remote-only
through the test Hub (`hf://...`, the bytes the server sent); and a 100 GB
safetensors checkpoint (a [129280, 7168] BF16 embedding among 100 GB of
tensors, generated on the fly) fingerprinted remote-only.

    python bench/bench_fingerprint.py            # all five bases (~3 GB of sparse files)
    python bench/bench_fingerprint.py --bases 2  # the first two
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import struct
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from auditor.cli import main
from auditor.fingerprint.measure import SAME_BASE
from auditor.formats._lib.rowplan import RUN, RUN_STARTS
from tests import fingerprint_models as fm
from tests.hubserver import HubFile, HubRepo, HubServer

MiB = 1024**2
SHA = "f" * 40
BASES = (
    fm.Base("qwenish/qw-base", 152064, 3584, "bpe", seed=21, token_seed=21),
    fm.Base("dsish/ds-base", 129280, 7168, "bpe", seed=22, token_seed=22),
    fm.Base("llamish/ll-base", 128256, 4096, "tiktoken", seed=23, token_seed=23),
    fm.Base("mistralish/mi-base", 32768, 4096, "spm", seed=24, token_seed=24),
    fm.Base("gemmish/ge-base", 65536, 2048, "gguf", seed=25, token_seed=25),
)


@dataclass(frozen=True)
class Sparse:
    """An embedding of `vocab` rows of which only the sampled runs hold weights."""

    vocab: int
    hidden: int
    runs: dict[int, np.ndarray]  # first id -> float32 [RUN, hidden]

    @classmethod
    def random(cls, seed: int, vocab: int, hidden: int) -> Sparse:
        return cls(vocab, hidden, {s: fm.embedding(seed * 1000 + s, RUN, hidden)
                                   for s in RUN_STARTS if s + RUN <= vocab})

    def tune(self, noise: float, seed: int, added: int = 0) -> Sparse:
        return Sparse(self.vocab + added, self.hidden,
                      {s: fm.tune(r, noise, seed * 1000 + s) for s, r in self.runs.items()})


# -- sparse writers: real headers, the sampled rows at their offsets, holes elsewhere -------------

def write_safetensors(path: Path, emb: Sparse, dtype: str) -> None:
    import ml_dtypes

    width = {"BF16": 2, "F16": 2, "F8_E4M3": 1}[dtype]
    header: dict = {"__metadata__": {"format": "pt"}}
    size = emb.vocab * emb.hidden * width
    header[fm.EMBED] = {"dtype": dtype, "shape": [emb.vocab, emb.hidden],
                        "data_offsets": [0, size]}
    grid = (-(-emb.vocab // 128), -(-emb.hidden // 128))
    scales = np.zeros(grid, np.float32)
    if dtype == "F8_E4M3":
        header[fm.EMBED + "_scale_inv"] = {"dtype": "F32", "shape": list(grid),
                                           "data_offsets": [size, size + scales.nbytes]}
    end = size + (scales.nbytes if dtype == "F8_E4M3" else 0)
    header["model.norm.weight"] = {"dtype": "F32", "shape": [emb.hidden],
                                   "data_offsets": [end, end + 4 * emb.hidden]}
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    start = 8 + len(raw)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(raw)) + raw)
        for first, rows in emb.runs.items():
            if dtype == "F8_E4M3":  # a run starts a 128-row block: its own scales
                data, scale_inv = fm.fp8_with_block_scales(rows)
                scales[first // 128] = scale_inv[0]
            else:
                data = rows.astype(np.float16 if dtype == "F16" else ml_dtypes.bfloat16)
            out.seek(start + first * emb.hidden * width)
            out.write(data.tobytes())
        if dtype == "F8_E4M3":
            out.seek(start + size)
            out.write(scales.tobytes())
        out.seek(start + end)
        out.write(np.ones(emb.hidden, np.float32).tobytes())


def write_gguf(path: Path, base: fm.Base, emb: Sparse, qtype: str, tokens: list[bytes],
               name: str) -> None:
    import gguf

    kind = gguf.GGMLQuantizationType[qtype]
    block, block_bytes = gguf.GGML_QUANT_SIZES[kind]
    row_bytes = emb.hidden // block * block_bytes
    writer = gguf.GGUFWriter(str(path), "llama")
    fm.hparams(writer, base, emb.vocab, name)
    model, strings = fm.gguf_tokens(base.tokenizer, tokens, fm.SPECIALS)
    writer.add_tokenizer_model(model)
    writer.add_token_list(strings)
    shape, dtype = (([emb.vocab, emb.hidden], np.dtype(np.float16)) if qtype == "F16"
                    else ([emb.vocab, row_bytes], np.dtype(np.uint8)))
    writer.add_tensor_info("token_embd.weight", shape, dtype, emb.vocab * row_bytes,
                           raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    out = writer.fout[0]
    writer.write_padding(out, out.tell())
    start = out.tell()
    for first, rows in emb.runs.items():
        if qtype == "Q4_K":
            data = fm.quantize_q4_k(rows)
        elif qtype == "F16":
            data = rows.astype(np.float16)
        else:
            data = gguf.quants.quantize(rows, kind)
        out.seek(start + first * row_bytes)
        out.write(data.tobytes())
    out.truncate(start + emb.vocab * row_bytes)
    writer.close()


def model_folder(folder: Path, base: fm.Base, emb: Sparse, tokens: list[bytes], *, name: str,
                 fmt: str, claims: str | None = None,
                 specials: tuple[str, ...] = fm.SPECIALS) -> Path:
    folder.mkdir(parents=True)
    if fmt in ("F16", "Q8_0", "Q4_K") and (fmt != "F16" or base.tokenizer == "gguf"):
        write_gguf(folder / "model.gguf", base, emb, fmt, tokens, name)
    else:
        write_safetensors(folder / "model.safetensors", emb, fmt)
        (folder / "config.json").write_text(json.dumps(fm.config(base, emb.vocab, name=name)))
        fm.write_tokenizer(folder, "bpe" if base.tokenizer == "gguf" else base.tokenizer,
                           tokens, specials)
    (folder / "README.md").write_text(fm.card(name, claims))
    return folder


def generate(root: Path, bases: tuple[fm.Base, ...]) -> tuple[dict[str, Path], list[fm.Case]]:
    folders: dict[str, Path] = {}
    cases: list[fm.Case] = []
    for i, base in enumerate(bases):
        other = bases[(i + 1) % len(bases)]
        emb, tokens, short = (Sparse.random(base.seed, base.vocab, base.hidden),
                              fm.vocabulary(base), base.name.split("/")[1])
        folders[base.name] = model_folder(
            root / "bases" / base.name.replace("/", "--"), base, emb, tokens, name=base.name,
            fmt="F16" if base.tokenizer == "gguf" else "BF16")
        plan = {  # kind -> (embedding, format, claims, name, specials, tokens, truth)
            "fine-tune": (emb.tune(0.05, 1), "BF16", base.name),
            "fine-tune-tokens": (emb.tune(0.2, 2, len(fm.NEW_TOKENS)), "BF16", base.name),
            "bf16": (emb, "BF16", base.name),
            "f16": (emb, "F16", base.name),
            "gguf-q8_0": (emb, "Q8_0", base.name),
            "gguf-q4_k": (emb, "Q4_K", base.name),
            "fine-tune-q4_k": (emb.tune(0.1, 3), "Q4_K", None),
            "fp8-e4m3": (emb, "F8_E4M3", base.name),
            "renamed": (emb, "BF16", other.name),
            "distill": (emb.tune(0.15, 4), "BF16", other.name),
            "unrelated": (Sparse.random(base.seed * 100 + 5, base.vocab, base.hidden), "BF16",
                          None),
        }
        for kind, (e, fmt, claims) in plan.items():
            name = (f"{other.name.split('/')[0]}/{short}-renamed" if kind == "renamed"
                    else f"community/{short}-{kind}")
            toks = tokens + fm.NEW_TOKENS if kind == "fine-tune-tokens" else tokens
            specials = fm.DISTILL_SPECIALS if kind == "distill" else fm.SPECIALS
            if fmt == "F16" and base.tokenizer == "gguf":
                fmt = "BF16"  # the GGUF-native base is the F16 GGUF: its copy is safetensors
            folder = model_folder(root / "variants" / name.replace("/", "--"), base, e, toks,
                                  name=name, fmt=fmt, claims=claims, specials=specials)
            cases.append(fm.Case(name, folder, kind, None if kind == "unrelated" else base.name))
    return folders, cases


# -- running auditor -------------------------------------------------------------------------

def rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def run(*args: object) -> tuple[str, float, int]:
    """auditor in-process: (stdout, wall seconds, bytes read by read syscalls)."""
    out = io.StringIO()
    before, t0 = rchar(), time.perf_counter()
    with contextlib.redirect_stdout(out):
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise RuntimeError(f"auditor {args} exited {exc.code}") from None
    return out.getvalue(), time.perf_counter() - t0, rchar() - before


def same_base(out: str) -> dict[str, float]:
    (model,) = json.loads(out)["models"]
    return {e["name"]: e["score"] for e in model["measured"] if e["relation"] == "same-base"}


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def hub_files(folder: Path) -> list[HubFile]:
    """A model folder as Hub files: small ones in memory, weights read from disk by range."""
    out = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        if path.suffix in (".safetensors", ".gguf"):
            fd = os.open(path, os.O_RDONLY)
            out.append(HubFile(path.name, size=path.stat().st_size, lfs=True, sha256="0" * 64,
                               chunk=lambda s, e, fd=fd: os.pread(fd, e - s, s)))
        else:
            out.append(HubFile(path.name, path.read_bytes()))
    return out


def hundred_gb() -> list[HubFile]:
    """A 100 GB safetensors shard generated on the fly: a [129280, 7168] BF16 embedding with
    random sampled rows, then 100 GB of layer tensors (zeros); config.json beside it."""
    import ml_dtypes

    vocab, hidden = 129280, 7168
    emb = Sparse.random(7, vocab, hidden)
    header: dict = {"__metadata__": {"format": "pt"}}
    size = vocab * hidden * 2
    header[fm.EMBED] = {"dtype": "BF16", "shape": [vocab, hidden], "data_offsets": [0, size]}
    offset, layer = size, 0
    per = hidden * 18432 * 2
    while offset + per <= 100 * 10**9:
        name = f"model.layers.{layer // 3}.mlp.{('gate', 'up', 'down')[layer % 3]}_proj.weight"
        header[name] = {"dtype": "BF16", "shape": [18432, hidden],
                        "data_offsets": [offset, offset + per]}
        offset, layer = offset + per, layer + 1
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    head = struct.pack("<Q", len(raw)) + raw
    parts = [(len(head) + first * hidden * 2,
              rows.astype(ml_dtypes.bfloat16).tobytes()) for first, rows in emb.runs.items()]
    total = len(head) + offset

    def chunk(start: int, end: int) -> bytes:
        out = bytearray(end - start)
        for at, data in [(0, head), *parts]:
            lo, hi = max(start, at), min(end, at + len(data))
            if lo < hi:
                out[lo - start:hi - start] = data[lo - at:hi - at]
        return bytes(out)

    config = fm.config(fm.Base("x/y", vocab, hidden, "bpe", 0, 0), vocab, name="big/model")
    return [HubFile("model-00001-of-00001.safetensors", size=total, chunk=chunk, lfs=True,
                    sha256="0" * 64), HubFile("config.json", json.dumps(config).encode())]


def remote(hub: HubServer, repo: str, store: Path, cache: Path) -> tuple[dict[str, float],
                                                                         float, int]:
    before = hub.content_bytes
    out, wall, _ = run("fingerprint", "show", f"hf://{repo}@{SHA}", "--fingerprints", store,
                       "--format", "json", "--remote-only", "--endpoint", hub.url,
                       "--cache-dir", cache)
    return same_base(out), wall, hub.content_bytes - before


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", type=int, default=len(BASES))
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    for key in ("HF_HUB_OFFLINE",):
        os.environ.pop(key, None)
    os.environ.update(HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_XET="1")
    root = Path(tempfile.mkdtemp(prefix="bench-fp-"))
    try:
        bench(root, BASES[:args.bases])
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def bench(root: Path, bases: tuple[fm.Base, ...]) -> None:
    t0 = time.perf_counter()
    folders, cases = generate(root, bases)
    print(f"generated {len(folders)} bases, {len(cases)} variants in "
          f"{time.perf_counter() - t0:.0f} s under {root}")
    store = root / "store"
    for name, folder in folders.items():
        run("fingerprint", "add", folder, "--store", store, "--name", name)
    predicted, rows = {}, []
    for case in cases:
        out, wall, read = run("fingerprint", "show", case.folder, "--name", case.name,
                              "--fingerprints", store, "--format", "json")
        same = same_base(out)
        predicted[case.name] = set(same)
        rows.append((case, same, wall, read, folder_bytes(case.folder)))
    counts = fm.confusion(cases, list(folders), predicted)
    precision, recall = fm.precision_recall(counts)
    print("\n| variant | truth | measured same base (score) | show s | read MB | size MB |")
    print("|---|---|---|---|---|---|")
    for case, same, wall, read, size in rows:
        said = ", ".join(f"{n} {s:.3f}" for n, s in same.items()) or "-"
        print(f"| {case.name} | {case.truth or '-'} | {said} | {wall:.2f} | {read / MiB:,.0f} "
              f"| {size / MiB:,.0f} |")
    related = [s[c.truth] for c, s, *_ in rows if c.truth in s]
    print(f"\nsame base at >= {SAME_BASE}: tp {counts['tp']} fp {counts['fp']} fn {counts['fn']} "
          f"tn {counts['tn']}; precision {precision:.3f}, recall {recall:.3f}; "
          f"lowest true score {min(related):.3f}")
    walls = sorted(w for _, _, w, _, _ in rows)
    print(f"fingerprint show per model: median {walls[len(walls) // 2]:.2f} s, "
          f"max {walls[-1]:.2f} s")

    # remote-only: every variant of the first base, served by the test Hub from these files
    first = [c for c in cases if c.truth == bases[0].name or (
        c.kind == "unrelated" and c.name.startswith(f"community/{bases[0].name.split('/')[1]}"))]
    repos = [HubRepo(c.name, {SHA: hub_files(c.folder)}, refs={"main": SHA}) for c in first]
    repos.append(HubRepo("big/model-100gb", {SHA: hundred_gb()}, refs={"main": SHA}))
    with HubServer(repos) as hub:
        print("\n| remote-only | repo size | bytes sent | show s | measured same base |")
        print("|---|---|---|---|---|")
        for repo in repos:
            same, wall, sent = remote(hub, repo.repo_id, store, root / "cache")
            size = sum(f.size for f in repo.commits[SHA])
            said = ", ".join(f"{n} {s:.3f}" for n, s in same.items()) or "-"
            print(f"| {repo.repo_id} | {size / MiB:,.0f} MiB | {sent / MiB:.2f} MiB | "
                  f"{wall:.2f} | {said} |")


if __name__ == "__main__":
    main_()

