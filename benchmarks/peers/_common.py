"""Shared timing code for the peer scripts (fetch.py, robosuite.py, metaworld.py).

These run in the peers' own venvs (`make bench-peers`), so only the standard library, numpy and mujoco are
used here. A peer script prints one JSON object on stdout; everything else, the libraries' own chatter
included, goes to stderr (`json_stdout` moves file descriptor 1 onto stderr for the whole run).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import mujoco
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def unshadow() -> None:
    """Drop this folder from sys.path: robosuite.py and metaworld.py would otherwise shadow the libraries."""
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--steps", type=int, default=2000, help="env steps timed (random actions)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the env and of the random actions")
    parser.add_argument("--resets", type=int, default=20, help="resets timed for reset_ms (the median)")
    return parser.parse_args()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def json_stdout() -> Iterator[Callable[[dict], None]]:
    """Send everything written to stdout (Python or C) to stderr; yield a function that prints the JSON."""
    sys.stdout.flush()
    real_stdout = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    def emit(result: dict) -> None:
        real_stdout.write(json.dumps(result) + "\n")
        real_stdout.flush()

    try:
        yield emit
    finally:
        sys.stdout.flush()
        real_stdout.close()


def random_actions(low: np.ndarray, high: np.ndarray, steps: int, seed: int) -> np.ndarray:
    """Uniform random actions drawn up front, so that sampling is not part of the step timing."""
    rng = np.random.default_rng(seed)
    return rng.uniform(low, high, size=(steps, *np.shape(low))).astype(np.asarray(low).dtype)


def time_steps(step: Callable[[np.ndarray], bool], reset: Callable[[], None], actions: np.ndarray) -> dict:
    """Env steps/s over `actions`; `step` returns True when the episode ended. Resets are not timed."""
    stepping = 0.0
    episodes = 0
    reset()
    for action in actions:
        start = time.perf_counter()
        done = step(action)
        stepping += time.perf_counter() - start
        if done:
            episodes += 1
            reset()
    return {
        "env_steps_per_s": len(actions) / stepping,
        "steps": len(actions),
        "episodes_ended": episodes,
        "step_seconds": stepping,
    }


def median_reset_ms(reset: Callable[[], None], resets: int) -> float:
    reset()  # warm-up
    times = []
    for _ in range(resets):
        start = time.perf_counter()
        reset()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


RAW_METHOD = (
    "mujoco.mj_step(model, data, nstep=substeps) on a copy of the env's MjData taken right after a reset, "
    "ctrl left as the reset set it, state restored every episode length (restores not timed); rate = "
    "physics steps / s. raw_physics_steps_per_s_single: the same with one mj_step call per physics step"
)


def raw_physics(model: mujoco.MjModel, data: mujoco.MjData, substeps: int, steps: int, episode: int) -> dict:
    """Raw `mj_step` rate on the env's own model and a copy of its (post-reset) data, in physics steps/s.

    `steps` env steps' worth of physics (`steps * substeps`), restarting from the post-reset state every
    `episode` env steps as the env does; timed both as one `nstep=substeps` call per env step and as one call
    per physics step.
    """
    start_state = copy.copy(data)
    rates = {}
    for key, nstep in (("raw_physics_steps_per_s", substeps), ("raw_physics_steps_per_s_single", 1)):
        calls_per_episode = episode * substeps // nstep
        remaining = steps * substeps // nstep
        mujoco.mj_step(model, copy.copy(start_state), nstep=nstep)  # warm-up
        elapsed = 0.0
        while remaining > 0:
            sim = copy.copy(start_state)
            calls = min(calls_per_episode, remaining)
            start = time.perf_counter()
            for _ in range(calls):
                mujoco.mj_step(model, sim, nstep=nstep)
            elapsed += time.perf_counter() - start
            remaining -= calls
        rates[key] = steps * substeps / elapsed
    return {**rates, "raw_physics_method": RAW_METHOD}


def base_result(name: str, env_id: str, peer_lib: str, peer_version: str, model: mujoco.MjModel) -> dict:
    return {
        "name": name,
        "env_id": env_id,
        "versions": {
            "mujoco": mujoco.__version__,
            peer_lib: peer_version,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "timestep": float(model.opt.timestep),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
    }
