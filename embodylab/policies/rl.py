"""Off-policy RL (SAC, TD3, TQC) with HER and demonstrations, and PPO, over Stable-Baselines3.

`train(TrainConfig(...)) -> Path` is the whole run, top to bottom: write config.json, (record demos),
build env and model, (resume from the last checkpoint), `model.learn` with three callbacks — progress
bar, periodic evaluation, checkpoints — then a final checkpoint and the learning-curve PNG. The
`embodylab train` command is a thin layer over it.

    runs/NAME/config.json          the TrainConfig; `load_config(run_dir)` re-creates the run
    runs/NAME/checkpoints/step_N/  model.zip, buffer.npz, state.json (see checkpoint.py); the last 2
    runs/NAME/tb/                  TensorBoard: rollout/ (return, success rate), train/ (losses), eval/
    runs/NAME/evaluations.csv      step, wall time, success rate, return, length per evaluation
    runs/NAME/videos/step_N.mp4    first episode of each evaluation
    runs/NAME/learning_curve.png   success rate and return against env steps
    runs/NAME/demos/               the Minari dataset recorded by `demos --record N`
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import configure
from tqdm import tqdm

from embodylab.envs.registry import resolve_env_id
from embodylab.policies.checkpoint import (
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from embodylab.policies.config import (
    SacDemos,
    TrainConfig,
    load_config,
)
from embodylab.policies.demo_resets import DemoStateResets, demonstration_states
from embodylab.policies.demos import (
    load_demo_episodes,
    record_demos,
)
from embodylab.policies.evaluation import append_evaluation, plot_learning_curve, run_episodes
from embodylab.policies.factory import make_env, make_model
from embodylab.policies.ibrl import fit_proposal

__all__ = ["TrainConfig", "train"]


def _wrap_for_curriculum(env: gym.Env, config: TrainConfig) -> tuple[gym.Env, BaseCallback]:
    """The env wrapped by the bandit curriculum of `config.curriculum`, and the callback that logs it.

    The hook `embodylab.policies.curriculum` provides: `wrap_for_curriculum(env, name, seed, variants, target_share) -> env`,
    whose result exposes the `teacher` that `CurriculumCallback(teacher)` logs."""
    curriculum = config.curriculum
    try:
        from embodylab.policies.curriculum import CurriculumCallback, wrap_for_curriculum
    except ImportError as err:
        raise NotImplementedError(
            f"curriculum {curriculum.bandit!r} needs embodylab.policies.curriculum.wrap_for_curriculum, "
            f"which is not available ({err}); use no-curriculum"
        ) from err
    env = wrap_for_curriculum(
        env, curriculum.bandit, config.seed, curriculum.variants, curriculum.target_share
    )
    return env, CurriculumCallback(env.get_wrapper_attr("teacher"))


def _fit_proposal(model: BaseAlgorithm, config: TrainConfig) -> None:
    """IBRL: clone the run's demonstrations into the policy's proposal before the first step."""
    demos = config.demos
    episodes = load_demo_episodes(demos.dataset, model.observation_space, model.action_space)
    loss = fit_proposal(model.policy.bc_proposal, episodes, updates=demos.ibrl_bc_updates, seed=config.seed)
    model.logger.record("train/ibrl_bc_loss", loss)


# ---- callbacks ----------------------------------------------------------------------------------------
class ProgressBar(BaseCallback):
    """A tqdm bar over the run's total env steps, starting where a resumed run left off."""

    def __init__(self, total: int, description: str, latest: dict):
        super().__init__()
        self.total, self.description, self.latest = total, description, latest

    def _on_training_start(self) -> None:
        self.bar = tqdm(total=self.total, initial=self.num_timesteps, desc=self.description, unit="step")

    def _on_step(self) -> bool:
        self.bar.update(self.num_timesteps - self.bar.n)
        if "success_rate" in self.latest:
            self.bar.set_postfix(eval_success=f"{self.latest['success_rate']:.2f}", refresh=False)
        return True

    def _on_training_end(self) -> None:
        self.bar.close()


class PeriodicEvaluation(BaseCallback):
    """Every `config.eval_every` env steps: deterministic episodes on the fixed evaluation seeds, logged
    to TensorBoard (`eval/`) and `evaluations.csv`, the first episode recorded to `videos/step_N.mp4`."""

    def __init__(self, config: TrainConfig, run_dir: Path, latest: dict):
        super().__init__()
        self.config, self.run_dir, self.latest = config, run_dir, latest
        self.env = make_env(config, render=config.video)

    def _on_training_start(self) -> None:
        every = self.config.eval_every
        self.next_eval = (self.num_timesteps // every + 1) * every
        self.start = time.perf_counter()
        self.streak = 0

    def _on_step(self) -> bool:
        if self.num_timesteps < self.next_eval:
            return True
        self.next_eval += self.config.eval_every
        step = self.num_timesteps
        video = self.run_dir / "videos" / f"step_{step}.mp4" if self.config.video else None
        result = run_episodes(self.model, self.env, self.config.eval_episodes, video=video)
        for key in ("success_rate", "mean_return", "mean_length"):
            self.logger.record(f"eval/{key}", result[key])
        self.logger.dump(step)
        append_evaluation(self.run_dir, step, time.perf_counter() - self.start, result)
        self.latest.update(result)
        # Early stop (returning False ends model.learn) once success has held for `stop_patience` evals.
        target = self.config.stop_success
        self.streak = self.streak + 1 if target and result["success_rate"] >= target else 0
        return not (target and self.streak >= self.config.stop_patience)

    def _on_training_end(self) -> None:
        self.env.close()


class PeriodicCheckpoint(BaseCallback):
    """A checkpoint at the first round boundary after every `every` env steps. At a rollout's start the
    previous round's transitions are all stored and its updates done, so weights and buffer agree."""

    def __init__(self, run_dir: Path, every: int):
        super().__init__()
        self.run_dir, self.every = run_dir, every

    def _on_training_start(self) -> None:
        self.next_checkpoint = (self.num_timesteps // self.every + 1) * self.every

    def _on_rollout_start(self) -> None:
        if self.num_timesteps >= self.next_checkpoint:
            save_checkpoint(self.model, self.run_dir)
            self.next_checkpoint = (self.num_timesteps // self.every + 1) * self.every

    def _on_step(self) -> bool:
        return True


# ---- the run ------------------------------------------------------------------------------------------
def _start_run(config: TrainConfig) -> tuple[TrainConfig, Path]:
    """A new run directory with config.json (and the recorded demonstrations)."""
    run_dir = Path(config.out)
    if list_checkpoints(run_dir):
        raise ValueError(
            f"{run_dir} already holds a run; continue it with --resume {run_dir} or choose another --out"
        )
    # The full id in config.json: `LabReach` and `embodylab/LabReach-v0` name the same run.
    config = replace(config, env=resolve_env_id(config.env))
    run_dir.mkdir(parents=True, exist_ok=True)
    demos = config.demos
    if demos is not None and demos.record:
        with make_env(config) as demo_env:
            dataset = record_demos(demo_env, demos.record, run_dir / "demos", seed=config.seed)
        # config.json names the dataset, so that a resumed run or an evaluation finds the same demos.
        config = replace(
            config, algo=replace(config.algo, demos=replace(demos, record=0, dataset=str(dataset)))
        )
    # config.json records the values the run used, the task preset's included.
    config = replace(config, algo=config.algo.resolved(config.env))
    (run_dir / "config.json").write_text(config.to_json())
    return config, run_dir


def train(config: TrainConfig) -> Path:
    """Trains `config` (or, with `config.resume`, continues that run from its last checkpoint, replay
    buffer included, up to its configured `steps`). Returns the run directory."""
    config.validate()
    resumed = config.resume is not None
    if resumed:
        run_dir = Path(config.resume)
        config = load_config(run_dir)
        checkpoint = latest_checkpoint(run_dir)
    else:
        config, run_dir = _start_run(config)
    th.set_num_threads(config.algo.torch_threads)

    env = make_env(config)
    demos, demo_resets = config.demos, None
    if demos is not None and demos.reset_prob:
        # States before each demonstration's success: the holds after it teach nothing (see there).
        states = demonstration_states(env, demos.dataset, before_success=True)
        env = demo_resets = DemoStateResets(env, states, demos.reset_prob, config.seed)
    callbacks: list[BaseCallback] = []
    if config.curriculum is not None:
        env, curriculum_callback = _wrap_for_curriculum(env, config)
        callbacks.append(curriculum_callback)
    model = make_model(config, env)
    if resumed:
        load_checkpoint(model, checkpoint)
        # Fresh randomness for the continuation (env goals, exploration), still a function of the seed.
        model.set_random_seed(config.seed + model.num_timesteps)
        if demo_resets is not None:
            demo_resets.reseed(config.seed + model.num_timesteps)
    model.set_logger(configure(str(run_dir / "tb"), ["tensorboard"]))
    if (
        isinstance(demos, SacDemos) and demos.ibrl and not resumed
    ):  # a resumed run's proposal comes with its weights
        _fit_proposal(model, config)

    latest: dict = {}
    if config.progress:
        callbacks.append(ProgressBar(config.steps, f"{config.algo.name} {config.env}", latest))
    if config.eval_every:
        callbacks.append(PeriodicEvaluation(config, run_dir, latest))
    if config.checkpoint_every:
        callbacks.append(PeriodicCheckpoint(run_dir, config.checkpoint_every))
    remaining = config.steps - model.num_timesteps
    if remaining > 0:
        model.learn(remaining, callback=CallbackList(callbacks), reset_num_timesteps=not resumed)
    save_checkpoint(model, run_dir)
    plot_learning_curve(run_dir)
    env.close()
    return run_dir
