"""How well can any model predict LabClutter open-loop? The simulator itself, started a hair off the truth.

A world model's open-loop error has a floor that no model can go below: pushes are contact events, and a
tool that meets a cube's face a fraction of a millimetre earlier or later sends it elsewhere. This
benchmark measures that floor on the held-out episodes of `benchmarks/world_model.py`. Every window is
replayed in MuJoCo from its true state with the arm's joints moved by N(0, eps) radians (eps 1e-4 rad moves
the tool centre point by about 0.1 mm, far below any learned model's one-step error), under the recorded
actions, K times; its object positions are scored as the world models' are (`evaluation.py`: per-object
position RMSE at horizons 1, 10, 25, windows of context 4 + 25 every 10 steps):
- `sample`: the RMSE of one perturbed replay (what a perfect stochastic model's single sample scores);
- `mean`: the RMSE of the mean of the K replays (near the best any single prediction can score);
- `best_of_k`: the best of the K replays per window;
- `stand_still`: every object predicted to stay where it is.

The replay is checked against the recorded data (a dataset not written by `collect` with these seeds and
object counts raises ValueError). Writes benchmarks/results/world_model_floor.json and a plot of RMSE
against horizon beside it (with the world models of `world_model.json`).

    python benchmarks/world_model_floor.py --dataset runs/bench_world_model/data/clutter_test
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np
import tyro
from common import machine_info, write_json
from tqdm import tqdm

import embodylab  # noqa: F401 - registers the environments
from embodylab.recording import print_table
from embodylab.world_models.data import load_dataset
from embodylab.world_models.evaluation import HORIZONS

RESULTS = Path(__file__).parent / "results"


@dataclass
class FloorConfig:
    dataset: Path = Path("runs/bench_world_model/data/clutter_test")
    """held-out LabClutter dataset written by `collect` (`benchmarks/world_model.py` writes this one)"""
    seed: int = 100_000
    """the seed it was collected with: episode e was reset with seed + e"""
    n_objects: tuple[int, ...] = (1, 2, 3)
    """the object counts it was collected with: episode e has n_objects[e % len(n_objects)]"""
    env_id: str = "embodylab/LabClutter-v0"
    eps: tuple[float, ...] = (1e-4, 1e-3)
    """std (radians) of the joint perturbations, one floor each"""
    samples: int = 8
    context: int = 4
    horizon: int = 25
    stride: int = 10
    out: Path = RESULTS / "world_model_floor.json"


def replay_states(env, actions: np.ndarray, seed: int, recorded: np.ndarray) -> list[np.ndarray]:
    """The simulator states along an episode replayed from `env.reset(seed=seed)` under `actions`; raises
    ValueError where the replay leaves the recorded object positions `recorded` [T+1, N, 3]."""
    env.reset(seed=seed)
    states = [env.get_state()]
    for action in actions:
        env.step(action)
        states.append(env.get_state())
    final = env.object_states().features[:, :3]
    if np.abs(final - recorded[-1]).max() > 1e-4:
        raise ValueError(
            f"replaying the episode of seed {seed} does not reproduce the dataset (final objects "
            f"{np.abs(final - recorded[-1]).max() * 1000:.2f} mm off): pass the --seed and --n-objects it was "
            "collected with"
        )
    return states


def measure(config: FloorConfig) -> dict:
    data = load_dataset(config.dataset)
    envs = {n: gym.make(config.env_id, n_objects=n).unwrapped for n in set(config.n_objects)}
    rng = np.random.default_rng(0)
    length = config.context + config.horizon
    horizons = range(1, config.horizon + 1)
    squared = {
        eps: {k: {h: [] for h in horizons} for k in ("sample", "mean", "best_of_k")} for eps in config.eps
    }
    still = {h: [] for h in horizons}
    for e in tqdm(range(len(data.lengths)), desc="replay", unit="episode"):
        n = config.n_objects[e % len(config.n_objects)]
        if int(data.mask[e].sum()) != n:
            raise ValueError(f"episode {e} has {int(data.mask[e].sum())} objects; --n-objects says {n}")
        env, truth = envs[n], data.features[e, :, :n, :3]
        steps = int(data.lengths[e])
        states = replay_states(env, data.actions[e, :steps], config.seed + e, truth[: steps + 1])
        for s in range(0, steps - length + 1, config.stride):
            start = s + config.context
            for h in horizons:
                still[h] += list(((truth[start] - truth[start + h]) ** 2).sum(-1))
            for eps in config.eps:
                runs = np.empty((config.samples, config.horizon, n, 3))
                for k in range(config.samples):
                    env.set_state(states[start])
                    env.data.qpos[env.arm.qpos_slice] += rng.normal(0.0, eps, 7)
                    mujoco.mj_forward(env.model, env.data)
                    for t in range(config.horizon):
                        env.step(data.actions[e, start + t])
                        runs[k, t] = env.object_states().features[:n, :3]
                for h in horizons:
                    error = ((runs[:, h - 1] - truth[start + h]) ** 2).sum(-1)  # [K, n]
                    squared[eps]["sample"][h] += list(error.mean(0))
                    squared[eps]["mean"][h] += list(
                        ((runs[:, h - 1].mean(0) - truth[start + h]) ** 2).sum(-1)
                    )
                    squared[eps]["best_of_k"][h] += [error.mean(1).min()] * n  # every object counts once

    def rms(values: list) -> float:
        return float(np.sqrt(np.mean(values)))

    floors = {
        f"eps={eps:g}": {kind: {f"rmse@{h}": rms(v) for h, v in by_h.items()} for kind, by_h in kinds.items()}
        for eps, kinds in squared.items()
    }
    return {
        "machine": machine_info(),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "objects_scored": len(still[1]),
        "stand_still": {f"rmse@{h}": rms(v) for h, v in still.items()},
        "simulator": floors,
    }


def plot(result: dict, out: Path, models: Path = RESULTS / "world_model.json") -> Path:
    """RMSE against horizon: the floors, standing still, and the world models of `models` (their means over
    seeds at horizons 1, 10, 25) where that file exists."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def curve(values: dict) -> tuple[list[int], list[float]]:
        h = sorted(int(k.split("@")[1]) for k in values)
        return h, [1000 * values[f"rmse@{i}"] for i in h]

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.plot(*curve(result["stand_still"]), "k:", label="every object stands still")
    for (eps, kinds), colour in zip(result["simulator"].items(), ("tab:green", "tab:olive"), strict=False):
        off = f"{1000 * float(eps.split('=')[1]):g} mrad off"
        ax.plot(*curve(kinds["sample"]), color=colour, label=f"MuJoCo {off}: one replay")
        ax.plot(*curve(kinds["mean"]), "--", color=colour, label=f"MuJoCo {off}: mean of replays")
    if models.exists():
        runs = json.loads(models.read_text())["runs"]
        styles = (
            ("object-centric", "o", "tab:blue"),
            ("deterministic", "s", "tab:orange"),
            ("monolithic", "^", "tab:red"),
        )
        for kind, marker, colour in styles:
            points = {
                h: np.mean([1000 * r["clutter"][kind]["in_distribution"][f"rmse@{h}"] for r in runs])
                for h in HORIZONS
            }
            ax.plot(
                list(points), list(points.values()), marker=marker, color=colour, label=f"{kind} world model"
            )
    ax.set_xlabel("open-loop horizon (steps)")
    ax.set_ylabel("object position RMSE (mm)")
    ax.set_title("Held-out LabClutter: world models against MuJoCo's own floor")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main(config: FloorConfig) -> None:
    result = measure(config)
    rows = [["stand still", *(f"{1000 * result['stand_still'][f'rmse@{h}']:.1f}" for h in HORIZONS)]]
    for eps, kinds in result["simulator"].items():
        for kind, values in kinds.items():
            rows.append(
                [f"simulator {eps} rad, {kind}", *(f"{1000 * values[f'rmse@{h}']:.1f}" for h in HORIZONS)]
            )
    print_table(
        "open-loop floor on held-out LabClutter", ["predictor", *(f"RMSE@{h} mm" for h in HORIZONS)], rows
    )
    write_json(config.out, result)
    print(f"wrote {plot(result, config.out.with_suffix('.png'))}")


if __name__ == "__main__":
    main(tyro.cli(FloorConfig))
