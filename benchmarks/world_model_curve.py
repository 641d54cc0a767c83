"""Diagnosis of the object-centric vs monolithic comparison (issue 7): held-out open-loop error against
training steps, and where the error lies.

Trains the object-centric model (translation-equivariant object inputs, the default), its ablation with
absolute object positions, and the parameter-matched monolithic RSSM on the same LabClutter data as
`benchmarks/world_model.py`, and evaluates each on the held-out 1-3-object episodes after every entry of
`--checkpoints`: RMSE@1/10/25 of all objects, of the agent-driven target cube, of the distractors, of the
moving objects, and the tool centre point's own open-loop error. Also reports how much the objects of the
datasets move (the data must show pushes for a model to learn them).

Reuses the datasets of `benchmarks/world_model.py` (collected there; run that first, or pass `--collect`).
Writes benchmarks/results/world_model_curve.json and world_model_curve.png.

    nice -n 10 python benchmarks/world_model_curve.py
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import tyro
from common import machine_info, write_json
from world_model import WorldModelBenchConfig, collect_data

from embodylab.recording import print_table
from embodylab.world_models.config import TrainWMConfig, training_model_config
from embodylab.world_models.data import WorldModelData, load_dataset
from embodylab.world_models.evaluation import MOVING, evaluate_open_loop
from embodylab.world_models.training import load_world_model, train_world_model

RESULTS = Path(__file__).parent / "results"
# The curve's object-centric runs predate the residual latent (README, world models): they keep the one decoder.
VARIANTS = {
    "object-centric": {"model": "object-centric", "residual_latent": False},
    "object-centric (absolute x, y)": {
        "model": "object-centric",
        "absolute_positions": True,
        "residual_latent": False,
    },
    "monolithic": {"model": "monolithic"},
}


@dataclass
class CurveConfig:
    checkpoints: tuple[int, ...] = (250, 500, 1000, 2000, 4000)
    """gradient steps at which every model is evaluated"""
    variants: tuple[str, ...] = tuple(VARIANTS)
    seed: int = 0
    batch_size: int = 64
    window: int = 12
    d_model: int = 64
    lr: float = 1e-3
    collect: bool = False
    """collect the datasets first (else reuse those of benchmarks/world_model.py under --work)"""
    work: Path = Path("runs/bench_world_model")
    out: Path = RESULTS / "world_model_curve.json"


def motion_stats(data: WorldModelData, length: int = 29) -> dict:
    """How much the real objects move: the fraction of (object, window of `length` steps) pairs that move
    more than `MOVING`, the mean step speed of objects (m/s), and the fraction of steps any object moves."""
    start = data.features[:, :-length, :, :3]
    end = data.features[:, length:, :, :3]
    displacement = np.linalg.norm(end - start, axis=-1)  # [E, T-L, N]
    real = data.mask[:, None, :].repeat(displacement.shape[1], 1)
    speed = np.linalg.norm(data.features[:, :, :, 7:10], axis=-1)[:, :, :][
        data.mask[:, None, :].repeat(data.features.shape[1], 1)
    ]
    return {
        "episodes": len(data),
        "moving_object_windows": float((displacement[real] > MOVING).mean()),
        "mean_object_speed_m_s": float(speed.mean()),
        "target_moving_windows": float((displacement[..., 0] > MOVING).mean()),
    }


def main(config: CurveConfig) -> None:
    torch.set_num_threads(1)
    start = time.perf_counter()
    bench = WorldModelBenchConfig(work=config.work)
    root = config.work / "data"
    if config.collect:
        collect_data(bench)
    train_path = root / "clutter_train"
    test = load_dataset(root / "clutter_test")
    motion = {
        name: motion_stats(load_dataset(root / sub))
        for name, sub in (("clutter noisy-expert (train)", "clutter_train"), ("push (all)", "push"))
    }
    for part in ("noisy03", "noisy10", "random"):
        matches = list((root / "push").glob(f"**/{part}-v0/data"))
        if matches:
            motion[f"push {part}"] = motion_stats(load_dataset(matches[0]))
    curves = {}
    for name in config.variants:
        options = VARIANTS[name]
        run = (
            config.work / "curve" / name.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")
        )
        shutil.rmtree(run, ignore_errors=True)
        points = []
        for i, steps in enumerate(config.checkpoints):
            model_options = {k: v for k, v in options.items() if k != "model"}
            model_config = replace(
                training_model_config(), d_model=config.d_model, window=config.window, **model_options
            )
            train_config = TrainWMConfig(
                dataset=train_path, out=run, model=options["model"], model_config=model_config, steps=steps,
                batch_size=config.batch_size, lr=config.lr, seed=config.seed, checkpoint_every=10**9,
                val_every=1_000_000, max_objects=3, resume=i > 0, progress=True,
            )  # fmt: skip
            summary = train_world_model(train_config)
            model, _ = load_world_model(run)
            metrics = evaluate_open_loop(model, test, samples=4, seed=config.seed)
            points.append(
                {
                    "steps": steps,
                    "parameters": summary["parameters"],
                    "samples_per_s": summary["samples_per_s"],
                    **metrics,
                }
            )
            print(f"{name} @ {steps}: RMSE@25 {metrics['rmse@25']:.4f} target {metrics['rmse_target@25']:.4f} "
                  f"distractors {metrics['rmse_distractors@25']:.4f} tcp {metrics['rmse_tcp@25']:.4f}", flush=True)  # fmt: skip
        curves[name] = points
    rows = []
    for name, points in curves.items():
        for p in points:
            rows.append([name, p["steps"], *(f"{p[k]:.4f}" for k in ("rmse@1", "rmse@10", "rmse@25", "rmse_target@25", "rmse_distractors@25", "rmse_moving@25", "rmse_tcp@25"))])  # fmt: skip
    print_table(
        "held-out open-loop error (m) against training steps, LabClutter 1-3 objects",
        [
            "model",
            "steps",
            "RMSE@1",
            "RMSE@10",
            "RMSE@25",
            "target@25",
            "distractors@25",
            "moving@25",
            "tcp@25",
        ],
        rows,
    )
    print_table(
        "object motion in the data",
        ["dataset", *next(iter(motion.values())).keys()],
        [[k, *v.values()] for k, v in motion.items()],
    )
    plot(curves, config.out.with_suffix(".png"))
    write_json(config.out, {
        "machine": machine_info(), "config": json.loads(json.dumps(asdict(config), default=str)),
        "wall_time_s": round(time.perf_counter() - start, 1), "data_motion": motion, "curves": curves,
    })  # fmt: skip


def plot(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, points in curves.items():
        steps = [p["steps"] for p in points]
        axes[0].plot(steps, [p["rmse@25"] for p in points], "o-", label=name)
        axes[1].plot(steps, [p["rmse_target@25"] for p in points], "o-", label=name)
    for ax, title in zip(axes, ("all objects, RMSE@25", "agent-driven target cube, RMSE@25"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("gradient steps")
        ax.set_ylabel("position RMSE (m)")
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main(tyro.cli(CurveConfig))
