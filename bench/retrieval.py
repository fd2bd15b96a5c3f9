"""Demonstration retrieval cost: index build (pool embedding) and per-query search time, real MiniLM.

    python bench/retrieval.py [--pool 10000] [--queries 1000] [--k 4] [--model PATH] [--device cpu]

A synthetic pool of short utterances (seeded templates, MELD-like lengths) in ~10-turn dialogues is
embedded with the default all-MiniLM-L6-v2 into a temporary cache; then the cache is read back, a batch
of queries is embedded, and their top-K is searched (matrix product + same-dialogue mask), as a batch
and one query at a time.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time

import torch

from m2se.dialogue.retrieval import QUERY_CHUNK, DemoRetriever, top_k

SUBJECTS = ["I", "You", "We", "Ross", "Monica", "Joey", "Rachel", "Chandler", "Phoebe", "She", "He"]
VERBS = ["can't believe", "love", "hate", "lost", "found", "ate", "broke", "forgot", "saw", "want"]
OBJECTS = ["my sandwich", "the apartment", "your sister", "the duck", "that couch", "the job", "a date"]
TAILS = ["!", "?", ".", " again!", ", okay?", " right now.", "... seriously?", " and I'm fine with it."]


def utterances(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [
        f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}{rng.choice(TAILS)}"
        + (f" {rng.choice(OBJECTS).capitalize()}{rng.choice(TAILS)}" if rng.random() < 0.4 else "")
        + f" #{i}"  # every text distinct, as a real pool mostly is
        for i in range(n)
    ]


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--model", help="sentence-transformers model (default: all-MiniLM-L6-v2)")
    parser.add_argument("--device", help="embedding device (default: cuda when available)")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    pool, queries = utterances(args.pool), utterances(args.queries, seed=1)
    pool_dialogues = [str(i // 10) for i in range(args.pool)]
    query_dialogues = [str(i // 10) for i in range(args.queries)]  # shares ids with the pool: masked
    with tempfile.TemporaryDirectory() as cache:
        retriever = DemoRetriever(args.model, cache, args.batch_size, device=args.device)
        _, load = timed(retriever._load)
        vectors, embed = timed(lambda: retriever.embeddings(pool, "pool"))
        _, reread = timed(lambda: DemoRetriever(args.model, cache).embeddings(pool))
        query_vectors, query_embed = timed(lambda: retriever.embeddings(queries, "queries"))
    pool_codes = torch.tensor([int(d) for d in pool_dialogues])
    query_codes = torch.tensor([int(d) for d in query_dialogues])

    def batch():
        for s in range(0, args.queries, QUERY_CHUNK):
            e = s + QUERY_CHUNK
            top_k(query_vectors[s:e], query_codes[s:e], vectors, pool_codes, args.k)

    def one_by_one():
        for i in range(args.queries):
            top_k(query_vectors[i : i + 1], query_codes[i : i + 1], vectors, pool_codes, args.k)

    batch()  # warm-up
    _, batch_time = timed(batch)
    _, single_time = timed(one_by_one)
    print(f"model {retriever.model} on {retriever.device or 'default device'}, dim {vectors.shape[1]}")
    print(f"model load: {load:.2f} s")
    print(
        f"index build: {args.pool:,} utterances embedded in {embed:.2f} s "
        f"({args.pool / embed:,.0f} utt/s, batch {args.batch_size})"
    )
    print(f"index reload from the .npy cache: {reread * 1000:.1f} ms")
    print(
        f"query embedding: {args.queries:,} in {query_embed:.2f} s ({query_embed / args.queries * 1000:.2f} ms each)"
    )
    print(
        f"search top-{args.k} (CPU matmul + mask), batch of {args.queries:,}: {batch_time * 1000:.1f} ms "
        f"({batch_time / args.queries * 1e6:.1f} us/query)"
    )
    print(f"search top-{args.k}, one query at a time: {single_time / args.queries * 1e6:.1f} us/query")


if __name__ == "__main__":
    main()
