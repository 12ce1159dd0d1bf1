"""Weight fingerprint: sampled embedding rows survive dtype, quantisation and fine-tuning.

Every checkpoint here is a real file written by the `safetensors` and `gguf`
packages from random numpy weights; the sample is taken by the scan itself
(one read pass, or a few range requests in a remote-only audit).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from auditor import pipeline
from auditor.fingerprint.weights import WeightPrint, similarity
from auditor.formats._lib import sampling
from auditor.scanning.options import ScanOptions
from tests.hubfixtures import files_by_path, serve  # noqa: F401
from tests.hubserver import HubFile, HubRepo

gguf = pytest.importorskip("gguf")
ml_dtypes = pytest.importorskip("ml_dtypes")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

V, H = 32768, 256
EMBED = "model.embed_tokens.weight"
SHA = "5" * 40


def weights(seed: int, vocab: int = V, hidden: int = H) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((vocab, hidden)) * 0.02).astype(np.float32)


BASE = weights(1)


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> Path:
    safetensors_numpy.save_file(tensors, str(path), metadata={"format": "pt"})
    return path


def write_gguf(path: Path, embedding: np.ndarray, qtype) -> Path:
    """A GGUF with `token_embd.weight` quantised as `qtype` (Q4_K blocks built here: the gguf
    package dequantises Q4_K but does not quantise it), and a small F32 tensor after it."""
    writer = gguf.GGUFWriter(str(path), "llama")
    if qtype == gguf.GGMLQuantizationType.Q4_K:
        data = quantize_q4_k(embedding)
    elif qtype == gguf.GGMLQuantizationType.F32:
        data = embedding
    else:
        data = gguf.quants.quantize(embedding, qtype)
    writer.add_tensor("token_embd.weight", data, raw_dtype=qtype)
    writer.add_tensor("output_norm.weight", np.ones(embedding.shape[1], np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def quantize_q4_k(x: np.ndarray) -> np.ndarray:
    """A plain Q4_K quantiser: per 32-value sub-block an affine 4-bit grid, its scale and min
    stored as 6-bit multiples of the block's f16 `d` and `dmin`, packed as ggml packs them."""
    rows = x.shape[0]
    blocks = x.reshape(-1, 8, 32).astype(np.float32)
    lo = np.minimum(blocks.min(axis=2), 0)
    step = (blocks.max(axis=2) - lo) / 15
    d = (step.max(axis=1) / 63).astype(np.float16)
    dmin = (-lo.min(axis=1) / 63).astype(np.float16)
    d32, dmin32 = d.astype(np.float32)[:, None], dmin.astype(np.float32)[:, None]
    sc = np.clip(np.round(step / np.where(d32 > 0, d32, 1)), 1, 63).astype(np.uint8)
    mn = np.clip(np.round(-lo / np.where(dmin32 > 0, dmin32, 1)), 0, 63).astype(np.uint8)
    scale = (d32 * sc)[:, :, None]
    q = np.clip(np.round((blocks + (dmin32 * mn)[:, :, None]) / scale), 0, 15).astype(np.uint8)
    packed = np.empty((blocks.shape[0], 12), np.uint8)
    packed[:, 0:4] = (sc[:, :4] & 63) | ((sc[:, 4:] >> 4) << 6)
    packed[:, 4:8] = (mn[:, :4] & 63) | ((mn[:, 4:] >> 4) << 6)
    packed[:, 8:12] = (sc[:, 4:] & 15) | ((mn[:, 4:] & 15) << 4)
    qs = q.reshape(-1, 4, 2, 32)
    nibbles = (qs[:, :, 0] | (qs[:, :, 1] << 4)).reshape(-1, 128)
    out = np.concatenate([d.view(np.uint8).reshape(-1, 2), dmin.view(np.uint8).reshape(-1, 2),
                          packed, nibbles], axis=1)
    return out.reshape(rows, -1)


def fp8_with_block_scales(w: np.ndarray, block: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """DeepSeek-style FP8: e4m3 values and a float32 `scale_inv` per 128x128 block
    (value = fp8 * scale_inv), the last blocks partial."""
    rows, cols = w.shape
    grid = (-(-rows // block), -(-cols // block))
    scale_inv = np.empty(grid, np.float32)
    q = np.empty(w.shape, ml_dtypes.float8_e4m3fn)
    for i in range(grid[0]):
        for j in range(grid[1]):
            part = w[i * block:(i + 1) * block, j * block:(j + 1) * block]
            s = np.abs(part).max() / 448.0
            scale_inv[i, j] = s
            q[i * block:(i + 1) * block, j * block:(j + 1) * block] = (part / s).astype(q.dtype)
    return q, scale_inv


def scanned(path: Path) -> tuple[dict, int]:
    result = pipeline.scan(path, ScanOptions(jobs=1))
    (report,) = [f for m in result.models for f in m.files if f.path.endswith(path.name)]
    assert report.coverage == "scanned", report.findings
    return report.facts, result.bytes_read


def print_of(path: Path) -> WeightPrint:
    facts, _ = scanned(path)
    found = WeightPrint.from_facts(facts)
    assert found is not None, sorted(facts)
    return found


def sim(a: WeightPrint, b: WeightPrint) -> float:
    value = similarity(a, b)
    assert value is not None
    return value


@pytest.fixture(scope="module")
def base_print(tmp_path_factory) -> WeightPrint:
    path = tmp_path_factory.mktemp("base") / "model.safetensors"
    return print_of(write_safetensors(path, {EMBED: BASE}))


# -- the sample --------------------------------------------------------------------------------

def test_sample_has_the_fixed_ids_and_a_small_sketch(tmp_path, base_print):
    facts, _ = scanned(write_safetensors(tmp_path / "model.safetensors", {EMBED: BASE}))
    sample = facts["embedding_sample"]
    assert (sample["tensor"], sample["vocab"], sample["hidden"], sample["dtype"]) == (
        EMBED, V, H, "F32")
    assert sample["ids"][:2] == [1024, 1025] and sample["ids"][-1] == 15391
    assert len(sample["ids"]) == 256 and len(json.dumps(sample)) < 64 * 1024
    assert base_print.sketch.shape == (256, 64)


def test_short_vocabulary_samples_only_the_ids_it_has(tmp_path):
    path = write_safetensors(tmp_path / "model.safetensors", {EMBED: weights(3, vocab=4000)})
    print_ = print_of(path)
    assert print_.ids == tuple(range(1024, 1056)) + tuple(range(3072, 3104))


def test_the_data_area_is_still_read_once(tmp_path):
    tensors = {"lm_head.weight": BASE, EMBED: BASE, "z.norm": np.ones(H, np.float32)}
    path = write_safetensors(tmp_path / "model.safetensors", tensors)
    facts, bytes_read = scanned(path)
    assert "embedding_sample" in facts
    assert bytes_read == path.stat().st_size


def test_gguf_data_area_is_still_read_about_once(tmp_path):
    path = write_gguf(tmp_path / "model.gguf", BASE, gguf.GGMLQuantizationType.Q8_0)
    facts, bytes_read = scanned(path)
    assert facts["embedding_sample"]["dtype"] == "Q8_0"
    assert bytes_read < path.stat().st_size + (1 << 20)


def test_only_the_shard_holding_the_embedding_yields_the_sample(tmp_path):
    write_safetensors(tmp_path / "model-00001-of-00002.safetensors", {EMBED: BASE})
    write_safetensors(tmp_path / "model-00002-of-00002.safetensors", {"lm_head.weight": BASE})
    result = pipeline.scan(tmp_path, ScanOptions(jobs=1))
    sampled = {f.path for m in result.models for f in m.files if "embedding_sample" in f.facts}
    assert sampled == {"model-00001-of-00002.safetensors"}


# -- similarity across storage -----------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
def test_same_weights_in_other_float_dtypes_are_the_same(tmp_path, base_print, dtype):
    path = write_safetensors(tmp_path / "model.safetensors", {EMBED: BASE.astype(dtype)})
    assert sim(base_print, print_of(path)) > 0.99


@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_K", "F32"])
def test_gguf_quantisations_of_the_same_weights_are_the_same(tmp_path, base_print, qtype):
    path = write_gguf(tmp_path / "model.gguf", BASE, gguf.GGMLQuantizationType[qtype])
    found = print_of(path)
    assert (found.tensor, found.dtype) == ("token_embd.weight", qtype)
    assert sim(base_print, found) > 0.95


def test_fp8_with_block_scales_is_the_same(tmp_path):
    base = weights(1, vocab=V + 100, hidden=H + 64)  # partial 128x128 blocks on both axes
    q, scale_inv = fp8_with_block_scales(base)
    ref = print_of(write_safetensors(tmp_path / "ref.safetensors", {EMBED: base}))
    path = write_safetensors(tmp_path / "model.safetensors",
                             {EMBED: q, EMBED + "_scale_inv": scale_inv})
    facts, _ = scanned(path)
    assert facts["embedding_sample"]["scale"] == EMBED + "_scale_inv"
    assert sim(ref, WeightPrint.from_facts(facts)) > 0.95


def test_fp8_scales_are_applied_not_ignored(tmp_path):
    """Scales that differ by column block change each row's direction: without them the
    sketch would be another one."""
    base = weights(1, vocab=V, hidden=H)
    base[:, 128:] *= 50
    q, scale_inv = fp8_with_block_scales(base)
    ref = print_of(write_safetensors(tmp_path / "ref.safetensors", {EMBED: base}))
    scaled = print_of(write_safetensors(tmp_path / "a.safetensors",
                                        {EMBED: q, EMBED + "_scale_inv": scale_inv}))
    raw = print_of(write_safetensors(tmp_path / "b.safetensors", {EMBED: q}))
    assert sim(ref, scaled) > 0.95 and sim(ref, raw) < 0.9


def test_a_fine_tune_is_close(tmp_path, base_print):
    rng = np.random.default_rng(7)
    tuned = BASE + rng.standard_normal(BASE.shape).astype(np.float32) * 0.1 * BASE.std()
    path = write_safetensors(tmp_path / "model.safetensors", {EMBED: tuned})
    assert sim(base_print, print_of(path)) > 0.9


def test_unrelated_weights_are_not(tmp_path, base_print):
    path = write_safetensors(tmp_path / "model.safetensors", {EMBED: weights(2)})
    assert abs(sim(base_print, print_of(path))) < 0.2


def test_a_different_hidden_size_is_no_measurement(tmp_path, base_print):
    path = write_safetensors(tmp_path / "model.safetensors", {EMBED: weights(1, hidden=512)})
    assert similarity(base_print, print_of(path)) is None


def test_a_malformed_sample_is_no_fingerprint(base_print):
    good = {"tensor": EMBED, "vocab": V, "hidden": H, "dtype": "F32",
            "ids": list(base_print.ids), "sketch": sampling.encode_sketch(base_print.sketch)}
    assert WeightPrint.from_sample(good) is not None
    for bad in ({**good, "ids": good["ids"][:-1]}, {**good, "sketch": "!!"},
                {**good, "hidden": "256"}, {**good, "ids": [1] * 256}):
        assert WeightPrint.from_sample(bad) is None


# -- the dequantisers agree with ggml's layouts --------------------------------------------------

@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_K", "Q6_K"])
def test_dequantisers_match_the_gguf_reference(qtype):
    kind = gguf.GGMLQuantizationType[qtype]
    block, block_bytes = gguf.GGML_QUANT_SIZES[kind]
    layout = sampling.LAYOUTS[qtype]
    assert (layout.block, layout.block_bytes) == (block, block_bytes)
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (4, 2 * block_bytes), dtype=np.uint8)
    d = np.array([0.01], np.float16).view(np.uint8)
    flat = raw.reshape(-1)
    for k in range(8):  # finite f16 scales where each block keeps them
        at = k * block_bytes + (block_bytes - 2 if qtype == "Q6_K" else 0)
        flat[at:at + 2] = d
        if qtype == "Q4_K":
            flat[at + 2:at + 4] = d
    ours = layout.decode(raw, 2 * block, "<")
    np.testing.assert_allclose(ours, gguf.quants.dequantize(raw, kind), rtol=1e-6)


def test_fp8_e4m3_table_is_the_ocp_format():
    every = np.arange(256, dtype=np.uint8).reshape(1, 256)
    ours = sampling.LAYOUTS["F8_E4M3"].decode(every, 256, "<")
    ref = every.view(ml_dtypes.float8_e4m3fn).astype(np.float32)
    np.testing.assert_array_equal(ours, ref)


def test_q4_k_test_quantiser_round_trips_through_the_gguf_reference():
    blocks = quantize_q4_k(BASE[:8])
    back = gguf.quants.dequantize(blocks, gguf.GGMLQuantizationType.Q4_K)
    assert np.abs(back - BASE[:8]).max() < 0.3 * np.abs(BASE[:8]).max()


# -- remote-only: the sampled rows' byte ranges, nothing else --------------------------------------

def test_remote_only_sample_is_the_disk_sample_at_a_fraction_of_the_bytes(
    run_cli, serve, tmp_path  # noqa: F811
):
    path = write_safetensors(tmp_path / "model.safetensors",
                             {"lm_head.weight": BASE, EMBED: BASE.astype(ml_dtypes.bfloat16)})
    on_disk, _ = scanned(path)
    data = path.read_bytes()
    hub = serve([HubRepo("org/remote", {SHA: [HubFile("model.safetensors", data, lfs=True)]},
                         refs={"main": SHA})])
    result = run_cli("scan", f"hf://org/remote@{SHA}", "--remote-only", "--format", "json",
                     "--cache-dir", tmp_path / "cache")
    assert result.code == 0, result.err
    remote = files_by_path(json.loads(result.out))["model.safetensors"]
    assert remote["facts"]["embedding_sample"] == on_disk["embedding_sample"]
    # the header's 64 KiB read-ahead, then one 64 KiB request per run of 16 KiB of rows
    assert hub.content_bytes <= 9 * 64 * 1024 < len(data) // 50


# -- the first layer's query projection: matched when the embedding was disguised --------------

Q_PROJ = "model.layers.0.self_attn.q_proj.weight"
Q_ROWS, HEADS = 4096, 64  # head size 64: two runs (1024, 3072) of output features


def q_proj(seed: int, rows: int = Q_ROWS) -> np.ndarray:
    return weights(seed + 1000, vocab=rows)


LAYER = q_proj(1)


def fingerprint_of(path: Path):
    from auditor.fingerprint import measure

    facts, _ = scanned(path)
    report = type("Report", (), {"path": path.name, "facts": facts})()
    return measure.fingerprint([report])


def against_base(fp, base_fp):
    from auditor.fingerprint import measure

    ref = measure.Reference("org/base", "org", base_fp)
    return [m for m in measure.measure(fp, [ref], "someone/model") if m.name == "org/base"]


def permuted_for_gguf(w: np.ndarray, heads: int) -> np.ndarray:
    """What llama.cpp's converter does to a llama query projection (`LlamaModel.permute`)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, w.shape[1]).swapaxes(1, 2).reshape(
        w.shape)


def write_gguf_layer(path: Path, embedding: np.ndarray, layer: np.ndarray, qtype: str,
                     arch: str = "llama") -> Path:
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_head_count(HEADS)
    kind = gguf.GGMLQuantizationType[qtype]
    if arch == "llama":
        layer = permuted_for_gguf(layer, HEADS)
    for name, data in (("token_embd.weight", embedding), ("blk.0.attn_q.weight", layer)):
        packed = quantize_q4_k(data) if qtype == "Q4_K" else gguf.quants.quantize(data, kind)
        writer.add_tensor(name, packed, raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def base_fp(tmp_path_factory):
    path = tmp_path_factory.mktemp("layer") / "model.safetensors"
    return fingerprint_of(write_safetensors(path, {EMBED: BASE, Q_PROJ: LAYER}))


def test_layer_sample_is_taken_beside_the_embedding(tmp_path, base_fp):
    facts, _ = scanned(write_safetensors(tmp_path / "model.safetensors",
                                         {EMBED: BASE, Q_PROJ: LAYER}))
    sample = facts["layer_sample"]
    assert (sample["tensor"], sample["vocab"], sample["hidden"]) == (Q_PROJ, Q_ROWS, H)
    assert sample["ids"] == [*range(1024, 1056), *range(3072, 3104)]
    assert base_fp.layer is not None and base_fp.weights is not None


def test_a_small_layer_is_sampled_from_row_zero(tmp_path):
    path = write_safetensors(tmp_path / "model.safetensors", {Q_PROJ: q_proj(1, rows=H)})
    assert fingerprint_of(path).layer.ids == tuple(range(32))


def test_permuted_embedding_is_still_matched_through_the_layer(tmp_path, base_fp):
    shuffled = BASE[np.random.default_rng(5).permutation(V)]
    fp = fingerprint_of(write_safetensors(tmp_path / "model.safetensors",
                                          {EMBED: shuffled, Q_PROJ: LAYER}))
    assert abs(sim(fp.weights, base_fp.weights)) < 0.2
    (found,) = against_base(fp, base_fp)
    assert found.score > 0.99
    assert found.evidence[0].startswith("embedding rows 0.0") or found.evidence[0].startswith(
        "embedding rows -0.0")
    assert found.evidence[1].startswith("layer-0 q_proj rows 1.00 (64 sampled)")


def test_a_fine_tuned_layer_is_close(tmp_path, base_fp):
    tuned = LAYER + np.random.default_rng(8).standard_normal(LAYER.shape).astype(
        np.float32) * 0.1 * LAYER.std()
    fp = fingerprint_of(write_safetensors(tmp_path / "model.safetensors",
                                          {EMBED: weights(9), Q_PROJ: tuned}))
    assert sim(fp.layer, base_fp.layer) > 0.9
    assert against_base(fp, base_fp)


@pytest.mark.parametrize(("qtype", "arch"), [("Q8_0", "llama"), ("Q4_K", "llama"),
                                             ("Q8_0", "qwen2")])
def test_gguf_layer_is_the_same(tmp_path, base_fp, qtype, arch):
    """llama GGUFs store each query head's rotary halves interleaved: put back, they match."""
    fp = fingerprint_of(write_gguf_layer(tmp_path / "model.gguf", weights(9), LAYER, qtype, arch))
    assert (fp.layer.tensor, fp.layer.dtype) == ("blk.0.attn_q.weight", qtype)
    assert sim(fp.layer, base_fp.layer) > 0.95
    assert abs(sim(fp.weights, base_fp.weights)) < 0.2 and against_base(fp, base_fp)


def test_fp8_layer_with_block_scales_is_the_same(tmp_path, base_fp):
    q, scale_inv = fp8_with_block_scales(LAYER)
    fp = fingerprint_of(write_safetensors(tmp_path / "model.safetensors",
                                          {Q_PROJ: q, Q_PROJ + "_scale_inv": scale_inv}))
    assert sim(fp.layer, base_fp.layer) > 0.95


def test_unrelated_layers_are_not(tmp_path, base_fp):
    fp = fingerprint_of(write_safetensors(tmp_path / "model.safetensors",
                                          {EMBED: weights(2), Q_PROJ: q_proj(2)}))
    assert abs(sim(fp.layer, base_fp.layer)) < 0.2
    assert against_base(fp, base_fp) == []


def test_both_samples_still_take_one_pass(tmp_path):
    tensors = {"lm_head.weight": BASE, EMBED: BASE, Q_PROJ: LAYER,
               "model.layers.0.self_attn.k_proj.weight": LAYER[:512]}
    path = write_safetensors(tmp_path / "model.safetensors", tensors)
    facts, bytes_read = scanned(path)
    assert {"embedding_sample", "layer_sample"} <= set(facts)
    assert bytes_read == path.stat().st_size
    path = write_gguf_layer(tmp_path / "model.gguf", BASE, LAYER, "Q8_0")
    facts, bytes_read = scanned(path)
    assert {"embedding_sample", "layer_sample"} <= set(facts)
    assert bytes_read < path.stat().st_size + (1 << 20)


def test_store_keeps_the_layer_and_loads_entries_without_it(tmp_path, base_fp):
    from auditor.fingerprint import store

    written = store.add(tmp_path, "org/base", "org", None, base_fp)
    (ref,) = store.load(tmp_path)
    assert sim(ref.fingerprint.layer, base_fp.layer) > 0.99
    doc = json.loads(written.read_text())
    del doc["layer"]
    written.write_text(json.dumps(doc))
    (old,) = store.load(tmp_path)
    assert old.fingerprint.layer is None and old.fingerprint.weights is not None


def test_remote_only_reads_the_layer_rows_by_range_too(run_cli, serve, tmp_path):  # noqa: F811
    path = write_safetensors(tmp_path / "model.safetensors",
                             {"lm_head.weight": BASE, EMBED: BASE, Q_PROJ: LAYER})
    on_disk, _ = scanned(path)
    data = path.read_bytes()
    hub = serve([HubRepo("org/remote", {SHA: [HubFile("model.safetensors", data, lfs=True)]},
                         refs={"main": SHA})])
    result = run_cli("scan", f"hf://org/remote@{SHA}", "--remote-only", "--format", "json",
                     "--cache-dir", tmp_path / "cache")
    assert result.code == 0, result.err
    remote = files_by_path(json.loads(result.out))["model.safetensors"]["facts"]
    assert remote["layer_sample"] == on_disk["layer_sample"]
    assert remote["embedding_sample"] == on_disk["embedding_sample"]
    assert hub.content_bytes <= 11 * 64 * 1024 < len(data) // 20
