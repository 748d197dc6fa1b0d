"""all-MiniLM-L6-v2 run with torch alone: the packaged weights, its own tokenizer, mean pooling, L2 norm.

Every reindex run is a new process and loads the model again. Through sentence-transformers that costs
~4 s, three of them importing sentence-transformers and transformers (measured in docs/notes.md); torch,
``tokenizers`` and ``safetensors`` load in ~1 s. The model is six BERT layers; this module runs them with
the same weights and the same tokenisation sentence-transformers uses for this model (whitespace stripped,
lower-cased WordPiece, at most 256 tokens, padded to the longest text of a batch), and gives the same
vectors (tested against sentence-transformers to 1e-5).

On a CPU that computes bfloat16 natively (Intel AMX or AVX-512 BF16: ``native_bfloat16``), ``encode`` can run
the matrix products in bfloat16 (torch autocast; layer norms, pooling and the norm stay in float32): 2.5-2.7x
faster here, each vector within a cosine of 0.99996 of the float32 one (docs/benchmarks.md, "Embedding in
bfloat16"). Without native support bfloat16 is emulated and slower, so ``auto`` keeps float32 there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: sentence-transformers' ``max_seq_length`` for this model (sentence_bert_config.json); longer texts are cut.
MAX_TOKENS = 256
#: What the offline model computes in: ``auto`` is bfloat16 where the CPU has it natively, else float32.
PRECISIONS = ("auto", "float32", "bfloat16")
#: /proc/cpuinfo flags of CPUs with bfloat16 arithmetic (AMX tiles, AVX-512 BF16 dot products).
BFLOAT16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


def native_bfloat16(cpuinfo: str) -> bool:
    """Whether the CPU described by ``cpuinfo`` (Linux's /proc/cpuinfo text) computes bfloat16 natively."""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            flags.update(value.split())
    return bool(flags & BFLOAT16_FLAGS)


def default_threads() -> int:
    """Threads for the model's arithmetic: one core fewer than this process may use (at least one). In a
    reindex run the model embeds the next batch in a thread while the run writes the current one; torch
    on every core left that thread's work and the writes fighting for them, and its threads waiting for
    each other at every operation (measured on 2 cores: 1 thread embedded a chunk in 28 ms during a run,
    2 threads in 35-40 ms)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def resolve_precision(precision: str, cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """``float32`` or ``bfloat16``: ``auto`` resolved for this machine (float32 where it cannot tell)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown embedding precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    try:
        return "bfloat16" if native_bfloat16(cpuinfo.read_text()) else "float32"
    except OSError:  # not Linux, or no /proc
        return "float32"


class MiniLM:
    """The encoder. ``encode`` is safe to call from one thread at a time (torch runs it on every core)."""

    def __init__(self, model_dir: Path, max_tokens: int = MAX_TOKENS):
        import torch
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        config = json.loads((model_dir / "config.json").read_text())
        if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
            raise ValueError(f"{model_dir} is not a BERT model with GELU activations: {config.get('model_type')}")
        self._torch = torch
        self.heads = int(config["num_attention_heads"])
        self.hidden = int(config["hidden_size"])
        self.eps = float(config["layer_norm_eps"])
        self.layers = int(config["num_hidden_layers"])
        self.weights: dict[str, Any] = load_file(str(model_dir / "model.safetensors"))
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()  # the packaged file pads to a fixed 128; batches pad to their longest
        self.tokenizer.enable_truncation(min(max_tokens, int(config["max_position_embeddings"])))
        self.pad_id = int(config.get("pad_token_id", 0))

    def encode(
        self, texts: Sequence[str], batch_size: int = 16, precision: str = "float32", threads: int | None = None
    ) -> np.ndarray:
        """Unit vectors, one row per text, in the order given. Texts are batched by token length (longest
        first, as sentence-transformers does) so that a batch pads little. ``precision``: ``float32`` or
        ``bfloat16`` (the matrix products; see the module's docstring). ``threads``: torch's threads for this
        process (a process-wide setting; None leaves it as it is)."""
        if precision not in ("float32", "bfloat16"):
            raise ValueError(f"encode computes in float32 or bfloat16, not {precision!r}")
        torch = self._torch
        if threads is not None and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        encodings = self.tokenizer.encode_batch([str(t).strip() for t in texts])
        order = sorted(range(len(encodings)), key=lambda i: -len(encodings[i].ids))
        out = np.zeros((len(encodings), self.hidden), dtype=np.float32)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                out[batch] = self._embed([encodings[i] for i in batch]).numpy()  # float32 (``_embed``)
        return out

    def _embed(self, encodings: list) -> Any:
        torch, f = self._torch, self._torch.nn.functional
        longest = max(len(e.ids) for e in encodings)
        ids = torch.full((len(encodings), longest), self.pad_id, dtype=torch.long)
        types = torch.zeros_like(ids)
        mask = torch.zeros_like(ids)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            ids[row, :n] = torch.tensor(e.ids)
            types[row, :n] = torch.tensor(e.type_ids)
            mask[row, :n] = 1
        x = self._layer_output(ids, types, mask).float()  # pooled and normalised in float32 whatever the products
        keep = mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * keep).sum(1) / keep.sum(1).clamp(min=1e-9)
        return f.normalize(pooled, p=2, dim=1)

    def _layer_output(self, ids: Any, types: Any, mask: Any) -> Any:
        """The BERT encoder's last hidden states."""
        torch, f, w = self._torch, self._torch.nn.functional, self.weights
        batch, length = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][torch.arange(length)]
            + w["embeddings.token_type_embeddings.weight"][types]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        # Padding is masked out of every attention: a large negative added to its scores.
        blocked = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        head = self.hidden // self.heads
        for n in range(self.layers):
            layer = f"encoder.layer.{n}"
            q, k, v = (
                self._linear(x, f"{layer}.attention.self.{name}").view(batch, length, self.heads, head).transpose(1, 2)
                for name in ("query", "key", "value")
            )
            attended = f.scaled_dot_product_attention(q, k, v, attn_mask=blocked)
            attended = attended.transpose(1, 2).reshape(batch, length, self.hidden)
            x = self._norm(
                self._linear(attended, f"{layer}.attention.output.dense") + x, f"{layer}.attention.output.LayerNorm"
            )
            inner = f.gelu(self._linear(x, f"{layer}.intermediate.dense"))
            x = self._norm(self._linear(inner, f"{layer}.output.dense") + x, f"{layer}.output.LayerNorm")
        return x

    def _linear(self, x: Any, name: str) -> Any:
        return self._torch.nn.functional.linear(x, self.weights[f"{name}.weight"], self.weights[f"{name}.bias"])

    def _norm(self, x: Any, name: str) -> Any:
        w = self.weights
        return self._torch.nn.functional.layer_norm(x, (self.hidden,), w[f"{name}.weight"], w[f"{name}.bias"], self.eps)
