"""The scripted cooperative team on TeamCarry-v0 for every team size, and env step throughput vs team size.

For every N from 2 to 8 with N >= k: success rate over seeds 0..seeds-1 and the TeamHOI-style metrics
(final distance to goal, cooperation time, payload jerk; means over episodes, the last two over the
episodes in which the payload was lifted). Throughput: control steps per second of `env.step` with
random actions (state observations, no rendering, actions sampled beforehand) for N = 1, 2, 4, 8.
Prints tables and writes benchmarks/results/team_scripted.json.

    python benchmarks/team_scripted.py --seeds 50
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro
from common import machine_info, write_json
from tqdm import tqdm

from embodylab.envs.team import make
from embodylab.recording import print_table
from embodylab.rollout import play_episode
from embodylab.skills.experts import ExpertPolicy, TeamCarryExpert


@dataclass
class TeamBenchConfig:
    seeds: int = 50
    """episodes per team size, on seeds 0..seeds-1"""
    k: int = 2
    """agents needed to lift the payload"""
    team_sizes: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8)
    """team sizes of the success benchmark (sizes below k are skipped)"""
    throughput_sizes: tuple[int, ...] = (1, 2, 4, 8)
    throughput_steps: int = 2000
    """control steps timed per team size"""
    out: Path = Path(__file__).parent / "results" / "team_scripted.json"


def run_team(n_agents: int, k: int, seeds: int) -> dict:
    env = make("TeamCarry-v0", n_agents=n_agents, k=k)
    policy = ExpertPolicy(TeamCarryExpert(env))
    episodes = []
    start = time.perf_counter()
    for seed in tqdm(range(seeds), desc=f"N={n_agents}", unit="episode"):
        info = play_episode(env, policy, seed=seed).info  # agent_0's: the team's outcome is shared
        episodes.append({"seed": seed, "shape": env.layout.shape, "steps": env.steps, **info})
    seconds = time.perf_counter() - start
    lifted = [e for e in episodes if e["lifted"]]
    successes = sum(e["is_success"] for e in episodes)
    return {
        "episodes": seeds,
        "successes": successes,
        "success_rate": successes / seeds,
        "final_distance_m": float(np.mean([e["final_distance"] for e in episodes])),
        "final_yaw_error_deg": float(np.mean([e["yaw_error_deg"] for e in episodes])),
        "cooperation_time": float(np.mean([e["cooperation_time"] for e in lifted])) if lifted else 0.0,
        "payload_jerk_m_s3": float(np.mean([e["payload_jerk"] for e in lifted])) if lifted else 0.0,
        "mean_steps": float(np.mean([e["steps"] for e in episodes])),
        "seconds": round(seconds, 2),
        "failed_seeds": [e["seed"] for e in episodes if not e["is_success"]],
        "shapes": {s: sum(e["shape"] == s for e in episodes) for s in ("table", "box", "sofa")},
    }


def throughput(n_agents: int, steps: int) -> dict:
    env = make("TeamCarry-v0", n_agents=n_agents, max_episode_steps=500)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (steps, n_agents, 5)).astype(np.float32)
    elapsed, done = 0.0, 0
    for t in tqdm(range(steps), desc=f"throughput N={n_agents}", unit="step"):
        if not env.agents:
            env.reset()
        step_actions = {a: actions[t, i] for i, a in enumerate(env.agents)}
        start = time.perf_counter()
        env.step(step_actions)
        elapsed += time.perf_counter() - start
        done += 1
    return {
        "env_steps_per_s": done / elapsed,
        "agent_steps_per_s": done * n_agents / elapsed,
        "physics_steps_per_s": done * env.frame_skip / elapsed,
    }


def main(config: TeamBenchConfig) -> None:
    sizes = [n for n in config.team_sizes if n >= config.k]
    teams = {str(n): run_team(n, config.k, config.seeds) for n in sizes}
    rows = [
        [
            n,
            f"{t['success_rate']:.0%}",
            f"{t['final_distance_m']:.3f}",
            f"{t['cooperation_time']:.3f}",
            f"{t['payload_jerk_m_s3']:.2f}",
            f"{t['mean_steps']:.0f}",
            f"{t['seconds']:.0f}",
        ]
        for n, t in teams.items()
    ]
    print_table(
        f"scripted team on TeamCarry-v0 (k={config.k}), seeds 0..{config.seeds - 1}",
        ["N", "success", "final dist (m)", "coop time", "jerk (m/s^3)", "mean steps", "seconds"],
        rows,
    )
    speed = {str(n): throughput(n, config.throughput_steps) for n in config.throughput_sizes}
    print_table(
        "TeamCarry-v0 step throughput (state obs, random actions, 1 process)",
        ["N", "env steps/s", "agent steps/s", "physics steps/s"],
        [
            [
                n,
                f"{s['env_steps_per_s']:.0f}",
                f"{s['agent_steps_per_s']:.0f}",
                f"{s['physics_steps_per_s']:.0f}",
            ]
            for n, s in speed.items()
        ],
    )
    write_json(
        config.out,
        {
            "machine": machine_info(),
            "env": "TeamCarry-v0",
            "k": config.k,
            "seeds": config.seeds,
            "success_criterion": "payload set down within 0.1 m and 15 degrees of the goal pose",
            "teams": teams,
            "throughput": speed,
        },
    )


if __name__ == "__main__":
    main(tyro.cli(TeamBenchConfig))
