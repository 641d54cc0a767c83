"""Cross-check of the learner on the anchor task: `embodylab train`'s SAC+HER on Gymnasium-Robotics
FetchPush-v4, with the settings of a `benchmarks/learning.py` group (slow; not part of `make test`).

LabPush's bars are set against the HER paper's Fetch Push curves. Training the same model (`make_model`,
the same AlgoConfig, the same observation normalisation and relative goal features) on FetchPush itself
separates what the learner cannot do from what makes LabPush harder. FetchPush needs MuJoCo 3.3, so this
runs in its own venv (Fetch's pins plus the learning stack, `benchmarks/peers/requirements-fetch-rl.txt`;
embodylab installed without its dependencies):

    make bench-learning-fetch                                   # builds the venv, then the line below
    cd benchmarks && ../.bench-venvs/fetch-rl/bin/python learning_fetch.py --group push_large

Evaluates 20 deterministic episodes every `eval_every` env steps; writes
benchmarks/results/learning_fetch.json (the curve, the group's settings, wall time) and a curve PNG.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import tyro
from common import machine_info, write_json
from learning import GROUPS, RESULTS
from push_start_stats import FETCH_GRIPPER_SLICE


@dataclass
class FetchCrossCheckConfig:
    group: str = "push_large"
    """the benchmarks/learning.py group whose algorithm config (without demonstrations) is trained"""
    env: str = "FetchPush-v4"
    steps: int = 200_000
    eval_every: int = 5000
    eval_episodes: int = 20
    seed: int = 0
    out: Path = RESULTS / "learning_fetch.json"
    plot_only: bool = False
    """train nothing: add the zero-action baseline to an existing `out` if it lacks one, and redraw its plot"""


def main(config: FetchCrossCheckConfig) -> None:
    os.environ.setdefault("MUJOCO_GL", "egl")
    import gymnasium as gym
    import gymnasium_robotics
    import torch
    from tqdm import tqdm

    from embodylab.policies.config import TrainConfig
    from embodylab.policies.evaluation import run_episodes
    from embodylab.policies.factory import make_model

    gym.register_envs(gymnasium_robotics)
    if config.plot_only:
        document = json.loads(config.out.read_text())
        if "zero_action_success" not in document:
            document["zero_action_success"] = zero_action_success(
                gym.make(document["env"]), config.eval_episodes
            )
            write_json(config.out, document)
        _plot(config, document["curve"], document["zero_action_success"])
        return
    group = GROUPS[config.group]
    algo = replace(group.config.algo, demos=None)
    torch.set_num_threads(algo.torch_threads)
    train_config = TrainConfig(env=config.env, algo=algo, steps=config.steps, seed=config.seed)
    env, eval_env = gym.make(config.env), gym.make(config.env)
    baseline = zero_action_success(eval_env, config.eval_episodes)
    env.reset(seed=config.seed)
    # The relative goal features read the gripper where Fetch's observation holds it.
    model = make_model(train_config, env, tcp_slice=FETCH_GRIPPER_SLICE)

    curve, start = [], time.perf_counter()
    bar = tqdm(total=config.steps, desc=f"{algo.name.upper()}+HER {config.env}", unit="step")
    while model.num_timesteps < config.steps:
        model.learn(config.eval_every, reset_num_timesteps=False, progress_bar=False)
        result = run_episodes(model, eval_env, config.eval_episodes)
        curve.append(
            {
                "step": model.num_timesteps,
                "wall_time_s": round(time.perf_counter() - start, 1),
                "success_rate": result["success_rate"],
                "mean_return": result["mean_return"],
            }
        )
        bar.update(model.num_timesteps - bar.n)
        bar.set_postfix(eval_success=f"{result['success_rate']:.2f}")
        write_json(
            config.out,
            {
                "machine": machine_info(),
                "env": config.env,
                "group": config.group,
                "algo": algo.name,
                "algo_config": asdict(algo.resolved(config.env)),
                "seed": config.seed,
                "steps": config.steps,
                "best_success": max(p["success_rate"] for p in curve),
                "zero_action_success": baseline,
                "curve": curve,
            },
        )
        _plot(config, curve, baseline)
    bar.close()


class StandStill:
    """A policy that always commands zero: the baseline of doing nothing, played by `run_episodes`."""

    def __init__(self, action_space):
        self.action = np.zeros(action_space.shape, dtype=action_space.dtype)

    def predict(self, obs, deterministic: bool = True):
        return self.action, None


def zero_action_success(env, episodes: int) -> float:
    """Success rate of standing still on the evaluation seeds: FetchPush draws some goals within its 5 cm
    threshold of the object (LabPush's goals start at least 10 cm away: 0%)."""
    from embodylab.policies.evaluation import run_episodes

    return run_episodes(StandStill(env.action_space), env, episodes)["success_rate"]


def _plot(config: FetchCrossCheckConfig, curve: list[dict], baseline: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([p["step"] for p in curve], [p["success_rate"] for p in curve], label=f"seed {config.seed}")
    ax.axhline(baseline, color="grey", linestyle=":", label=f"zero actions ({baseline:.0%})")
    ax.set_xlabel("env steps")
    ax.set_ylabel("eval success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{config.group} settings on {config.env}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(config.out.with_suffix(".png"), dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main(tyro.cli(FetchCrossCheckConfig))
