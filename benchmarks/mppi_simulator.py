"""MPPI on LabPush with the simulator itself as its model: the planner's ceiling (slow; not in `make test`).

`benchmarks/world_model.py` plans over the learned world model (issue 7: >= 70% success on LabPush). This
script runs the same optimiser (`embodylab.world_models.planning.refine`) and the same shaped cost
(`shaped_reward`) over exact predictions: every sampled action sequence is played from the env's current
state (`get_state`/`set_state`) in a second copy of the task. What it reaches is what the planner and its
cost can do with a perfect model, so the gap to the learned model's success is the model's share of the
miss. No learning and no data: the simulator is an oracle no deployed planner has.

    python benchmarks/mppi_simulator.py                      # 10 episodes, 64 samples (~35 min, one core)
    python benchmarks/mppi_simulator.py --episodes 2 --mppi.samples 16

Prints and writes benchmarks/results/mppi_simulator.json.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
import tyro
from common import machine_info, write_json

from embodylab.envs.registry import make
from embodylab.world_models.data import object_centric_observation
from embodylab.world_models.object_centric import AGENT_SLICE
from embodylab.world_models.planning import MPPIConfig, play_episodes, refine, shaped_reward

RESULTS = Path(__file__).parent / "results"


@dataclass
class SimulatorMPPIConfig:
    env: str = "embodylab/LabPush-v0"
    episodes: int = 10
    seed: int = 10_000
    """episode seeds `seed`, `seed + 1`, ...: those of `benchmarks/world_model.py`'s first training seed"""
    mppi: MPPIConfig = field(
        default_factory=lambda: MPPIConfig(horizon=12, samples=64, iterations=3, elites=16, cost="shaped")
    )
    """`world_model.py`'s planner settings, but half its 128 samples: each costs real physics here"""
    out: Path = RESULTS / "mppi_simulator.json"


class SimulatorReturns:
    """Returns of action sequences played in a copy of the task from a saved state, scored like the
    learned planner scores its predictions: `shaped_reward` of every state reached, the last weighted by
    `terminal_weight`."""

    def __init__(self, env_id: str, config: MPPIConfig):
        self.env = make(env_id)
        self.task = self.env.unwrapped
        self.config = config

    def __call__(self, state: np.ndarray, actions: torch.Tensor) -> torch.Tensor:
        samples, horizon, _ = actions.shape
        plans = actions.numpy()
        features, agents, categories, goals = [], [], [], []
        for s in range(samples):
            self.task.set_state(state)
            for t in range(horizon):
                self.task.step(plans[s, t])
                obs = object_centric_observation(self.env)
                n = int(obs["object_mask"].sum())
                features.append(obs["object_features"][:n])
                categories.append(obs["object_categories"][:n])
                agents.append(obs["proprio"][AGENT_SLICE])
                goals.append(obs["goal"])
        rewards = shaped_reward(
            torch.from_numpy(np.stack(features)),
            torch.from_numpy(np.stack(categories)),
            torch.from_numpy(np.stack(agents)),
            torch.from_numpy(np.stack(goals)),
            self.config,
        ).reshape(samples, horizon)
        weights = torch.ones(horizon, dtype=rewards.dtype)
        weights[-1] = self.config.terminal_weight
        return (rewards * weights).sum(1).double()


class SimulatorPlanner:
    """MPPI (`refine`) over `SimulatorReturns` for the task `env` plays: `reset(obs)`, then `act(obs)` every
    step, as `MPPIPlanner`; the state planned from is the env's own (`get_state`), not the observation."""

    def __init__(self, env: gym.Env, env_id: str, config: MPPIConfig, seed: int):
        self.task, self.config = env.unwrapped, config
        self.returns = SimulatorReturns(env_id, config)
        self.generator = torch.Generator().manual_seed(seed)
        self.action_dim = env.action_space.shape[0]

    def reset(self, obs: dict) -> None:
        self.plan = torch.zeros(self.config.horizon, self.action_dim)

    def act(self, obs: dict) -> np.ndarray:
        state = self.task.get_state()
        plan = refine(self.plan, self.config, self.generator, lambda actions: self.returns(state, actions))
        self.plan = torch.cat([plan[1:], torch.zeros(1, self.action_dim)])
        return plan[0].numpy()


def run(config: SimulatorMPPIConfig) -> dict:
    env = make(config.env)
    planner = SimulatorPlanner(env, config.env, config.mppi, config.seed)
    seeds = range(config.seed, config.seed + config.episodes)
    start = time.perf_counter()
    try:
        played = play_episodes(env, planner, seeds, "mppi-simulator")
    finally:
        env.close()
    wall = time.perf_counter() - start
    result = {
        "machine": machine_info(),
        "config": {**asdict(config), "out": str(config.out)},
        **played,
        "wall_time_s": wall,
        "seconds_per_control_step": wall / sum(e["steps"] for e in played["episodes"]),
    }
    print(
        f"MPPI over the simulator on {config.env}: {played['success_rate']:.0%} success over "
        f"{config.episodes} episodes (mean final goal distance {played['mean_final_goal_distance']:.3f} m)"
    )
    return result


if __name__ == "__main__":
    cfg = tyro.cli(SimulatorMPPIConfig)
    write_json(cfg.out, run(cfg))
