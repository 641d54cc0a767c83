"""The planner benchmark: looped k⊗L against k⊗1 and kL⊗1 (Saunshi et al.), each without and with grounding,
on every held-out split, plus test-time depth and the exit gate. Symbolic scoring (ProgPrompt's SR, Exec,
GCR; hallucinated entities; "cannot" on infeasible instructions; latency p50/p95).

    python benchmarks/planner.py                        # 3 seeds x 3 models: hours on 2 CPU cores
    python benchmarks/planner.py --seeds 0 --steps 200  # a quick look

Every model trains into `--work/<model>_seed<S>` with `resume`, so an interrupted run continues where it
stopped (the same seed gives the same model); one data set (`--work/data`, data seed 0) serves all runs.
Writes `benchmarks/results/planner.json` and `planner_loops.png` (SR against test-time loops R = 1..2L).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import tyro
from common import machine_info, write_json

from embodylab.policies.planner.config import LoopedConfig, TrainPlannerConfig
from embodylab.policies.planner.data import SPLITS, StartStates, generate_dataset, read_examples
from embodylab.policies.planner.evaluation import evaluate_examples
from embodylab.policies.planner.looped import baseline_configs
from embodylab.policies.planner.planners import LoopedPlanner
from embodylab.policies.planner.tokenizer import SPECIAL_TOKENS
from embodylab.recording import print_table

RESULTS = Path(__file__).parent / "results"
HELD_OUT = tuple(s for s in SPLITS if s != "train")


@dataclass
class PlannerBenchConfig:
    seeds: tuple[int, ...] = (0, 1, 2)
    """training seeds (the data set is the same for all)"""
    model: LoopedConfig = field(default_factory=lambda: LoopedConfig(vocab_size=len(SPECIAL_TOKENS)))
    """the looped model k⊗L; its baselines come from `baseline_configs`"""
    steps: int = 2000
    batch_size: int = 32
    train_examples: int = 2000
    eval_examples: int = 100
    """examples scored per held-out split (the first ones of the split)"""
    threads: int = 2
    work: Path = Path("runs/bench_planner")
    out: Path = RESULTS / "planner.json"


def train(config: PlannerBenchConfig, name: str, model: LoopedConfig, seed: int, data: Path) -> Path:
    from embodylab.policies.planner.training import train_planner

    run = config.work / f"{name}_seed{seed}"
    train_planner(
        TrainPlannerConfig(
            data=str(data / "train.pairs.jsonl"),
            eval_data=str(data / "heldout_apartments.pairs.jsonl"),
            out=str(run),
            model=model,
            steps=config.steps,
            batch_size=config.batch_size,
            seed=seed,
            threads=config.threads,
            resume=True,
        )
    )
    return run


def main(config: PlannerBenchConfig) -> dict:
    import torch

    torch.set_num_threads(config.threads)
    data = config.work / "data"
    if not (data / "train.pairs.jsonl").is_file():
        generate_dataset(data, n_train=config.train_examples, seed=0)
    examples = {s: read_examples(data / f"{s}.jsonl")[: config.eval_examples] for s in HELD_OUT}
    apartments = StartStates()
    models = baseline_configs(config.model)
    runs: dict = {}
    for seed in config.seeds:
        for name, model in models.items():
            run = train(config, name, model, seed, data)
            for grounded in (False, True):
                planner = LoopedPlanner(run, grounded=grounded)
                key = f"{name}{'+grounded' if grounded else ''}"
                runs.setdefault(key, {})[seed] = {
                    s: evaluate_examples(planner, examples[s], apartments) for s in HELD_OUT
                }
            if name == "looped":
                curve = {}
                for loops in range(1, 2 * config.model.loops + 1):
                    planner = LoopedPlanner(run, loops=loops)
                    curve[loops] = {
                        s: evaluate_examples(planner, examples[s], apartments)["sr"]
                        for s in ("deeper", "longer")
                    }
                runs.setdefault("looped+grounded loops curve", {})[seed] = curve
                gate = LoopedPlanner(run, exit="gate", loops=2 * config.model.loops)
                runs.setdefault("looped+grounded gate", {})[seed] = {
                    s: evaluate_examples(gate, examples[s], apartments) for s in HELD_OUT
                }
    rows = []
    for key, per_seed in runs.items():
        if "curve" in key:
            continue
        for split in HELD_OUT:
            values = [per_seed[seed][split] for seed in per_seed]
            mean = {
                m: _mean([v[m] for v in values])
                for m in (
                    "sr",
                    "exec",
                    "gcr",
                    "hallucination_rate",
                    "cannot_accuracy",
                    "latency_p50_s",
                    "mean_loops",
                )
            }
            rows.append([key, split, *(_fmt(mean[m]) for m in mean)])
    print_table(
        "planner (means over seeds)",
        ["planner", "split", "SR", "Exec", "GCR", "hallucinated", "cannot acc.", "p50 s", "loops"],
        rows,
    )
    result = {
        "machine": machine_info(),
        "config": asdict(replace(config, work=str(config.work), out=str(config.out))),
        "runs": runs,
    }
    write_json(config.out, result)
    _plot(
        runs.get("looped+grounded loops curve", {}),
        config.out.with_name("planner_loops.png"),
        config.model.loops,
    )
    return result


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.3g}"


def _plot(curves: dict, path: Path, trained_loops: int) -> None:
    if not curves:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    for split in ("deeper", "longer"):
        loops = sorted(next(iter(curves.values())))
        ax.plot(
            loops,
            [_mean([c[r][split] for c in curves.values()]) or 0 for r in loops],
            marker="o",
            label=split,
        )
    ax.axvline(trained_loops, color="grey", linestyle=":", label="trained mean L")
    ax.set_xlabel("test-time loops R")
    ax.set_ylabel("SR (grounded)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main(tyro.cli(PlannerBenchConfig))
