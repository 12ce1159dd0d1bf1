"""The lazy registry claims exactly what the eager sniff order claims.

Each `Entry.maybe` must be true for every head its spec's `sniff` claims, or a
file of that format would slip to a later spec (or to "unknown") whenever its
module was not yet imported. Checked on every fuzz seed, the test data, heads
written by hand for the formats without a seed, and damaged copies of them all.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import pickle
import random
import tarfile
import zlib
from pathlib import Path

import msgpack

from auditor.formats.contract import HEAD_BYTES
from auditor.formats.registry import ENTRIES, SPECS, claim
from tests.builders import damaged
from tests.fuzz_seeds import TARGETS
from tests.test_tokenizer_files import sentencepiece_model

DATA = Path(__file__).parent / "data"
NAMES = ("model.bin", "saved_model.pb", "model.keras", "README.md", "setup.yaml", "x.py",
         "t.jinja", "graph.pbtxt", "config.json")


def _tar_gz() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        info = tarfile.TarInfo("data.pkl")
        payload = pickle.dumps([1, 2])
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return out.getvalue()


def _by_hand() -> list[bytes]:
    text = b'{"model_type": "llama"}\n'
    return [
        text, b"---\nlicense: mit\n---\n# card\n", b"a: 1\nb: [2]\n", b"import os\n",
        b"{{ messages }}", b"node { name: 'x' op: 'Const' }\n",
        b"IQ== 0\nIg== 1\nIw== 2\n",  # tiktoken ranks
        msgpack.packb({"params": {"w": b"\x00" * 8}}),
        msgpack.packb({f"k{i}": i for i in range(20)}),  # map16
        sentencepiece_model(),
        b"\x00" * 512 + b"\x89HDF\r\n\x1a\n" + b"\x00" * 64,  # HDF5 after a user block
        gzip.compress(text), bz2.compress(text), lzma.compress(text), zlib.compress(text),
        lzma.compress(text, format=lzma.FORMAT_ALONE), _tar_gz(),
        pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2),  # the legacy torch magic number
        b"\x80", b"", b"\x00\x00",
    ]


def _heads() -> list[bytes]:
    bases = [seed for target in TARGETS.values() for seed in target.seeds()]
    bases += [p.read_bytes() for p in sorted(DATA.rglob("*")) if p.suffix in (".h5", ".keras",
                                                                                ".jinja")]
    bases += _by_hand()
    rng = random.Random(18)
    heads = [b[:HEAD_BYTES] for b in bases]
    heads += [d[:HEAD_BYTES] for b in bases if b for d in damaged(b[:4096], rng, 20, 3)]
    return heads


def test_each_entry_names_its_specs_id_in_the_eager_order():
    assert [entry.id for entry in ENTRIES] == [spec.id for spec in SPECS]


def test_maybe_holds_for_every_head_its_spec_claims_and_the_lazy_claim_is_the_eager_one():
    pairs = [(entry, entry.load()) for entry in ENTRIES]
    claimed = set()
    for head in _heads():
        for name in NAMES:
            eager = next((spec for _, spec in pairs if spec.sniff(head, name)), None)
            for entry, spec in pairs:
                if entry.maybe is not None and spec.sniff(head, name):
                    assert entry.maybe(head, name), (entry.id, name, head[:32])
            assert claim(head, name) is eager, (name, head[:32])
            claimed.add(eager.id if eager else None)
    unclaimed = {entry.id for entry in ENTRIES} - claimed
    assert not unclaimed, f"no head in the corpus is claimed by {sorted(unclaimed)}"
