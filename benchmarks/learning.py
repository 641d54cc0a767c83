"""Sample efficiency of `embodylab train` (slow; not part of `make test`).

Each named run trains with the library defaults (and the task presets of `embodylab.policies.config`) and evaluates every `eval_every` env steps (20 episodes,
deterministic policy); a run stops early once its evaluated success has held its bar for `patience`
evaluations in a row, so long budgets are spent only where needed. Runs go to `runs/bench/NAME_sSEED/`
and execute `workers` at a time (one torch thread each), in the order of `--groups`; a run interrupted
earlier is resumed from its last checkpoint. Results are written after every finished run to
benchmarks/results/learning.json, with one curve PNG per run group in benchmarks/results/learning_*.png.

    python benchmarks/learning.py                      # every group, 2 workers
    python benchmarks/learning.py --groups reach       # one group
"""

from __future__ import annotations

import csv
import json
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path

import tyro
from common import machine_info, write_json

from embodylab.policies.config import Curriculum, Demos, Her, Sac, SacDemos, Td3, Tqc, TrainConfig

RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Group:
    """Runs that share a task, a method and a bar: `bar` success within `config.steps` env steps."""

    config: TrainConfig
    """what each seed trains (its seed, run directory, early stop and output flags are set by `run_one`)"""
    bar: float
    seeds: tuple[int, ...]

    @property
    def env(self) -> str:
        return self.config.env

    @property
    def steps(self) -> int:
        return self.config.steps


def group(
    env: str,
    steps: int,
    bar: float,
    seeds: tuple[int, ...],
    algo: Sac | Td3 | Tqc | None = None,
    curriculum: Curriculum | None = None,
    eval_every: int = 2000,
) -> Group:
    """A group of runs of `algo` (default: SAC with the library's defaults) with HER."""
    algo = replace(algo if algo is not None else Sac(), her=Her())
    config = TrainConfig(env=env, algo=algo, curriculum=curriculum, steps=steps, eval_every=eval_every)
    return Group(config, bar, seeds)


def varied(
    base: Group,
    seeds: tuple[int, ...] | None = None,
    demos: dict | None = None,
    algo: dict | None = None,
    **config,
) -> Group:
    """`base` with other `seeds`, other fields of its demonstrations (`demos`), of its algorithm (`algo`)
    and of its `TrainConfig` (`config`)."""
    algorithm = replace(base.config.algo, **(algo or {}))
    if demos:
        algorithm = replace(algorithm, demos=replace(algorithm.demos, **demos))
    train_config = replace(base.config, algo=algorithm, **config)
    return replace(base, config=train_config, seeds=base.seeds if seeds is None else seeds)


def hand_start(bandit: str, target_share: float = 0.0) -> Curriculum:
    """A curriculum over LabPush's hand-start arms (`embodylab.envs.lab.push.hand_start_arms`)."""
    return Curriculum(bandit=bandit, variants="hand_start", target_share=target_share)


PUSH = "embodylab/LabPush-v0"
DEMOS = SacDemos(record=20)
"""20 expert episodes recorded into each run"""
PUSH_EXPLORATION = {"random_action_prob": 0.3, "action_l2": 1.0}
"""DDPG+HER's exploration on LabPush: 30% uniformly random actions and the squared-action penalty (README,
"Training"); the library defaults leave both off."""

HER_PAPER_NETWORKS = {"net_arch": (256, 256, 256), "gradient_steps": 25}
"""DDPG+HER's 3x256 networks, with one update per two env steps (DDPG+HER: 40 per 100) so that a step costs
about what the 64x64 defaults at one update per step cost."""

PUSH_FIXED_ENTROPY = {**PUSH_EXPLORATION, "ent_coef": 0.05}
"""PUSH_EXPLORATION with SAC's entropy coefficient held at 0.05: learned, it falls to ~0.004 on LabPush."""

PUSH_DEMOS_IBRL = group(
    PUSH, 50_000, 0.80, (0, 1, 2), Sac(demos=replace(DEMOS, ibrl=True), **PUSH_FIXED_ENTROPY)
)
"""LabPush with 20 demos and imitation-bootstrapped RL: a policy cloned from the demos proposes actions."""

PUSH_DEMOS_IBRL_HAND_START = varied(PUSH_DEMOS_IBRL, curriculum=hand_start("ucb"))
"""IBRL with 20 demos on LabPush (`push_demos_ibrl`) under a UCB curriculum over the hand's start state."""

PUSH_DEMOS_WIDE = varied(PUSH_DEMOS_IBRL, curriculum=hand_start("uniform"), algo={"net_arch": (256, 256)})
"""`push_demos_ibrl_hand_start_uniform` with 256x256 networks: the best LabPush + demos recipe, which the
`_wide_*` groups vary."""

PUSH_HAND_START_UNIFORM = group(
    PUSH, 200_000, 0.80, (0,), Sac(**PUSH_FIXED_ENTROPY), hand_start("uniform"), eval_every=5000
)
"""LabPush without demos, the online episodes' start states drawn uniformly from the hand-start arms."""

PICKPLACE_DEMOS = group("embodylab/LabPickPlace-v0", 200_000, 0.70, (0,), Sac(demos=DEMOS), eval_every=5000)
"""LabPickPlace with 20 demos and the library's defaults."""

PICKPLACE_DEMOS_IBRL = varied(
    PICKPLACE_DEMOS, algo={**PUSH_FIXED_ENTROPY, "demos": replace(DEMOS, ibrl=True)}
)
"""LabPickPlace with 20 demos and IBRL, LabPush's settings."""

GROUPS = {
    "reach": group("embodylab/LabReach-v0", 20_000, 0.95, (0, 1, 2), eval_every=1000),
    "push": group(PUSH, 200_000, 0.80, (0,), Sac(**PUSH_EXPLORATION), eval_every=5000),
    "push_demos": group(PUSH, 50_000, 0.80, (0, 1, 2), Sac(demos=DEMOS, **PUSH_EXPLORATION)),
    "push_large": group(
        PUSH, 200_000, 0.80, (0,), Sac(**PUSH_EXPLORATION, **HER_PAPER_NETWORKS), eval_every=5000
    ),
    "push_large_td3": group(
        PUSH, 200_000, 0.80, (0,), Td3(random_action_prob=0.3, **HER_PAPER_NETWORKS), eval_every=5000
    ),
    # push_demos' settings for 200k steps: how far the demonstrations carry past their 50k bar.
    "push_demos_long": group(
        PUSH, 200_000, 0.80, (0, 1), Sac(demos=DEMOS, **PUSH_EXPLORATION), eval_every=5000
    ),
    # push_demos with the RL Zoo's FetchPush target settings (faster target networks, shorter horizon).
    "push_demos_zoo_targets": group(
        PUSH, 50_000, 0.80, (0,), Sac(demos=DEMOS, **PUSH_EXPLORATION, tau=0.05, gamma=0.95)
    ),
    # push_demos with SAC's entropy coefficient held fixed instead of learned.
    "push_demos_fixed_entropy": group(PUSH, 50_000, 0.80, (0, 1, 2), Sac(demos=DEMOS, **PUSH_FIXED_ENTROPY)),
    # push_demos_fixed_entropy with imitation-bootstrapped RL: a policy cloned from the demos proposes actions.
    "push_demos_ibrl": PUSH_DEMOS_IBRL,
    # push_demos_ibrl with half of the training episodes starting from states along the demonstrations
    # (Nair et al. 2018), which were tried only before IBRL, with the hand starting 0.36 m up.
    "push_demos_ibrl_demo_resets": varied(PUSH_DEMOS_IBRL, demos={"reset_prob": 0.5}),
    # push_demos_ibrl with 3-step returns (HER relabels every reward of the sum): the goal's reward
    # reaches the start ~40-60 steps back in a third of the updates.
    "push_demos_ibrl_nstep3": varied(PUSH_DEMOS_IBRL, algo={"n_step_return": 3}),
    "push_demos_ibrl_long": varied(PUSH_DEMOS_IBRL, seeds=(0, 1), steps=200_000, eval_every=5000),
    # push_demos_fixed_entropy and push with the entropy coefficient held fixed, over the 200k budget.
    "push_demos_fixed_entropy_long": group(
        PUSH, 200_000, 0.80, (0, 1), Sac(demos=DEMOS, **PUSH_FIXED_ENTROPY), eval_every=5000
    ),
    "push_fixed_entropy": group(PUSH, 200_000, 0.80, (0,), Sac(**PUSH_FIXED_ENTROPY), eval_every=5000),
    # push_demos_fixed_entropy with four critic and actor updates per env step instead of one and LayerNorm
    # in the critics: RLPD's recipe for sample efficiency from demonstrations (it uses 20 updates per step).
    "push_demos_fixed_entropy_utd4": group(
        PUSH,
        50_000,
        0.80,
        (0,),
        Sac(demos=DEMOS, **PUSH_FIXED_ENTROPY, gradient_steps=200, critic_layer_norm=True),
    ),
    # push_demos_fixed_entropy with TQC (sb3-contrib), the RL Zoo's algorithm for FetchPush: distributional
    # critics with the top quantiles dropped against overestimation. TQC has no BC term nor action penalty.
    "push_demos_tqc": group(
        PUSH, 50_000, 0.80, (0, 1, 2), Tqc(demos=Demos(record=20), random_action_prob=0.3, ent_coef=0.05)
    ),
    "pickplace_demos": PICKPLACE_DEMOS,
    # pickplace_demos with LabPush's best settings so far (push_demos_fixed_entropy_long).
    "pickplace_demos_fixed_entropy": varied(PICKPLACE_DEMOS, algo=PUSH_FIXED_ENTROPY),
    # pickplace_demos_fixed_entropy with imitation-bootstrapped RL.
    "pickplace_demos_ibrl": PICKPLACE_DEMOS_IBRL,
    # pickplace_demos_ibrl with 3-step returns (push_demos_ibrl_nstep3).
    "pickplace_demos_ibrl_nstep3": varied(PICKPLACE_DEMOS_IBRL, algo={"n_step_return": 3}),
    # IBRL on LabPickPlace with the 256x256 networks that took LabPush+demos from 155k to 70k.
    "pickplace_demos_ibrl_wide": varied(PICKPLACE_DEMOS_IBRL, seeds=(0, 1), algo={"net_arch": (256, 256)}),
    "push_curriculum_ucb": group(
        PUSH, 200_000, 0.80, (0,), Sac(**PUSH_EXPLORATION), Curriculum("ucb"), eval_every=5000
    ),
    "push_uniform_bins": group(
        PUSH, 200_000, 0.80, (0,), Sac(**PUSH_EXPLORATION), Curriculum("uniform"), eval_every=5000
    ),
    # The curriculum against uniform bins where LabPush learns: with 20 demos and SAC's entropy fixed
    # (push_demos_fixed_entropy_long); without demos no bin showed learning progress.
    "push_demos_curriculum_ucb": group(
        PUSH, 200_000, 0.80, (0,), Sac(demos=DEMOS, **PUSH_FIXED_ENTROPY), Curriculum("ucb"), eval_every=5000
    ),
    "push_demos_uniform_bins": group(
        PUSH,
        200_000,
        0.80,
        (0,),
        Sac(demos=DEMOS, **PUSH_FIXED_ENTROPY),
        Curriculum("uniform"),
        eval_every=5000,
    ),
    # Without demonstrations, a start-state curriculum: the hand starts 5-10 cm or 10-20 cm from the cube,
    # or as usual (`hand_start_arms`), where random actions move the cube in ~50% / ~12% / ~5-10% of the
    # episodes; evaluation runs the unchanged task. UCB by learning progress against uniform over the arms.
    "push_hand_start_ucb": varied(PUSH_HAND_START_UNIFORM, curriculum=hand_start("ucb")),
    "push_hand_start_uniform": PUSH_HAND_START_UNIFORM,
    # push_demos_ibrl (20 demos, 50k) with a curriculum over the online episodes' start states (the demos
    # and evaluation keep the unchanged task): UCB by learning progress against uniform over the same arms.
    "push_demos_ibrl_hand_start_ucb": PUSH_DEMOS_IBRL_HAND_START,
    "push_demos_ibrl_hand_start_uniform": varied(PUSH_DEMOS_IBRL, curriculum=hand_start("uniform")),
    # ... and UCB with a third of the episodes on the unchanged task, as uniform has (UCB alone moved every
    # episode to the nearest start and scored below uniform).
    "push_demos_ibrl_hand_start_ucb_target": varied(PUSH_DEMOS_IBRL, curriculum=hand_start("ucb", 1 / 3)),
    # push_hand_start_uniform (no demos, 200k) with 3-step returns: its nearest arm moved the cube in half
    # the random episodes, yet training success there stayed at 0-1% with one-step targets.
    "push_hand_start_uniform_nstep3": varied(
        PUSH_HAND_START_UNIFORM, seeds=(0, 1, 2), algo={"n_step_return": 3}
    ),
    "push_demos_ibrl_hand_start_uniform_nstep3": varied(
        PUSH_DEMOS_IBRL, curriculum=hand_start("uniform"), algo={"n_step_return": 3}
    ),
    "push_hand_start_uniform_nstep5": varied(PUSH_HAND_START_UNIFORM, algo={"n_step_return": 5}),
    # push_hand_start_uniform_nstep3 without the start-state arms: what the 3-step returns do alone.
    "push_nstep3": varied(PUSH_HAND_START_UNIFORM, curriculum=None, algo={"n_step_return": 3}),
    # The best 50k recipe so far (push_demos_ibrl_hand_start_uniform) with two gradient updates per env step:
    # compute for samples, without the LayerNorm critics of the 4-update run (push_demos_fixed_entropy_utd4).
    "push_demos_ibrl_hand_start_uniform_utd2": varied(
        PUSH_DEMOS_IBRL, curriculum=hand_start("uniform"), algo={"gradient_steps": 100}
    ),
    # The same recipe with 256x256 networks (the width RLPD and SB3's SAC defaults use) instead of 64x64,
    # at one update per step: more capacity per sample rather than more updates per sample.
    "push_demos_ibrl_hand_start_uniform_wide": PUSH_DEMOS_WIDE,
    # The 256x256 recipe for 200k steps: where it first reaches 80% (see docs/experiments.md).
    "push_demos_ibrl_hand_start_uniform_wide_long": varied(
        PUSH_DEMOS_WIDE, seeds=(0, 1, 2), steps=200_000, eval_every=5000
    ),
    # ... and with DDPG+HER's three 256-wide layers.
    "push_demos_ibrl_hand_start_uniform_wide3": varied(
        PUSH_DEMOS_IBRL, curriculum=hand_start("uniform"), algo={"net_arch": (256, 256, 256)}
    ),
    # The 256x256 recipe with 3-step returns.
    "push_demos_ibrl_hand_start_uniform_wide_nstep3": varied(
        PUSH_DEMOS_WIDE, seeds=(0,), algo={"n_step_return": 3}
    ),
    # The 256x256 recipe with batches of 512 (more samples per update), and with Adam's rate at 3e-4 (SB3's and
    # RLPD's for 256-wide networks) instead of 1e-3.
    "push_demos_ibrl_hand_start_uniform_wide_batch512": varied(
        PUSH_DEMOS_WIDE, seeds=(0,), algo={"batch_size": 512}
    ),
    "push_demos_ibrl_hand_start_uniform_wide_lr3e4": varied(
        PUSH_DEMOS_WIDE, seeds=(0,), algo={"learning_rate": 3e-4}
    ),
    # Without demonstrations: the only no-demo recipe that learned on one seed (start states, 3-step returns)
    # with the 256x256 networks that took the demos recipe from 155k to 70k (see docs/experiments.md).
    "push_hand_start_uniform_nstep3_wide": varied(
        PUSH_HAND_START_UNIFORM, seeds=(0,), algo={"n_step_return": 3, "net_arch": (256, 256)}
    ),
}


@dataclass
class LearningBenchConfig:
    groups: list[str] = field(default_factory=lambda: list(GROUPS))
    workers: int = 2
    patience: int = 3
    """consecutive evaluations at or above the bar after which a run stops early"""
    collect_only: bool = False
    """train nothing: summarise the runs already under `runs` (e.g. stopped at a deadline)"""
    max_seeds: int | None = None
    """run only the first N seeds of each group (the JSON records how many ran)"""
    seeds: list[int] | None = None
    """run only these of each group's seeds (e.g. to add a seed to a group whose others have run)"""
    out: Path = RESULTS / "learning.json"
    runs: Path = Path("runs/bench")


def run_one(name: str, seed: int, runs: str, patience: int) -> dict:
    """Trains one seed of group `name` in this (worker) process; returns its curve and summary."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    from embodylab.policies.rl import train

    group = GROUPS[name]
    run_dir = Path(runs) / f"{name}_s{seed}"
    config = replace(
        group.config,
        seed=seed,
        out=str(run_dir),
        video=False,
        progress=False,
        stop_success=group.bar,
        stop_patience=patience,
    )
    resumed = (run_dir / "config.json").exists()
    if resumed:  # an earlier invocation's run, interrupted or finished: continue it
        config = TrainConfig(resume=str(run_dir), progress=False)
    start = time.perf_counter()
    train(config)
    # A resumed run's time is the evaluation log's (since its last start), not this call's: continuing a
    # finished run takes seconds.
    return read_run(name, seed, runs, wall=None if resumed else time.perf_counter() - start)


def read_run(name: str, seed: int, runs: str, wall: float | None = None) -> dict:
    """The curve and summary of run `name_sSEED` from its evaluations.csv. A run that neither reached
    its budget nor held its bar (stopped from outside, e.g. at a deadline) is marked `unfinished`; its
    wall time is then the csv's last entry, the seconds since its last (re)start."""
    group = GROUPS[name]
    with (Path(runs) / f"{name}_s{seed}" / "evaluations.csv").open() as f:
        curve = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    reached = next((row["step"] for row in curve if row["success_rate"] >= group.bar), None)
    env_steps = curve[-1]["step"] if curve else 0
    return {
        "group": name,
        "seed": seed,
        "curve": curve,
        "steps_to_bar": reached,
        "final_success": curve[-1]["success_rate"] if curve else None,
        "best_success": max((row["success_rate"] for row in curve), default=None),
        "wall_time_s": wall if wall is not None else (curve[-1]["wall_time_s"] if curve else 0.0),
        "env_steps": env_steps,
        "unfinished": reached is None and env_steps < group.steps,
    }


def summarise(name: str, results: list[dict]) -> dict:
    group = GROUPS[name]
    reached = [r["steps_to_bar"] for r in results]
    return {
        "env": group.env,
        "steps": group.steps,
        "bar": group.bar,
        "seeds": list(group.seeds),
        "config": json.loads(group.config.to_json()),
        "bar_text": f">= {group.bar:.0%} success within {group.steps:,} env steps",
        "seeds_run": len(results),
        "seeds_reaching_bar": sum(r is not None for r in reached),
        "median_steps_to_bar": statistics.median(reached) if all(r is not None for r in reached) else None,
        "best_success": [r["best_success"] for r in results],
        "wall_time_s": [round(r["wall_time_s"], 1) for r in results],
        "met": all(r is not None and r <= group.steps for r in reached),
        "unfinished_seeds": [r["seed"] for r in results if r.get("unfinished")],
        "runs": results,
    }


def plot(name: str, results: list[dict], directory: Path = RESULTS) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    group = GROUPS[name]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for r in results:
        ax.plot(
            [p["step"] for p in r["curve"]],
            [p["success_rate"] for p in r["curve"]],
            label=f"seed {r['seed']}",
        )
    ax.axhline(group.bar, color="grey", linestyle="--", label=f"bar {group.bar:.0%}")
    ax.set_xlabel("env steps")
    ax.set_ylabel("eval success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{name}\n{group.config.algo.name.upper()}+HER on {group.env.split('/')[-1]}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = directory / f"learning_{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(config: LearningBenchConfig) -> None:
    unknown = sorted(set(config.groups) - set(GROUPS))
    if unknown:
        raise SystemExit(f"unknown groups {unknown}; valid groups: {', '.join(GROUPS)}")
    jobs = [
        (name, seed)
        for name in config.groups
        for seed in GROUPS[name].seeds[: config.max_seeds]
        if config.seeds is None or seed in config.seeds
    ]
    done: dict[str, list[dict]] = {name: [] for name in config.groups}
    if config.collect_only:
        for name, seed in jobs:
            if (config.runs / f"{name}_s{seed}" / "evaluations.csv").exists():
                done[name].append(read_run(name, seed, str(config.runs)))
        _merge_into(config.out, {n: r for n, r in done.items() if r})
        return
    with ProcessPoolExecutor(max_workers=config.workers) as pool:
        futures = {pool.submit(run_one, n, s, str(config.runs), config.patience): (n, s) for n, s in jobs}
        for future in as_completed(futures):
            result = future.result()
            done[result["group"]].append(result)
            name = result["group"]
            print(
                f"{name} seed {result['seed']}: best {result['best_success']:.2f}, "
                f"steps to bar {result['steps_to_bar']}, {result['wall_time_s']:.0f} s",
                flush=True,
            )
            _merge_into(config.out, {n: r for n, r in done.items() if r})


def _merge_into(out: Path, finished: dict[str, list[dict]]) -> None:
    """Writes the `finished` runs into `out` and redraws their groups' curves, keeping the groups, the other
    seeds of these groups and the other top-level keys already there: a seed added with `--seeds` joins the
    seeds that ran before, whose run folders may be gone. The file is read at every write, not once at the
    start: another invocation running other groups side by side writes into it too."""

    document = json.loads(out.read_text()) if out.exists() else {}
    groups = dict(document.get("groups", {}))
    for name, results in finished.items():
        new_seeds = {r["seed"] for r in results}
        kept = [r for r in groups.get(name, {}).get("runs", []) if r["seed"] not in new_seeds]
        merged = sorted([*kept, *results], key=lambda r: r["seed"])
        groups[name] = summarise(name, merged)
        plot(name, merged, out.parent)
    write_json(out, {**document, "machine": machine_info(), "groups": groups})


if __name__ == "__main__":
    main(tyro.cli(LearningBenchConfig))
