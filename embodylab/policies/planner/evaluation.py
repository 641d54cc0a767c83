"""A planner scored on a split of planner examples, symbolically (no physics): what `embodylab eval-planner`
reports.

Every example's instruction is planned over its facts (the whole scene, as the trainer's pairs hold it)
and the entities of its start scene graph, and the answer is scored from the example's start atoms
towards its goal (`verifier.score_plan`). ProgPrompt's metrics (`verifier`'s module docstring) are means
over the feasible examples:

- `sr`: the fraction whose final state holds every goal atom; `exec`: mean Exec; `gcr`: mean GCR;
- `false_cannot_rate`: the fraction refused (`cannot: ...`) although feasible;

and over every example: `parsed_rate` (answers that are plans or refusals of the grammar),
`hallucination_rate` (answers naming at least one id the scene lacks), `latency_p50_s` / `latency_p95_s`
and `mean_loops` (core loops per generated token). `cannot_accuracy` is the fraction of the infeasible
examples refused (`None` without any).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from embodylab.policies.planner.data import PlannerExample, StartStates
from embodylab.policies.planner.planners import LoopedPlanner
from embodylab.policies.planner.scene import entities
from embodylab.policies.planner.verifier import score_plan

METRICS = (
    "sr",
    "exec",
    "gcr",
    "false_cannot_rate",
    "cannot_accuracy",
    "parsed_rate",
    "hallucination_rate",
    "latency_p50_s",
    "latency_p95_s",
    "mean_loops",
)
"""the keys of `evaluate_examples`' metrics, besides the counts `examples`, `feasible`, `infeasible`"""


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


def evaluate_examples(
    planner: LoopedPlanner, examples: Sequence[PlannerExample], apartments: StartStates | None = None
) -> dict[str, float | int | None]:
    """The metrics of the module docstring for `planner` on `examples` (`None` where no example counts);
    `apartments` caches the start scene graphs by apartment seed across calls."""
    apartments = apartments or StartStates()
    scores, refused, hallucinated, parsed, latencies, loops = [], [], [], [], [], []
    for example in examples:
        graph = apartments(example.apartment_seed)[2]
        output = planner.decode(example.instruction, example.facts, entities(graph))
        score = score_plan(output.text, example.initial, example.goal, graph)
        scores.append(score)
        refused.append(output.plan is not None and not output.plan.feasible)
        hallucinated.append(bool(score.hallucinated))
        parsed.append(output.plan is not None)
        latencies.append(output.latency_s)
        loops.append(output.loops_used or 0.0)
    feasible = [i for i, e in enumerate(examples) if e.feasible]
    infeasible = [i for i, e in enumerate(examples) if not e.feasible]
    return {
        "examples": len(examples),
        "feasible": len(feasible),
        "infeasible": len(infeasible),
        "sr": _mean([float(scores[i].success) for i in feasible]),
        "exec": _mean([scores[i].exec_rate for i in feasible]),
        "gcr": _mean([scores[i].gcr for i in feasible]),
        "false_cannot_rate": _mean([float(refused[i]) for i in feasible]),
        "cannot_accuracy": _mean([float(refused[i]) for i in infeasible]),
        "parsed_rate": _mean([float(p) for p in parsed]),
        "hallucination_rate": _mean([float(h) for h in hallucinated]),
        "latency_p50_s": float(np.percentile(latencies, 50)) if latencies else None,
        "latency_p95_s": float(np.percentile(latencies, 95)) if latencies else None,
        "mean_loops": _mean(loops),
    }
