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
from auditor.formats._lib import rowplan, sampling
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


def write_gguf(path: Path, embedding: np.ndarray, qtype, name: str = "token_embd.weight",
               extra: dict[str, np.ndarray] | None = None) -> Path:
    """A GGUF with `name` (the token embedding) quantised as `qtype` (k-quant blocks built
    here: the gguf package dequantises them but does not quantise them), a small F32 tensor
    after it, and `extra` F32 tensors."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tensor(name, quantize(embedding, qtype), raw_dtype=qtype)
    for other, data in (extra or {}).items():
        writer.add_tensor(other, data)
    writer.add_tensor("output_norm.weight", np.ones(embedding.shape[1], np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def quantize(x: np.ndarray, qtype) -> np.ndarray:
    own = OWN_QUANTISERS.get(qtype.name)
    if own is not None:
        return own(x)
    if qtype == gguf.GGMLQuantizationType.F32:
        return x
    return gguf.quants.quantize(x, qtype)


def _f16_bytes(v: np.ndarray) -> np.ndarray:
    return v.astype(np.float16).view(np.uint8).reshape(-1, 2)


def _grid(blocks: np.ndarray, levels: int, scale_max: int) -> tuple[np.ndarray, ...]:
    """Per sub-block an affine grid x ~ step*q - m (m >= 0) of `levels` + 1 values, its width
    the one that errs least among a few shrinks of the range (as llama.cpp searches); step
    and m stored as `scale_max` multiples of the block's f16 d and dmin.
    -> d, dmin, scale, min, q."""
    best_err = best_lo = best_step = None
    for shrink in np.linspace(0.5, 1.0, 11):
        lo = np.minimum(blocks.min(axis=2), 0) * shrink
        step = np.maximum(blocks.max(axis=2) * shrink - lo, 1e-12) / levels
        q = np.clip(np.round((blocks - lo[:, :, None]) / step[:, :, None]), 0, levels)
        err = ((q * step[:, :, None] + lo[:, :, None] - blocks) ** 2).sum(axis=2)
        if best_err is None:
            best_err, best_lo, best_step = err, lo, step
        else:
            better = err < best_err
            best_err = np.where(better, err, best_err)
            best_lo, best_step = np.where(better, lo, best_lo), np.where(better, step, best_step)
    d = (best_step.max(axis=1) / scale_max).astype(np.float16)
    dmin = (-best_lo.min(axis=1) / scale_max).astype(np.float16)
    d32, dmin32 = d.astype(np.float32)[:, None], dmin.astype(np.float32)[:, None]
    sc = np.clip(np.round(best_step / np.where(d32 > 0, d32, 1)), 1, scale_max).astype(np.uint8)
    mn = np.clip(np.round(-best_lo / np.where(dmin32 > 0, dmin32, 1)), 0, scale_max
                 ).astype(np.uint8)
    scale, offset = (d32 * sc)[:, :, None], (dmin32 * mn)[:, :, None]
    q = np.clip(np.round((blocks + offset) / scale), 0, levels).astype(np.uint8)
    return d, dmin, sc, mn, q


def _k_pack(sc: np.ndarray, mn: np.ndarray) -> np.ndarray:
    """Eight 6-bit (scale, min) pairs in Q4_K/Q5_K's 12 bytes."""
    packed = np.empty((sc.shape[0], 12), np.uint8)
    packed[:, 0:4] = (sc[:, :4] & 63) | ((sc[:, 4:] >> 4) << 6)
    packed[:, 4:8] = (mn[:, :4] & 63) | ((mn[:, 4:] >> 4) << 6)
    packed[:, 8:12] = (sc[:, 4:] & 15) | ((mn[:, 4:] & 15) << 4)
    return packed


def _crumbs(q: np.ndarray) -> np.ndarray:
    """256 2-bit values [n, 256] as k-quants pack them: value 128h + 32j + l in bits 2j of
    byte 32h + l."""
    q = q.reshape(-1, 2, 4, 32)
    return (q[:, :, 0] | (q[:, :, 1] << 2) | (q[:, :, 2] << 4) | (q[:, :, 3] << 6)).reshape(-1, 64)


def _bit_planes(bits: np.ndarray) -> np.ndarray:
    """256 bits [n, 256] as a k-quant's 32-byte mask: value 32k + l is bit k of byte l."""
    bits = bits.reshape(-1, 8, 32)
    return np.bitwise_or.reduce(bits << np.arange(8, dtype=np.uint8)[None, :, None], axis=1)


def quantize_q4_k(x: np.ndarray) -> np.ndarray:
    """Q4_K: per 32-value sub-block an affine 4-bit grid (`_grid`), 128 bytes of nibbles
    (byte 32g + l: low nibble sub-block 2g, high nibble 2g + 1)."""
    d, dmin, sc, mn, q = _grid(x.reshape(-1, 8, 32).astype(np.float32), 15, 63)
    qs = q.reshape(-1, 4, 2, 32)
    nibbles = (qs[:, :, 0] | (qs[:, :, 1] << 4)).reshape(-1, 128)
    out = np.concatenate([_f16_bytes(d), _f16_bytes(dmin), _k_pack(sc, mn), nibbles], axis=1)
    return out.reshape(x.shape[0], -1)


def quantize_q5_k(x: np.ndarray) -> np.ndarray:
    """Q5_K: Q4_K with a fifth bit per value in a 32-byte mask before the nibbles."""
    d, dmin, sc, mn, q = _grid(x.reshape(-1, 8, 32).astype(np.float32), 31, 63)
    low = (q & 15).reshape(-1, 4, 2, 32)
    nibbles = (low[:, :, 0] | (low[:, :, 1] << 4)).reshape(-1, 128)
    out = np.concatenate([_f16_bytes(d), _f16_bytes(dmin), _k_pack(sc, mn),
                          _bit_planes(q.reshape(-1, 256) >> 4), nibbles], axis=1)
    return out.reshape(x.shape[0], -1)


def quantize_q2_k(x: np.ndarray) -> np.ndarray:
    """Q2_K: per 16-value sub-block an affine 2-bit grid, scale and min 4 bits each."""
    d, dmin, sc, mn, q = _grid(x.reshape(-1, 16, 16).astype(np.float32), 3, 15)
    out = np.concatenate([sc | (mn << 4), _crumbs(q.reshape(-1, 256)), _f16_bytes(d),
                          _f16_bytes(dmin)], axis=1)
    return out.reshape(x.shape[0], -1)


def quantize_q3_k(x: np.ndarray) -> np.ndarray:
    """Q3_K: per 16-value sub-block a symmetric 3-bit grid (-4..3), its signed 6-bit scale a
    multiple of the block's f16 d; low 2 bits as `_crumbs`, the third bit in a mask."""
    blocks = x.reshape(-1, 16, 16).astype(np.float32)
    n = blocks.shape[0]
    step = np.maximum(np.abs(blocks).max(axis=2), 1e-12) / 4
    d = (step.max(axis=1) / 31).astype(np.float16)
    d32 = d.astype(np.float32)[:, None]
    sc = np.clip(np.round(step / np.where(d32 > 0, d32, 1)), 1, 31)
    q = np.clip(np.round(blocks / (d32 * sc)[:, :, None]), -4, 3)
    u = (q + 4).astype(np.uint8).reshape(n, 256)  # 0..7: bit 2 is the mask's
    s = (sc + 32).astype(np.uint8)
    top = s >> 4
    scales = np.concatenate([(s[:, :8] & 15) | ((s[:, 8:] & 15) << 4),
                             top[:, 0:4] | (top[:, 4:8] << 2) | (top[:, 8:12] << 4)
                             | (top[:, 12:16] << 6)], axis=1)
    out = np.concatenate([_bit_planes(u >> 2), _crumbs(u & 3), scales, _f16_bytes(d)], axis=1)
    return out.reshape(x.shape[0], -1)


OWN_QUANTISERS = {"Q2_K": quantize_q2_k, "Q3_K": quantize_q3_k, "Q4_K": quantize_q4_k,
                  "Q5_K": quantize_q5_k}


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


def test_a_shard_with_only_the_head_yields_a_tied_sample_and_the_embedding_comes_first(
        tmp_path):
    """Shard by shard a head cannot be told from a tied embedding: its sample says `tied`,
    and the model's embedding print is the real embedding's."""
    from auditor.fingerprint import measure

    write_safetensors(tmp_path / "model-00001-of-00002.safetensors", {EMBED: BASE})
    write_safetensors(tmp_path / "model-00002-of-00002.safetensors", {"lm_head.weight": BASE})
    result = pipeline.scan(tmp_path, ScanOptions(jobs=1))
    files = [f for m in result.models for f in m.files]
    tied = {f.path: f.facts["embedding_sample"].get("tied", False) for f in files
            if "embedding_sample" in f.facts}
    assert tied == {"model-00001-of-00002.safetensors": False,
                    "model-00002-of-00002.safetensors": True}
    assert measure.fingerprint(files).weights.tensor == EMBED


# -- similarity across storage -----------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
def test_same_weights_in_other_float_dtypes_are_the_same(tmp_path, base_print, dtype):
    path = write_safetensors(tmp_path / "model.safetensors", {EMBED: BASE.astype(dtype)})
    assert sim(base_print, print_of(path)) > 0.99


@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_K", "F32", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K",
                                   "Q3_K", "Q5_K"])
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

# where each block keeps its f16 scales (d, and dmin or m): random bytes there could be inf/nan
F16_AT = {"Q8_0": (0,), "Q4_0": (0,), "Q4_1": (0, 2), "Q5_0": (0,), "Q5_1": (0, 2),
          "Q2_K": (80, 82), "Q3_K": (108,), "Q4_K": (0, 2), "Q5_K": (0, 2), "Q6_K": (208,)}


@pytest.mark.parametrize("qtype", sorted(F16_AT))
def test_dequantisers_match_the_gguf_reference(qtype):
    kind = gguf.GGMLQuantizationType[qtype]
    block, block_bytes = gguf.GGML_QUANT_SIZES[kind]
    layout = sampling.LAYOUTS[qtype]
    assert (layout.block, layout.block_bytes) == (block, block_bytes)
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (4, 2 * block_bytes), dtype=np.uint8)
    flat = raw.reshape(-1)
    for k in range(8):
        for at in F16_AT[qtype]:
            flat[k * block_bytes + at:k * block_bytes + at + 2] = rng.choice(
                np.array([0.01, -0.003, 0.5], np.float16)).reshape(1).view(np.uint8)
    ours = layout.decode(raw, 2 * block, "<")
    np.testing.assert_allclose(ours, gguf.quants.dequantize(raw, kind), rtol=1e-6)


def test_the_numpy_free_dtype_list_is_the_dequantisers_list():
    """The dtype list format modules check without numpy is the dequantisers' list."""
    assert set(sampling.LAYOUTS) == rowplan.DEQUANTISED


@pytest.mark.parametrize("qtype", sorted(OWN_QUANTISERS))
def test_test_quantisers_round_trip_through_the_gguf_reference(qtype):
    back = gguf.quants.dequantize(OWN_QUANTISERS[qtype](BASE[:8]),
                                  gguf.GGMLQuantizationType[qtype])
    cosine = (back * BASE[:8]).sum() / np.linalg.norm(back) / np.linalg.norm(BASE[:8])
    assert cosine > 0.95


def test_fp8_e4m3_table_is_the_ocp_format():
    every = np.arange(256, dtype=np.uint8).reshape(1, 256)
    ours = sampling.LAYOUTS["F8_E4M3"].decode(every, 256, "<")
    ref = every.view(ml_dtypes.float8_e4m3fn).astype(np.float32)
    np.testing.assert_array_equal(ours, ref)


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
        writer.add_tensor(name, quantize(data, kind), raw_dtype=kind)
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


# -- a tied embedding stored under the output head's name; types with no dequantiser ----------

def test_a_tied_lm_head_only_checkpoint_is_matched_to_the_base(tmp_path, base_fp):
    path = write_safetensors(tmp_path / "model.safetensors",
                             {"lm_head.weight": BASE.astype(ml_dtypes.bfloat16)})
    fp = fingerprint_of(path)
    assert fp.weights.tensor == "lm_head.weight"
    assert fp.layer is None and sim(base_fp.weights, fp.weights) > 0.95
    assert against_base(fp, base_fp)


def test_an_output_only_gguf_is_matched_to_the_base(tmp_path, base_fp):
    path = write_gguf(tmp_path / "model.gguf", BASE, gguf.GGMLQuantizationType.Q5_K,
                      name="output.weight")
    fp = fingerprint_of(path)
    assert (fp.weights.tensor, fp.weights.dtype) == ("output.weight", "Q5_K")
    assert fp.layer is None and sim(base_fp.weights, fp.weights) > 0.95
    assert against_base(fp, base_fp)


def test_an_output_head_beside_the_embedding_is_not_the_sample(tmp_path, base_print):
    """Untied, the head is other weights: the embedding is sampled whenever it is there."""
    path = write_gguf(tmp_path / "model.gguf", BASE, gguf.GGMLQuantizationType.Q8_0,
                      extra={"output.weight": weights(2)})
    assert print_of(path).tensor == "token_embd.weight"
    st = write_safetensors(tmp_path / "model.safetensors",
                           {"lm_head.weight": weights(2), EMBED: BASE})
    assert sim(base_print, print_of(st)) > 0.99


def test_an_embedding_of_a_type_with_no_dequantiser_is_said_to_be_skipped(tmp_path):
    kind = gguf.GGMLQuantizationType.IQ2_XS
    block, block_bytes = gguf.GGML_QUANT_SIZES[kind]
    raw = np.zeros((V, H // block * block_bytes), np.uint8)
    writer = gguf.GGUFWriter(str(tmp_path / "model.gguf"), "llama")
    writer.add_tensor("token_embd.weight", raw, raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    facts, _ = scanned(tmp_path / "model.gguf")
    assert facts["embedding_sample_skipped"] == "token_embd.weight is IQ2_XS"
    assert "embedding_sample" not in facts
    st, _ = scanned(write_safetensors(tmp_path / "model.safetensors",
                                      {EMBED: np.zeros((V, H), np.int8)}))
    assert st["embedding_sample_skipped"] == f"{EMBED} is I8"
    assert "embedding_sample" not in st
