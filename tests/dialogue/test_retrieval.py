"""Demonstration retrieval: nearest by cosine, never from the target's dialogue, embeddings cached."""

import re
import zlib

import numpy as np

from m2se.dialogue.retrieval import DemoRetriever, default_cache_dir


class BagOfWords:
    """A hashing bag-of-words embedder that counts its calls (the real model is for one test)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        vectors = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                vectors[row, zlib.crc32(word.encode()) % 64] += 1
        return vectors + 1e-3  # no all-zero vector


POOL = [
    ("a", "I cannot believe you ate my sandwich"),  # the target itself: same dialogue
    ("a", "you ate my sandwich again"),  # same dialogue, near-duplicate: never returned
    ("b", "I can not believe you ate my sandwich!"),  # planted near-duplicate
    ("c", "The weather is lovely today"),
    ("c", "Let us go to the park"),
]


def retriever(tmp_path, embed=None, model="bow"):
    return DemoRetriever(model=model, cache_dir=tmp_path / "cache", batch_size=2, embed=embed or BagOfWords())


def test_nearest_finds_the_planted_near_duplicate_never_the_same_dialogue(tmp_path):
    found = retriever(tmp_path).nearest(
        ["I cannot believe you ate my sandwich"], ["a"], [t for _, t in POOL], [d for d, _ in POOL], k=3
    )
    assert found[0][0] == 2 and not {0, 1} & set(found[0]) and len(found[0]) == 3


def test_pool_and_queries_may_be_the_same_set(tmp_path):
    texts, dialogues = [t for _, t in POOL], [d for d, _ in POOL]
    found = retriever(tmp_path).nearest(texts, dialogues, texts, dialogues, k=10)
    for i, row in enumerate(found):
        assert i not in row and all(dialogues[j] != dialogues[i] for j in row)
    assert [len(row) for row in found] == [3, 3, 4, 3, 3]  # fewer than k: the rest of the pool is small
    assert retriever(tmp_path).nearest(texts, dialogues, [], [], k=2) == [[]] * 5


def test_embeddings_are_normalised_and_cached_per_model_and_texts(tmp_path):
    embed = BagOfWords()
    texts = [t for _, t in POOL]
    first = retriever(tmp_path, embed).embeddings(texts)
    assert embed.calls == 3  # 5 texts in batches of 2
    assert np.allclose(first.norm(dim=1).numpy(), 1)
    again = retriever(tmp_path, embed).embeddings(texts)  # a new retriever: the cache on disk answers
    assert embed.calls == 3 and np.allclose(first.numpy(), again.numpy())
    retriever(tmp_path, embed).embeddings([*texts[:-1], "Let us go to the beach"])  # the pool changed
    assert embed.calls == 6
    retriever(tmp_path, embed, model="other").embeddings(texts)  # another model
    assert embed.calls == 9
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 3


def test_embedding_order_follows_the_texts(tmp_path):
    texts = ["a much longer sentence about sandwiches", "short", "medium length one"]
    vectors = retriever(tmp_path).embeddings(texts).numpy()
    expected = BagOfWords()(texts)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(vectors, expected, atol=1e-6)


def test_default_cache_dir_follows_m2se_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("M2SE_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "embeddings"
    monkeypatch.delenv("M2SE_CACHE")
    assert str(default_cache_dir()).endswith(".cache/m2se/embeddings")


def test_real_minilm_finds_a_paraphrase(tmp_path):
    """The default model, as the package ships it offline (about 10 s to load here)."""
    real = DemoRetriever(cache_dir=tmp_path)
    pool = ["I'm so happy for you!", "Where did you put the car keys?", "I am really glad for you."]
    found = real.nearest(["I'm very happy for you"], ["q"], pool, ["x", "y", "z"], k=2)
    assert set(found[0]) == {0, 2}
    assert real.embeddings(pool).shape == (3, 384)
