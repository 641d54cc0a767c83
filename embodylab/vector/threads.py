"""`threads` mode: the envs live in this process and each `step` runs them on a pool of native threads.

MuJoCo releases the GIL inside `mj_step`, so one thread's physics overlaps another's Python; no process
start-up, no pickling, and no `__main__` guard needed. The Python part of each step (~10% for the lab
tasks) still runs one thread at a time, which bounds the gain (about 1.5x on 2 cores).
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from copy import deepcopy
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.vector.utils import concatenate, iterate


def finite_actions(actions) -> np.ndarray:
    """`actions` as an array; non-finite entries raise ValueError naming (env, entry) before any env moves."""
    actions = np.asarray(actions)
    if actions.dtype.kind in "fc" and not np.isfinite(actions).all():
        bad = [tuple(map(int, index)) for index in np.argwhere(~np.isfinite(actions))[:8]]
        raise ValueError(
            f"actions hold non-finite entries at (env, entry) {bad}; every entry must be finite (no env was "
            "stepped)"
        )
    return actions


class ThreadedVectorEnv(SyncVectorEnv):
    """`SyncVectorEnv` whose `step` runs the envs on `num_threads` native threads, the caller's included.

    Threads take the next unstepped env from a shared counter, so a slow env (a contact-rich step, an
    auto-reset) does not hold the others back; each writes its env's observation straight into the batch.
    Non-finite actions are refused before any env moves. Results, info merging and auto-reset are exactly
    `SyncVectorEnv`'s; only the wall-clock order in which envs advance differs, and envs share no state,
    so trajectories are identical."""

    def __init__(self, env_fns, num_threads: int | None = None, **kwargs: Any):
        super().__init__(env_fns, **kwargs)
        self.num_threads = max(1, min(num_threads or os.cpu_count() or 1, self.num_envs))
        self._pool = (
            ThreadPoolExecutor(max_workers=self.num_threads - 1, thread_name_prefix="embodylab-env")
            if self.num_threads > 1
            else None
        )
        self._env_infos: list[dict] = [{} for _ in range(self.num_envs)]
        self._final: list[tuple | None] = [None] * self.num_envs
        # Each env writes its observation straight into its row of the batch as soon as it has one: the
        # batch is never assembled afterwards.
        space = self.single_observation_space
        if isinstance(space, spaces.Box):
            self._write_obs = self._write_array_obs
        elif isinstance(space, spaces.Dict) and all(isinstance(s, spaces.Box) for s in space.values()):
            self._write_obs = self._write_dict_obs
        else:
            self._write_obs = None

    def _write_array_obs(self, i: int, obs: np.ndarray) -> None:
        self._observations[i] = obs

    def _write_dict_obs(self, i: int, obs: dict) -> None:
        for key, batch in self._observations.items():
            batch[i] = obs[key]

    def _step_env(self, i: int, action) -> None:
        env = self.envs[i]
        self._final[i] = None
        if self.autoreset_mode == AutoresetMode.NEXT_STEP and self._autoreset_envs[i]:
            self._env_obs[i], self._env_infos[i] = env.reset()
            self._rewards[i], self._terminations[i], self._truncations[i] = 0.0, False, False
        else:
            if self.autoreset_mode == AutoresetMode.DISABLED:
                assert not self._autoreset_envs[i], f"{self._autoreset_envs=}"
            obs, reward, terminated, truncated, info = env.step(action)
            self._env_obs[i], self._rewards[i] = obs, reward
            self._terminations[i], self._truncations[i] = terminated, truncated
            self._env_infos[i] = info
            if self.autoreset_mode == AutoresetMode.SAME_STEP and (terminated or truncated):
                self._final[i] = (obs, info)
                self._env_obs[i], self._env_infos[i] = env.reset()
        if self._write_obs is not None:
            self._write_obs(i, self._env_obs[i])

    def _drain(self, counter: itertools.count, actions) -> None:
        # next() on a shared itertools.count is atomic under the GIL: each env is stepped exactly once.
        while (i := next(counter)) < self.num_envs:
            self._step_env(i, actions[i])

    def _merged_infos(self) -> dict:
        """The vector info dict, exactly as `SyncVectorEnv` builds it with `_add_info`; when every env
        reports the same keys with plain scalars (the usual step), one array per key instead of one
        `_add_info` call per env."""
        infos = self._env_infos
        keys = tuple(infos[0])
        plain = all(f is None for f in self._final) and all(tuple(info) == keys for info in infos)
        if plain:
            merged: dict = {}
            for key in keys:
                kind = type(infos[0][key])
                if kind not in (bool, int, float) or any(type(info[key]) is not kind for info in infos):
                    plain = False
                    break
                merged[key] = np.array([info[key] for info in infos], dtype=kind)
                merged[f"_{key}"] = np.ones(self.num_envs, dtype=np.bool_)
            if plain:
                return merged
        merged = {}
        for i in range(self.num_envs):
            if self._final[i] is not None:
                final_obs, final_info = self._final[i]
                merged = self._add_info(merged, {"final_obs": final_obs, "final_info": final_info}, i)
            merged = self._add_info(merged, infos[i], i)
        return merged

    def step(self, actions):
        if isinstance(self.action_space, spaces.Box):
            actions = finite_actions(actions)
        else:
            actions = list(iterate(self.action_space, actions))
        counter = itertools.count()
        futures = (
            [self._pool.submit(self._drain, counter, actions) for _ in range(self.num_threads - 1)]
            if self._pool
            else []
        )
        self._drain(counter, actions)
        for future in futures:
            future.result()  # re-raises an env's exception here, in the caller's thread

        infos = self._merged_infos()
        if self._write_obs is None:
            self._observations = concatenate(self.single_observation_space, self._env_obs, self._observations)
        self._autoreset_envs = np.logical_or(self._terminations, self._truncations)
        return (
            copy_batch(self._observations) if self.copy else self._observations,
            np.copy(self._rewards),
            np.copy(self._terminations),
            np.copy(self._truncations),
            infos,
        )

    def close_extras(self, **kwargs: Any) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        super().close_extras(**kwargs)


def copy_batch(observations):
    """A copy of a batch of observations (arrays, or dicts of them); `deepcopy` costs several times more."""
    if isinstance(observations, dict):
        return {key: copy_batch(value) for key, value in observations.items()}
    if isinstance(observations, np.ndarray):
        return observations.copy()
    return deepcopy(observations)
