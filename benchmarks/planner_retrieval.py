"""Retrieval for the planner: recall@k of the facts an oracle plan needs, per ranker (BM25, all-MiniLM-L6-v2
embeddings, and their reciprocal-rank fusion, the default), the context tokens kept, the ranking time,
and the embedding model's load time (first unzip into the cache vs cached).

"Needed" facts are those about the entities the oracle's plan names, with the fixtures and rooms they
depend on (`retrieval.needed_facts`). Episodes: seeds 0..N-1 of every household task.

    python benchmarks/planner_retrieval.py --seeds 20   # -> benchmarks/results/planner_retrieval.json
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import tyro
from common import machine_info, write_json

from embodylab.envs.registry import HOUSEHOLD_ENVS
from embodylab.policies.planner import retrieval
from embodylab.policies.planner.language import from_oracle
from embodylab.policies.planner.scene import scene_facts
from embodylab.recording import print_table
from embodylab.skills.household.oracle import plan


@dataclass
class RetrievalBenchConfig:
    seeds: int = 20
    k: int = retrieval.DEFAULT_K
    out: Path = Path(__file__).parent / "results" / "planner_retrieval.json"


def main(config: RetrievalBenchConfig) -> dict:
    cache = tempfile.mkdtemp(prefix="embodylab-retrieval-")
    os.environ["EMBODYLAB_CACHE"] = cache  # a first load: unzip included
    start = time.perf_counter()
    embedding = retrieval.EmbeddingRanker()
    embedding.model  # noqa: B018 - loads it
    first_load_s = time.perf_counter() - start
    start = time.perf_counter()
    retrieval.EmbeddingRanker().model  # noqa: B018 - the unzipped copy, loaded again
    cached_load_s = time.perf_counter() - start
    lexical = retrieval.LexicalRanker()
    rankers = (lexical, embedding, retrieval.HybridRanker(lexical, retrieval.EmbeddingRanker()))
    recall = {r.name: [] for r in rankers}
    seconds = {r.name: [] for r in rankers}
    tokens = {r.name: [] for r in rankers}
    n_facts = []
    for entry in HOUSEHOLD_ENVS:
        env = gym.make(entry.id)
        for seed in range(config.seeds):
            env.reset(seed=seed)
            u = env.unwrapped
            graph = u.scene_graph()
            facts = scene_facts(graph)
            n_facts.append(len(facts))
            need = retrieval.needed_facts(facts, from_oracle(plan(u.predicates(), set(u.goal_atoms), graph)))
            for ranker in rankers:
                t = time.perf_counter()
                kept = retrieval.FactRetriever(ranker, k=config.k).retrieve(facts, u.instruction)
                seconds[ranker.name].append(time.perf_counter() - t)
                recall[ranker.name].append(len(need & set(kept.indices)) / len(need))
                tokens[ranker.name].append(kept.context_tokens)
        env.close()
    shutil.rmtree(cache)
    rankers_result = {
        name: {
            "recall_at_k": float(np.mean(recall[name])),
            "all_needed_kept": float(np.mean(np.array(recall[name]) == 1.0)),
            "context_tokens": float(np.mean(tokens[name])),
            "rank_ms_median": float(np.median(seconds[name]) * 1e3),
        }
        for name in recall
    }
    print_table(
        f"retrieval, k={config.k}, {len(n_facts)} episodes ({np.mean(n_facts):.1f} facts each)",
        ["ranker", "recall@k", "all needed kept", "context tokens", "rank ms (median)"],
        [
            [
                n,
                f"{r['recall_at_k']:.3f}",
                f"{r['all_needed_kept']:.0%}",
                f"{r['context_tokens']:.0f}",
                f"{r['rank_ms_median']:.1f}",
            ]
            for n, r in rankers_result.items()
        ],
    )
    result = {
        "machine": machine_info(),
        "k": config.k,
        "episodes": len(n_facts),
        "facts_per_scene": float(np.mean(n_facts)),
        "embedding_first_load_s": round(first_load_s, 2),
        "embedding_cached_load_s": round(cached_load_s, 2),
        "rankers": rankers_result,
    }
    write_json(config.out, result)
    return result


if __name__ == "__main__":
    main(tyro.cli(RetrievalBenchConfig))
