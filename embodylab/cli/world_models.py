"""The world-model subcommands of `embodylab`: collect, train-wm, eval-wm, train-value, plan-wm.

    embodylab collect --env LabClutter-v0 --policy noisy-expert --episodes 100 --n-objects 1 2 3 --out runs/data/c
    embodylab train-wm --dataset runs/data/c --out runs/wm --steps 2000
    embodylab eval-wm runs/wm --dataset runs/data/c_test --ood-dataset runs/data/c6
    embodylab plan-wm runs/wm --env LabPush-v0 --episodes 20 --record runs/data/c   # + on-policy data
    embodylab train-value --dataset runs/data/push --out runs/value   # TD-MPC2's terminal value
    embodylab plan-wm runs/wm --cost learned --value runs/value
    embodylab train-wm --dataset runs/data/c --init-from runs/wm --out runs/wm_dagger --steps 500

torch loads only when a command runs; the library's `ValueError`s on bad input become one-line errors in
`embodylab.cli.main`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import tyro

from embodylab.envs.registry import resolve_env_id
from embodylab.world_models.config import TrainValueConfig, TrainWMConfig, upgrade_wm


@dataclass
class Collect:
    """Play episodes with a random, expert or noisy-expert policy; write a world-model Minari dataset.

    The dataset holds the object-centric state (objects padded to 8, proprioception, goal), not the env's
    observations, so Minari's recover_environment() does not apply to it (its description says so): make
    the env with embodylab.make(ID) to act in it. Expert demonstrations for RL (`embodylab.policies.demos.record_demos`) are
    datasets of the env's own observations, which recover_environment() rebuilds."""

    env: str = "LabPush-v0"
    """env id (the embodylab/ namespace is optional)"""
    policy: Literal["random", "expert", "noisy-expert"] = "noisy-expert"
    episodes: int = 100
    out: Path = Path("runs/data")
    """root directory of the dataset (written as <out>/embodylab/<Task>/<name>-v0)"""
    noise: float = 0.3
    """action-noise std of noisy-expert (actions lie in [-1, 1])"""
    n_objects: tuple[int, ...] = ()
    """object counts cycled over the episodes, for tasks with the knob (LabClutter); empty: the default"""
    seed: int = 0
    """seed of the first episode"""
    name: str = ""
    """dataset name (default: the policy)"""

    def run(self) -> None:
        from embodylab.world_models.data import collect, load_dataset

        start = time.perf_counter()
        path = collect(
            resolve_env_id(self.env),
            self.policy,
            self.episodes,
            self.out,
            seed=self.seed,
            noise=self.noise,
            n_objects=self.n_objects,
            name=self.name or None,
        )
        data = load_dataset(path)
        print(
            f"{len(data)} episodes, {int(data.lengths.sum())} steps in {time.perf_counter() - start:.1f} s; "
            f"final success rate {data.success[range(len(data)), data.lengths - 1].mean():.2f}"
        )
        print(f"wrote the Minari dataset {path}")


@dataclass
class TrainWM(TrainWMConfig):
    """Train a world model on a collected dataset; progress bar, TensorBoard logs, checkpoints, --resume."""

    def run(self) -> None:
        from embodylab.world_models.training import train_world_model

        summary = train_world_model(self)
        print(
            f"{summary['model']}: {summary['parameters']} parameters, {summary['steps']} steps in "
            f"{summary['train_time_s']} s ({summary['samples_per_s']} samples/s); held-out loss {summary['val_loss']}"
        )
        print(f"wrote checkpoint/ and tb/ (tensorboard --logdir {Path(self.out) / 'tb'}) to {self.out}/")


@dataclass
class EvalWM:
    """Open-loop evaluation of a trained world model: position RMSE at horizons 1, 10, 25, best-of-K, NLL."""

    run_dir: tyro.conf.Positional[Path]
    """run directory written by `embodylab train-wm`"""
    dataset: Path | None = None
    """held-out dataset (default: the held-out episodes of the run's own dataset)"""
    ood_dataset: Path | None = None
    """a dataset of scenes with more objects than training saw (e.g. LabClutter with --n-objects 6)"""
    samples: int = 8
    """K sampled rollouts per window"""
    context: int = 4
    stride: int = 10
    """steps between window starts"""
    seed: int = 0

    def run(self) -> None:
        import torch

        from embodylab.world_models.data import load_dataset
        from embodylab.world_models.evaluation import evaluate_open_loop, plot_trajectories
        from embodylab.world_models.training import load_world_model, split

        torch.set_num_threads(1)
        model, meta = load_world_model(self.run_dir)
        if self.dataset is None:
            trained = upgrade_wm(meta["train"])  # any version's config.json
            held_out = split(load_dataset(trained.dataset), trained.val_every)[1]
        else:
            held_out = load_dataset(self.dataset)
        sets = {"held_out": held_out}
        if self.ood_dataset is not None:
            sets["more_objects"] = load_dataset(self.ood_dataset)
        report = {"run_dir": str(self.run_dir), "model": meta["model_kind"], "step": meta["step"]}
        for name, data in sets.items():
            counts = sorted({int(n) for n in data.n_objects})
            try:
                metrics = evaluate_open_loop(
                    model,
                    data,
                    context=self.context,
                    samples=self.samples,
                    stride=self.stride,
                    seed=self.seed,
                )
            except ValueError as err:  # the monolithic RSSM cannot take more objects than it was built for
                metrics = {"error": str(err)}
            else:
                plot = plot_trajectories(
                    model,
                    data,
                    self.run_dir / f"eval_wm_{name}.png",
                    context=self.context,
                    samples=self.samples,
                    title=f"{meta['model_kind']} on {name} ({'/'.join(map(str, counts))} objects)",
                )
                metrics["plot"] = str(plot)
            report[name] = {"object_counts": counts, **metrics}
            shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()}
            print(f"{name} ({'/'.join(map(str, counts))} objects): {shown}")
        (self.run_dir / "eval_wm.json").write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {self.run_dir / 'eval_wm.json'} and the trajectory plots eval_wm_*.png")


@dataclass
class PlanWM:
    """Control a task with MPPI over a trained world model (learned reward or shaped cost); success rate."""

    run_dir: tyro.conf.Positional[Path]
    """run directory written by `embodylab train-wm`"""
    ensemble: tuple[Path, ...] = ()
    """further run directories (models of the same task, e.g. trained with other seeds) that plan with
    RUN_DIR's as an ensemble: every sampled plan is scored by each member"""
    disagreement_weight: float = 1.0
    """with `--ensemble`: a plan's score is the members' mean return less this times their std
    (`MPPIConfig.disagreement_weight`; no effect on a single model). 1 is the weight of the benchmark's
    LabPush planner (README, world models)"""
    env: str = "LabPush-v0"
    episodes: int = 20
    seed: int = 1000
    """seed of the first episode (keep clear of the seeds the dataset was collected on)"""
    horizon: int = 12
    """planning horizon, control steps. The defaults of the optimiser (horizon, samples, iterations, elites)
    are those of the benchmark's LabPush planner (`benchmarks/world_model.py`)"""
    samples: int = 128
    iterations: int = 3
    elites: int = 16
    """best sequences the mean and std are refitted to (at most `samples`)"""
    cost: Literal["learned", "shaped"] = "shaped"
    """score of predicted states: the model's learned reward, or the shaped cost of its predicted positions
    (target to goal plus tcp to the pushing point behind the target; see `embodylab.world_models.planning`)"""
    prior: Literal["zero", "data"] = "zero"
    """nominal action of the plans: zero, or the mean action of the model's training data
    (`MPPIConfig.prior`)"""
    motion_weight: float = 0.0
    """MPPI's control cost: a plan's score loses this times its summed squared motion commands (the gripper
    command excepted; `MPPIConfig.motion_weight`)"""
    noise_beta: float = 0.0
    """sampling noise coloured 1/f^beta along the plan (0: white, MPPI's; 2: iCEM's smooth sequences;
    `MPPIConfig.noise_beta`)"""
    value: Path | None = None
    """a learned state value (`embodylab train-value`) that closes every plan, TD-MPC2's way: a plan scores
    its discounted learned rewards plus the discounted value of the state it ends in (needs `--cost learned`)"""
    record: Path | None = None
    """also write the episodes as a world-model dataset under this root (`embodylab/<Task>/planner-v0`):
    on-policy data to fine-tune the model on (`train-wm --init-from RUN`, a DAgger round)"""

    def run(self) -> None:
        import torch

        from embodylab.world_models.planning import MPPIConfig, run_planner
        from embodylab.world_models.training import load_world_model
        from embodylab.world_models.value import load_value

        torch.set_num_threads(1)
        models = [load_world_model(path)[0] for path in (self.run_dir, *self.ensemble)]
        value = load_value(self.value) if self.value is not None else None
        config = MPPIConfig(
            horizon=self.horizon,
            samples=self.samples,
            iterations=self.iterations,
            elites=self.elites,
            cost=self.cost,
            prior=self.prior,
            motion_weight=self.motion_weight,
            noise_beta=self.noise_beta,
            disagreement_weight=self.disagreement_weight,
        )
        report = run_planner(
            models,
            resolve_env_id(self.env),
            self.episodes,
            seed=self.seed,
            config=config,
            record=self.record,
            value=value,
        )
        report["mppi"] = asdict(config)
        report["value"] = None if self.value is None else str(self.value)
        report["models"] = [str(path) for path in (self.run_dir, *self.ensemble)]
        over = "the learned model" if len(models) == 1 else f"an ensemble of {len(models)} learned models"
        print(
            f"MPPI over {over} on {report['env_id']}: success rate {report['success_rate']:.2f} over "
            f"{self.episodes} episodes; mean final goal distance {report['mean_final_goal_distance']:.3f} m"
        )
        (self.run_dir / "plan_wm.json").write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {self.run_dir / 'plan_wm.json'}")
        if "dataset" in report:
            print(f"wrote the planner's episodes as the Minari dataset {report['dataset']}")


@dataclass
class TrainValue(TrainValueConfig):
    """Fit a state value (discounted Monte-Carlo returns of a world-model dataset) for `plan-wm --value`."""

    def run(self) -> None:
        from embodylab.world_models.value import train_value

        summary = train_value(self)
        shown = f"; held-out RMSE {summary['val_rmse']:.3f}" if "val_rmse" in summary else ""
        print(
            f"value (discount {summary['discount']}) fitted to {summary['train_steps']} steps' returns in "
            f"{summary['train_time_s']} s{shown}; wrote {self.out}/value.json and value.pt"
        )


COMMANDS = {
    "collect": Collect,
    "train-wm": TrainWM,
    "eval-wm": EvalWM,
    "train-value": TrainValue,
    "plan-wm": PlanWM,
}
