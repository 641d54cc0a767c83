"""Success rate of the scripted experts: `rollout(env, seed)` on seeds 0..N-1 of every lab task.

Prints a table and writes benchmarks/results/experts.json (machine, versions, date, per-task success count
and rate, mean episode steps, seconds, and the seeds that failed).

    python benchmarks/experts.py --seeds 100
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import tyro
from common import machine_info, write_json
from tqdm import tqdm

from embodylab.envs.registry import LAB_ENVS, resolve_env_id, short_id
from embodylab.recording import print_table
from embodylab.skills.experts import rollout


@dataclass
class ExpertsBenchConfig:
    seeds: int = 100
    """episodes per task, on seeds 0..seeds-1"""
    env_ids: tuple[str, ...] = ()
    """ids to run (namespace optional); empty: every registered lab id"""
    out: Path = Path(__file__).parent / "results" / "experts.json"


def run_task(env_id: str, seeds: int) -> dict:
    env = gym.wrappers.RecordEpisodeStatistics(gym.make(env_id), buffer_length=seeds)
    start = time.perf_counter()
    failed = [
        seed for seed in tqdm(range(seeds), desc=short_id(env_id), unit="episode") if not rollout(env, seed)
    ]
    seconds = time.perf_counter() - start
    env.close()
    successes = seeds - len(failed)
    return {
        "successes": successes,
        "episodes": seeds,
        "success_rate": successes / seeds,
        "mean_steps": round(sum(env.length_queue) / len(env.length_queue), 2),
        "seconds": round(seconds, 2),
        "failed_seeds": failed,
    }


def main(config: ExpertsBenchConfig) -> None:
    ids = [resolve_env_id(i) for i in config.env_ids] or [e.id for e in LAB_ENVS]
    tasks = {env_id: run_task(env_id, config.seeds) for env_id in ids}
    rows = [
        [i, f"{t['success_rate']:.0%}", t["episodes"], f"{t['mean_steps']:.1f}", f"{t['seconds']:.1f}"]
        for i, t in tasks.items()
    ]
    print_table(
        f"scripted experts, seeds 0..{config.seeds - 1}",
        ["id", "success", "episodes", "mean steps", "seconds"],
        rows,
    )
    write_json(config.out, {"machine": machine_info(), "seeds": config.seeds, "tasks": tasks})


if __name__ == "__main__":
    main(tyro.cli(ExpertsBenchConfig))
