"""How far plain behaviour cloning on N scripted-expert episodes gets on a lab task (slow; not in `make test`).

The reference point for `--demos N` in `embodylab train`: what the demonstrations are worth on their own.
An MLP (ReLU, tanh output) maps the goal-conditioned observation (`observation`, `desired_goal` and
`desired_goal - achieved_goal`, standardised with the demonstrations' statistics) to the expert's action,
trained by mean squared error on minibatches of 256; then evaluated as `embodylab train` evaluates its
runs (`run_episodes`: 20 episodes on the same held-out seeds).
The scripted experts keep a phase (approach, descend, push) that the observation does not show, so their
actions are not a function of the observation alone.

    python benchmarks/bc_probe.py                       # LabPush, 20 and 100 demos, 64x64 and 256x256
    python benchmarks/bc_probe.py --demos 20 --hidden 256

Prints and writes benchmarks/results/bc_probe.json.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
import tyro
from common import machine_info, write_json
from tqdm import tqdm

import embodylab  # noqa: F401  (registers the embodylab/* env ids)
from embodylab.policies.evaluation import run_episodes
from embodylab.skills.experts import make_expert

RESULTS = Path(__file__).parent / "results"


@dataclass
class BCProbeConfig:
    env: str = "embodylab/LabPush-v0"
    demos: tuple[int, ...] = (20, 100)
    """expert episodes (seeds 0..N-1) to clone, one probe per count"""
    hidden: tuple[int, ...] = (64, 256)
    """width of the two hidden layers, one probe per width (64: `embodylab train`'s default networks)"""
    updates: int = 3000
    eval_episodes: int = 20
    """on the seeds `embodylab train` evaluates on (`embodylab.policies.evaluation.EVAL_SEED` on)"""
    seed: int = 0
    out: Path = RESULTS / "bc_probe.json"


def _features(obs: dict) -> np.ndarray:
    return np.concatenate(
        [obs["observation"], obs["desired_goal"], obs["desired_goal"] - obs["achieved_goal"]]
    )


def record(env: gym.Env, episodes: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(features, expert actions, expert successes) of `episodes` expert episodes."""
    features, actions, successes = [], [], 0
    for episode in range(episodes):
        obs, _ = env.reset(seed=episode)
        expert = make_expert(env)
        expert.reset()
        while True:
            action = expert.act()
            features.append(_features(obs))
            actions.append(action)
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                successes += bool(info["is_success"])
                break
    return np.array(features, np.float32), np.array(actions, np.float32), successes


def clone(features: np.ndarray, actions: np.ndarray, hidden: int, config: BCProbeConfig) -> ClonedPolicy:
    torch.manual_seed(config.seed)
    x, y = torch.from_numpy(features), torch.from_numpy(actions)
    mean, std = x.mean(0), x.std(0) + 1e-3
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
        torch.nn.Linear(hidden, y.shape[1]), torch.nn.Tanh(),
    )  # fmt: skip
    optimiser = torch.optim.Adam(net.parameters(), 1e-3)
    generator = torch.Generator().manual_seed(config.seed)
    for _ in range(config.updates):
        index = torch.randint(0, len(x), (256,), generator=generator)
        loss = ((net((x[index] - mean) / std) - y[index]) ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return ClonedPolicy(net, mean, std)


class ClonedPolicy:
    """The cloned network behind SB3's `predict`, so that `run_episodes` evaluates it as it does a run."""

    def __init__(self, net: torch.nn.Module, mean: torch.Tensor, std: torch.Tensor):
        self.net, self.mean, self.std = net, mean, std

    @torch.no_grad()
    def predict(self, obs: dict, deterministic: bool = True) -> tuple[np.ndarray, None]:
        return self.net((torch.from_numpy(_features(obs)) - self.mean) / self.std).numpy(), None


def main(config: BCProbeConfig) -> None:
    torch.set_num_threads(1)
    env = gym.make(config.env, goal_conditioned=True, reward_type="sparse")
    probes = []
    for count in tqdm(config.demos, desc="demo counts"):
        features, actions, expert_successes = record(env, count)
        for hidden in config.hidden:
            start = time.perf_counter()
            policy = clone(features, actions, hidden, config)
            successes = sum(run_episodes(policy, env, config.eval_episodes)["successes"])
            probes.append({
                "demos": count, "transitions": len(features), "expert_successes": expert_successes,
                "hidden": hidden, "successes": successes, "episodes": config.eval_episodes,
                "success_rate": successes / config.eval_episodes, "seconds": time.perf_counter() - start,
            })  # fmt: skip
            print(
                f"{count} demos ({expert_successes} solved), {hidden}x{hidden}: {successes}/{config.eval_episodes}"
            )
    write_json(
        config.out,
        {"machine": machine_info(), "config": asdict(config) | {"out": str(config.out)}, "probes": probes},
    )


if __name__ == "__main__":
    main(tyro.cli(BCProbeConfig))
