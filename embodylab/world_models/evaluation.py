"""Open-loop evaluation of world models on held-out episodes, and plots of predicted against true paths.

From each window the model filters `context` true steps, then predicts `horizon` steps open-loop from the
recorded actions. Per horizon h:
- `rmse`: per-object position RMSE (metres, world frame) of the model's single prediction (prior means);
- `best_of_k`: the same for the best of K sampled rollouts per window (the sample whose objects are
  nearest the truth on average at h);
- `rmse_moving`: `rmse` over the objects that move more than `MOVING` within the window only (in a
  cluttered scene most objects stand still, and predicting them is easy);
- `rmse_target`, `rmse_distractors`: `rmse` over the agent-driven target objects (category
  `target_cube`) only, and over the others only; `rmse_tcp`: the predicted tool centre point's error
  (the agent's own open-loop drift, which every pushed object inherits);
- `nll`: negative log-likelihood (nats per object) of the true position under a Gaussian fitted to the K
  samples (their mean; their variance plus the decoder's one-step variance).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from embodylab.core.scene import POSITION
from embodylab.world_models.data import CATEGORIES, WorldModelData
from embodylab.world_models.object_centric import WorldModel, batch_windows, open_loop

HORIZONS = (1, 10, 25)
MOVING = 0.01
"""metres: an object that ends a window farther than this from where it started it counts as moving."""


def windows(data: WorldModelData, length: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """(episode, start) of every window of `length` steps starting every `stride` steps of every episode."""
    episodes, starts = [], []
    for e, steps in enumerate(data.lengths):
        for s in range(0, int(steps) - length + 1, stride):
            episodes.append(e)
            starts.append(s)
    return np.array(episodes, dtype=np.int64), np.array(starts, dtype=np.int64)


@torch.no_grad()
def evaluate_open_loop(
    model: WorldModel,
    data: WorldModelData,
    *,
    context: int = 4,
    horizons: tuple[int, ...] = HORIZONS,
    samples: int = 8,
    stride: int = 10,
    batch_size: int = 128,
    seed: int = 0,
) -> dict:
    """Open-loop metrics of `model` on every window of `data` (see the module docstring)."""
    torch.manual_seed(seed)
    horizon = max(horizons)
    episodes, starts = windows(data, context + horizon, stride)
    if not len(episodes):
        raise ValueError(f"no episode of the dataset has {context + horizon} steps for a window")
    # Scenes of one object count per batch: the model sees exactly the objects of the scene.
    counts = data.n_objects[episodes]
    sq_mode, sq_best, nll, weights, sq_moving, n_moving = [], [], [], [], [], []
    sq_target, n_target, sq_other, n_other, sq_tcp = [], [], [], [], []
    target_id = CATEGORIES.index("target_cube")
    for count in np.unique(counts):
        chosen = np.flatnonzero(counts == count)
        for i in range(0, len(chosen), batch_size):
            idx = chosen[i : i + batch_size]
            batch = batch_windows(data, episodes[idx], starts[idx], context + horizon, n_objects=int(count))
            truth = batch["features"][:, context + 1 :, :, :3]  # [B, H, N, 3]
            predicted = open_loop(model, batch, context, horizon, samples=1, mode=True)
            mode = predicted["positions"][0]
            sq_tcp.append(((predicted["tcp"][0] - batch["agent"][:, context + 1 :, :3]) ** 2).sum(-1))
            sampled = open_loop(model, batch, context, horizon, samples=samples)
            positions, stds = sampled["positions"], sampled["stds"]  # [K, B, H, N, 3]
            sq_error = ((mode - truth) ** 2).sum(-1)  # [B, H, N]
            sq_mode.append(sq_error.mean(-1))  # [B, H]: mean over objects
            moving = (
                (truth[:, -1] - batch["features"][:, context, :, POSITION]).norm(dim=-1) > MOVING
            ).float()
            sq_moving.append((sq_error * moving[:, None]).sum(0).sum(-1))  # [H]: summed over moving objects
            n_moving.append(moving.sum())
            target = (batch["categories"] == target_id).float()  # [B, N]
            sq_target.append((sq_error * target[:, None]).sum(0).sum(-1))
            n_target.append(target.sum())
            sq_other.append((sq_error * (1 - target[:, None])).sum(0).sum(-1))
            n_other.append((1 - target).sum())
            per_sample = ((positions - truth) ** 2).sum(-1).mean(-1)  # [K, B, H]
            sq_best.append(per_sample.min(0).values)
            variance = positions.var(0, unbiased=False) + (stds**2).mean(0)
            mean = positions.mean(0)
            point_nll = 0.5 * ((truth - mean) ** 2 / variance + torch.log(2 * math.pi * variance))
            nll.append(point_nll.sum(-1).mean(-1))  # [B, H]: per object
            weights.append(torch.full((len(idx),), float(count)))
    sq_mode, sq_best, nll = torch.cat(sq_mode), torch.cat(sq_best), torch.cat(nll)
    # Every object counts once: windows are weighted by their object count.
    w = torch.cat(weights)[:, None]
    total = w.sum()
    result = {"windows": len(episodes), "context": context, "samples": samples}
    for h in horizons:
        result[f"rmse@{h}"] = float(torch.sqrt((sq_mode[:, h - 1 : h] * w).sum() / total))
        result[f"best_of_k@{h}"] = float(torch.sqrt((sq_best[:, h - 1 : h] * w).sum() / total))
        result[f"nll@{h}"] = float((nll[:, h - 1 : h] * w).sum() / total)
        moved = float(sum(n_moving))
        result[f"rmse_moving@{h}"] = (
            float(torch.sqrt(sum(x[h - 1] for x in sq_moving) / moved)) if moved else float("nan")
        )
        for name, sq, count in (("target", sq_target, n_target), ("distractors", sq_other, n_other)):
            total_count = float(sum(count))
            result[f"rmse_{name}@{h}"] = (
                float(torch.sqrt(sum(x[h - 1] for x in sq) / total_count)) if total_count else float("nan")
            )
        result[f"rmse_tcp@{h}"] = float(torch.sqrt(torch.cat(sq_tcp)[:, h - 1].mean()))
    result["moving_objects"] = int(sum(n_moving))
    return result


@torch.no_grad()
def plot_trajectories(
    model: WorldModel,
    data: WorldModelData,
    out: str | Path,
    *,
    context: int = 4,
    horizon: int = 25,
    samples: int = 8,
    n_windows: int = 4,
    title: str = "",
) -> Path:
    """Top-down (x, y) plot of true and predicted object paths for `n_windows` held-out windows: the true
    path in black, the prior-mean prediction in colour, K sampled rollouts thin. Returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    episodes, starts = windows(data, context + horizon, horizon)
    # The windows where the objects move most: still scenes say nothing about a model.
    motion = np.array(
        [
            np.abs(np.diff(data.features[e, s : s + context + horizon + 1, :, :2], axis=0)).sum()
            for e, s in zip(episodes, starts, strict=True)
        ]
    )
    picks = np.argsort(-motion)[:n_windows]
    fig, axes = plt.subplots(1, len(picks), figsize=(3.2 * len(picks), 3.4), squeeze=False)
    for ax, pick in zip(axes[0], picks, strict=True):
        e, s = episodes[pick], starts[pick]
        n = int(data.n_objects[e])
        batch = batch_windows(data, [e], [s], context + horizon, n_objects=n)
        truth = batch["features"][0, context:, :, :2].numpy()
        mode = open_loop(model, batch, context, horizon, samples=1, mode=True)["positions"][
            0, 0, ..., :2
        ].numpy()
        sampled = open_loop(model, batch, context, horizon, samples=samples)["positions"][
            :, 0, ..., :2
        ].numpy()
        colors = plt.cm.tab10(np.arange(n) % 10)
        for j in range(n):
            start = truth[0, j]
            for k in range(samples):
                path = np.vstack([start, sampled[k, :, j]])
                ax.plot(path[:, 0], path[:, 1], color=colors[j], alpha=0.25, lw=0.8)
            ax.plot(
                *np.vstack([start, mode[:, j]]).T,
                color=colors[j],
                lw=1.8,
                label="predicted" if j == 0 else None,
            )
            ax.plot(truth[:, j, 0], truth[:, j, 1], "k--", lw=1.2, label="true" if j == 0 else None)
            ax.plot(*start, "o", color=colors[j], ms=4)
        ax.set_title(f"episode {e}, steps {s + context}-{s + context + horizon}", fontsize=8)
        ax.set_aspect("equal", adjustable="datalim")
        ax.tick_params(labelsize=6)
        ax.set_xlabel("x (m)", fontsize=7)
    axes[0, 0].set_ylabel("y (m)", fontsize=7)
    axes[0, 0].legend(fontsize=6, loc="best")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
