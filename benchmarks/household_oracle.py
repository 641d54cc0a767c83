"""Oracle success on the household tasks, and the household env's step throughput in `state` mode.

For every household id, seeds 0..N-1: `reset(seed)`, then `run_oracle` (a BFS plan over the skill schema
executed through the physics primitives, re-planned on failure). Records per task the success count and rate,
the mean number of skills executed and of env steps, re-plans, and every failure reason counted (numbers
stripped, so that 'arm stopped 0.031 m from its target' and '... 0.029 m ...' count together). Then the
throughput: random actions in `state` mode, steps per second, with the model's body and DoF counts.

    python benchmarks/household_oracle.py --seeds 100
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import tyro
from common import machine_info, write_json
from tqdm import tqdm

from embodylab.envs.registry import HOUSEHOLD_ENVS, resolve_env_id, short_id
from embodylab.recording import print_table
from embodylab.rollout import play_episode
from embodylab.skills.experts import HouseholdOracle


@dataclass
class HouseholdOracleConfig:
    seeds: int = 100
    """episodes per task, on seeds 0..seeds-1"""
    env_ids: tuple[str, ...] = ()
    """ids to run (namespace optional); empty: every household id"""
    throughput_steps: int = 2000
    """random-action steps timed in state mode (after 100 warm-up steps)"""
    out: Path = Path(__file__).parent / "results" / "household_oracle.json"


def failure_kind(reason: str) -> str:
    """A failure reason with its numbers and quoted names removed, so that like failures count together."""
    reason = re.sub(r"'[^']*'", "X", reason)
    reason = re.sub(r"\(.*?\)", "", reason)
    return re.sub(r"-?\d+(\.\d+)?", "N", reason).strip()


def run_task(env_id: str, seeds: int) -> dict:
    env = gym.make(env_id)
    oracle = HouseholdOracle(env)
    reports, failed = [], []
    failures: Counter[str] = Counter()
    start = time.perf_counter()
    for seed in tqdm(range(seeds), desc=short_id(env_id), unit="episode"):
        play_episode(env, oracle, seed=seed)  # the oracle drives the episode; its report says how
        report = oracle.report
        reports.append(report)
        failures.update(failure_kind(r) for r in report.failures)
        if not report.success:
            failed.append(seed)
    seconds = time.perf_counter() - start
    env.close()
    successes = seeds - len(failed)
    return {
        "successes": successes,
        "episodes": seeds,
        "success_rate": successes / seeds,
        "mean_skill_steps": round(float(np.mean([r.skill_steps for r in reports])), 2),
        "mean_skill_steps_successful": round(float(np.mean([r.skill_steps for r in reports if r.success])), 2)
        if successes
        else None,
        "mean_env_steps": round(float(np.mean([r.env_steps for r in reports])), 1),
        "mean_replans": round(float(np.mean([r.replans for r in reports])), 2),
        "failure_reasons": dict(failures.most_common()),
        "failed_seeds": failed,
        "seconds": round(seconds, 1),
    }


def throughput(env_id: str, steps: int) -> dict:
    env = gym.make(env_id, obs_mode="state")
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(steps + 100)]
    for action in actions[:100]:
        env.step(action)
    start = time.perf_counter()
    for action in actions[100:]:
        env.step(action)
    seconds = time.perf_counter() - start
    model = env.unwrapped.model
    result = {
        "steps_per_s": round(steps / seconds, 1),
        "physics_steps_per_s": round(steps * env.unwrapped.frame_skip / seconds, 1),
        "bodies": int(model.nbody),
        "dof": int(model.nv),
        "geoms": int(model.ngeom),
        "objects": len(env.unwrapped.object_states()),
    }
    env.close()
    return result


def main(config: HouseholdOracleConfig) -> None:
    ids = [resolve_env_id(i) for i in config.env_ids] or [e.id for e in HOUSEHOLD_ENVS]
    speed = throughput(ids[0], config.throughput_steps)
    tasks = {env_id: run_task(env_id, config.seeds) for env_id in ids}
    rows = [
        [
            i,
            f"{t['successes']}/{t['episodes']}",
            f"{t['mean_skill_steps']:.1f}",
            f"{t['mean_env_steps']:.0f}",
            f"{t['seconds']:.0f}",
        ]  # fmt: skip
        for i, t in tasks.items()
    ]
    print_table(
        f"household oracle, seeds 0..{config.seeds - 1}",
        ["id", "success", "skills", "env steps", "seconds"],
        rows,
    )
    for env_id, task in tasks.items():
        print(f"{short_id(env_id)} failures: {task['failure_reasons'] or 'none'}")
    print(
        f"state-mode throughput ({short_id(ids[0])}): {speed['steps_per_s']} steps/s "
        f"({speed['physics_steps_per_s']} physics steps/s), {speed['bodies']} bodies, {speed['dof']} DoF"
    )
    write_json(
        config.out, {"machine": machine_info(), "seeds": config.seeds, "throughput": speed, "tasks": tasks}
    )


if __name__ == "__main__":
    main(tyro.cli(HouseholdOracleConfig))
