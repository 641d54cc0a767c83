"""Evaluating a policy: deterministic episodes on fixed seeds, success rate, return and length.

`run_episodes` plays a model (periodic evaluation during training uses it), `evaluate(run_dir)` loads a
run's last checkpoint and writes `eval.json` (the `embodylab eval` command), `plot_learning_curve` draws
`evaluations.csv` of a run.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

from embodylab.recording import write_video
from embodylab.rollout import play_episode

EVAL_SEED = 1_000_000
"""Evaluation episodes use seeds EVAL_SEED, EVAL_SEED + 1, ...: never a training episode's seed, and the
same goals at every evaluation, so that successive numbers compare."""
EVALUATIONS_CSV = "evaluations.csv"
EVALUATION_FIELDS = ("step", "wall_time_s", "success_rate", "mean_return", "mean_length")


def run_episodes(model, env: gym.Env, episodes: int, video: str | Path | None = None) -> dict:
    """Plays `episodes` episodes of `env` with `model.predict(obs, deterministic=True)`.

    Returns `success_rate` (final `info["is_success"]`), `mean_return`, `mean_length` and per-episode
    lists. With `video`, records the first episode (`env` needs `render_mode="rgb_array"`)."""

    def policy(observation):
        return model.predict(observation, deterministic=True)[0]

    results = [
        play_episode(env, policy, seed=EVAL_SEED + episode, render=video is not None and episode == 0)
        for episode in range(episodes)
    ]
    if video is not None:
        write_video(video, results[0].frames, fps=env.metadata.get("render_fps", 25))
    returns = [r.episode_return for r in results]
    lengths = [r.length for r in results]
    successes = [r.success for r in results]
    return {
        "episodes": episodes,
        "success_rate": float(np.mean(successes)),
        "mean_return": float(np.mean(returns)),
        "mean_length": float(np.mean(lengths)),
        "successes": successes,
        "returns": returns,
        "lengths": lengths,
    }


def append_evaluation(run_dir: Path, step: int, wall_time_s: float, result: dict) -> None:
    """One row of the run's learning curve, `evaluations.csv`."""
    path = Path(run_dir) / EVALUATIONS_CSV
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(EVALUATION_FIELDS)
        writer.writerow(
            [step, f"{wall_time_s:.1f}", result["success_rate"], result["mean_return"], result["mean_length"]]
        )


def read_evaluations(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / EVALUATIONS_CSV
    if not path.exists():
        return []
    with path.open() as f:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(f)]


def plot_learning_curve(run_dir: str | Path) -> Path | None:
    """Draws success rate and mean return against env steps from `evaluations.csv` into
    `learning_curve.png`; None when the run has no evaluation yet."""
    rows = read_evaluations(run_dir)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")  # headless: never open a window
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 5), sharex=True)
    top.plot(steps, [r["success_rate"] for r in rows], marker="o")
    top.set_ylabel("eval success rate")
    top.set_ylim(-0.05, 1.05)
    top.grid(alpha=0.3)
    bottom.plot(steps, [r["mean_return"] for r in rows], marker="o", color="tab:orange")
    bottom.set_ylabel("eval mean return")
    bottom.set_xlabel("env steps")
    bottom.grid(alpha=0.3)
    fig.suptitle(Path(run_dir).name)
    fig.tight_layout()
    path = Path(run_dir) / "learning_curve.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def evaluate(run_dir: str | Path, episodes: int = 20, video: bool = False) -> dict:
    """Evaluates the last checkpoint of the run in `run_dir`: deterministic actions, seeds from EVAL_SEED.

    Writes `eval.json` (and `eval.mp4` of the first episode with `video`) into the run directory and
    returns the report: success rate, mean return and length, per-episode values, checkpoint and step."""
    from embodylab.policies.checkpoint import latest_checkpoint, load_checkpoint
    from embodylab.policies.config import load_config
    from embodylab.policies.factory import make_env, make_model

    run_dir = Path(run_dir)
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1; got {episodes}")
    config = load_config(run_dir)  # any version's config.json
    checkpoint = latest_checkpoint(run_dir)
    env = make_env(config, render=video)
    model = make_model(config, env, with_demos=False)
    state = load_checkpoint(model, checkpoint, restore_buffer=False)
    start = time.perf_counter()
    video_path = run_dir / "eval.mp4" if video else None
    result = run_episodes(model, env, episodes, video=video_path)
    env.close()
    report = {
        "run": str(run_dir),
        "env": config.env,
        "algo": config.algo.name,
        "checkpoint": str(checkpoint),
        "step": state["num_timesteps"],
        **result,
        "wall_time_s": round(time.perf_counter() - start, 2),
        "video": str(video_path) if video_path else None,
    }
    (run_dir / "eval.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
