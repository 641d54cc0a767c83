"""How a push task starts, and how often random actions move its object: LabPush against FetchPush.

HER learns to push only from episodes in which the object moved, so these numbers tell how much a
learner has to work with before it has learned anything. Runs in either venv: LabPush in `.venv`, Fetch in
`.bench-venvs/fetch-rl` (Fetch needs MuJoCo 3.3):

    python benchmarks/push_start_stats.py --env embodylab/LabPush-v0
    .bench-venvs/fetch-rl/bin/python benchmarks/push_start_stats.py --env FetchPush-v4

Prints and writes benchmarks/results/push_start_stats.json (one entry per env, the others kept): medians
over `episodes` seeded starts of the gripper's table-plane distance to the object and its height above the
object's centre, the goal's distance to the object, and the share of episodes in which uniformly random
actions moved the object by more than 1 cm and 5 cm within one episode.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import tyro
from common import write_json

from embodylab.policies.normalization import TCP_SLICE

RESULTS = Path(__file__).parent / "results"
FETCH_GRIPPER_SLICE = (0, 3)
"""where the gripper position lies in Fetch's `observation` vector (embodylab's: `TCP_SLICE`)."""


@dataclass
class PushStartConfig:
    env: str = "embodylab/LabPush-v0"
    episodes: int = 60
    seed: int = 0
    out: Path = RESULTS / "push_start_stats.json"


def measure(config: PushStartConfig) -> dict:
    if config.env.startswith("Fetch"):
        import gymnasium_robotics

        gym.register_envs(gymnasium_robotics)
        gripper, kwargs = slice(*FETCH_GRIPPER_SLICE), {}
    else:
        import embodylab  # noqa: F401 - registers the envs

        gripper, kwargs = slice(*TCP_SLICE), {"goal_conditioned": True}
    env = gym.make(config.env, **kwargs)
    rng = np.random.default_rng(config.seed)
    distance, height, goal_distance, moved = [], [], [], []
    for episode in range(config.episodes):
        obs, _ = env.reset(seed=config.seed + episode)
        hand, start = obs["observation"][gripper], obs["achieved_goal"].copy()
        distance.append(np.linalg.norm(hand[:2] - start[:2]))
        height.append(hand[2] - start[2])
        goal_distance.append(np.linalg.norm(obs["desired_goal"] - start))
        while True:
            obs, _, terminated, truncated, _ = env.step(rng.uniform(-1.0, 1.0, env.action_space.shape))
            if terminated or truncated:
                break
        moved.append(np.linalg.norm(obs["achieved_goal"][:2] - start[:2]))
    moved = np.array(moved)
    return {
        "episodes": config.episodes,
        "episode_steps": env.spec.max_episode_steps,
        "median_gripper_object_xy_distance_m": float(np.median(distance)),
        "median_gripper_height_over_object_centre_m": float(np.median(height)),
        "median_goal_object_distance_m": float(np.median(goal_distance)),
        "random_actions_moved_object_over_1cm": float(np.mean(moved > 0.01)),
        "random_actions_moved_object_over_5cm": float(np.mean(moved > 0.05)),
    }


def main(config: PushStartConfig) -> None:
    result = measure(config)
    document = json.loads(config.out.read_text()) if config.out.exists() else {}
    document[config.env] = result
    write_json(config.out, document)
    print(config.env, json.dumps(result, indent=2))


if __name__ == "__main__":
    main(tyro.cli(PushStartConfig))
