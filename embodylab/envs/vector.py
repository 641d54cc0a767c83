"""Vectorised embodylab envs: `make_vec(id, num_envs, mode=...)` returns a Gymnasium `VectorEnv`.

Modes:
- `threads` (default): the envs live in this process and each `step` runs them on a pool of native
  threads. MuJoCo releases the GIL inside `mj_step`, so one thread's physics overlaps another's Python;
  on 2 cores this nearly doubles throughput without the pickling and process start-up of `async`.
- `processes`: the envs are split into one contiguous chunk per worker process (default: one per CPU
  core); each worker steps its chunk as a `SyncVectorEnv`. Python (control, observations, rewards) runs in
  parallel too, not only the physics, and a step costs one message round trip per worker, not per env.
- `sync`: Gymnasium's `SyncVectorEnv` (one env after another, the reference semantics).
- `async`: Gymnasium's `AsyncVectorEnv` (one process per env).

All modes follow Gymnasium's vector API, auto-reset included (`autoreset_mode`, default NEXT_STEP: the
step after an episode ends resets that env and ignores its action). Seeding `reset(seed=s)` seeds env i
with s + i, so a vector env reproduces `num_envs` separately seeded envs exactly.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import multiprocessing
import os
import traceback
from concurrent.futures import ThreadPoolExecutor
from copy import deepcopy
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv
from gymnasium.vector.utils import batch_space, concatenate, iterate

from embodylab.envs.registry import entry

VECTOR_MODES = ("threads", "processes", "sync", "async")


class ThreadedVectorEnv(SyncVectorEnv):
    """`SyncVectorEnv` whose `step` runs the envs on `num_threads` native threads, the caller's included.

    Threads take the next unstepped env from a shared counter, so a slow env (a contact-rich step, an
    auto-reset) does not hold the others back. Results, info merging and auto-reset are exactly
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

    def _step_env(self, i: int, action) -> None:
        env = self.envs[i]
        self._final[i] = None
        if self.autoreset_mode == AutoresetMode.NEXT_STEP and self._autoreset_envs[i]:
            self._env_obs[i], self._env_infos[i] = env.reset()
            self._rewards[i], self._terminations[i], self._truncations[i] = 0.0, False, False
            return
        if self.autoreset_mode == AutoresetMode.DISABLED:
            assert not self._autoreset_envs[i], f"{self._autoreset_envs=}"
        obs, reward, terminated, truncated, info = env.step(action)
        self._env_obs[i], self._rewards[i] = obs, reward
        self._terminations[i], self._truncations[i] = terminated, truncated
        self._env_infos[i] = info
        if self.autoreset_mode == AutoresetMode.SAME_STEP and (terminated or truncated):
            self._final[i] = (obs, info)
            self._env_obs[i], self._env_infos[i] = env.reset()

    def _drain(self, counter: itertools.count, actions: list) -> None:
        # next() on a shared itertools.count is atomic under the GIL: each env is stepped exactly once.
        while (i := next(counter)) < self.num_envs:
            self._step_env(i, actions[i])

    def step(self, actions):
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

        infos: dict = {}
        for i in range(self.num_envs):
            if self._final[i] is not None:
                final_obs, final_info = self._final[i]
                infos = self._add_info(infos, {"final_obs": final_obs, "final_info": final_info}, i)
            infos = self._add_info(infos, self._env_infos[i], i)
        self._observations = concatenate(self.single_observation_space, self._env_obs, self._observations)
        self._autoreset_envs = np.logical_or(self._terminations, self._truncations)
        return (
            deepcopy(self._observations) if self.copy else self._observations,
            np.copy(self._rewards),
            np.copy(self._terminations),
            np.copy(self._truncations),
            infos,
        )

    def close_extras(self, **kwargs: Any) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        super().close_extras(**kwargs)


def _chunk_worker(remote, parent_remote, env_fns, autoreset_mode: str) -> None:
    """Serve one chunk of envs as a `SyncVectorEnv`: ("reset", kwargs) / ("step", actions) / ("close", None)."""
    parent_remote.close()
    envs = SyncVectorEnv(env_fns, copy=False, autoreset_mode=autoreset_mode)
    try:
        while True:
            command, payload = remote.recv()
            if command == "close":
                break
            try:
                result = envs.step(payload) if command == "step" else envs.reset(**payload)
                remote.send(("ok", result))
            except Exception as exc:  # the env is unchanged after a rejected action: keep serving
                remote.send(("error", (exc, traceback.format_exc())))
    finally:
        envs.close()
        remote.close()


def _concatenate_chunks(parts: list):
    """Concatenate chunk observations (arrays, or dicts of arrays) along the env axis."""
    if isinstance(parts[0], dict):
        return {key: _concatenate_chunks([part[key] for part in parts]) for key in parts[0]}
    return np.concatenate(parts)


def _merge_chunk_infos(parts: list[dict], sizes: list[int]) -> dict:
    """One vector info dict from per-chunk vector info dicts, with the layout `VectorEnv._add_info` gives:
    `info[key]` holds one entry per env and `info["_" + key]` marks the envs that reported `key`."""
    total, merged = sum(sizes), {}
    keys = dict.fromkeys(key for part in parts for key in part if not key.startswith("_"))
    offsets = np.cumsum([0, *sizes])
    for key in keys:
        present = [(part[key], offsets[c], sizes[c]) for c, part in enumerate(parts) if key in part]
        first = present[0][0]
        if isinstance(first, dict):
            merged[key] = _merge_chunk_infos([part.get(key, {}) for part in parts], sizes)
        else:
            if first.dtype == object:
                array = np.full(total, None, dtype=object)
            else:
                array = np.zeros((total, *first.shape[1:]), dtype=first.dtype)
            for value, start, size in present:
                array[start : start + size] = value
            merged[key] = array
        mask = np.zeros(total, dtype=np.bool_)
        for c, part in enumerate(parts):
            if f"_{key}" in part:
                mask[offsets[c] : offsets[c] + sizes[c]] = part[f"_{key}"]
        merged[f"_{key}"] = mask
    return merged


class ProcessVectorEnv(VectorEnv):
    """`num_envs` envs in `num_workers` processes, each stepping a contiguous chunk as a `SyncVectorEnv`.

    Env i gets seed `seed + i` and the same auto-reset semantics as in `SyncVectorEnv`, so trajectories
    equal `num_envs` separately seeded envs. Workers start as fresh interpreters (`forkserver`, else
    `spawn`; `context` overrides), so a script that makes one needs the `if __name__ == "__main__":` guard,
    as with Gymnasium's `AsyncVectorEnv` under spawn. Errors raised in a worker (a NaN action, say) are re-raised
    here with the worker's traceback attached; the worker keeps serving."""

    def __init__(
        self,
        env_fns,
        num_workers: int | None = None,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        context: str | None = None,
    ):
        self.num_envs = len(env_fns)
        num_workers = max(1, min(num_workers or os.cpu_count() or 1, self.num_envs))
        bounds = np.linspace(0, self.num_envs, num_workers + 1).round().astype(int)
        self._chunks = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        self._sizes = [c.stop - c.start for c in self._chunks]
        self.autoreset_mode = AutoresetMode(autoreset_mode)

        probe = env_fns[0]()
        self.single_observation_space, self.single_action_space = probe.observation_space, probe.action_space
        self.metadata = {**probe.metadata, "autoreset_mode": self.autoreset_mode}
        self.spec, self.render_mode = probe.spec, probe.render_mode
        probe.close()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        # Forked workers run ~20% slower here (copy-on-write faults on the parent's Python objects) and fork
        # a process that may hold threads; a fresh interpreter per worker avoids both.
        if context is None:
            context = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        ctx = multiprocessing.get_context(context)
        self._remotes, self._processes = [], []
        for chunk in self._chunks:
            remote, worker_remote = ctx.Pipe()
            process = ctx.Process(
                target=_chunk_worker,
                args=(worker_remote, remote, env_fns[chunk], self.autoreset_mode.value),
                daemon=True,
                name=f"embodylab-envs-{chunk.start}-{chunk.stop - 1}",
            )
            process.start()
            worker_remote.close()
            self._remotes.append(remote)
            self._processes.append(process)
        self._closed_workers = False
        self._chunk_obs: list = [None] * len(self._chunks)

    def _gather(self, remotes: list) -> list:
        results, error = [], None
        for remote in remotes:  # receive from every worker before raising, so no reply is left queued
            status, payload = remote.recv()
            if status == "error":
                error = error or payload
            results.append(payload)
        if error is not None:
            exc, worker_traceback = error
            exc.add_note(f"raised in an embodylab vector worker process:\n{worker_traceback}")
            raise exc
        return results

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict | None = None):
        if seed is None or isinstance(seed, int):
            seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"got {len(seeds)} seeds for {self.num_envs} envs")
        options = dict(options or {})
        reset_mask = options.pop("reset_mask", None)
        asked = []
        for c, (chunk, remote) in enumerate(zip(self._chunks, self._remotes, strict=True)):
            chunk_options = dict(options)
            if reset_mask is not None:
                if not np.any(reset_mask[chunk]):
                    continue  # SyncVectorEnv refuses an all-False mask; this chunk keeps its state
                chunk_options["reset_mask"] = np.asarray(reset_mask[chunk])
            remote.send(("reset", {"seed": seeds[chunk], "options": chunk_options or None}))
            asked.append(c)
        replies = dict(zip(asked, self._gather([self._remotes[c] for c in asked]), strict=True))
        for c, (obs, _) in replies.items():
            self._chunk_obs[c] = obs
        infos = [replies[c][1] if c in replies else {} for c in range(len(self._chunks))]
        return _concatenate_chunks(self._chunk_obs), _merge_chunk_infos(infos, self._sizes)

    def step(self, actions):
        actions = np.asarray(actions)
        for chunk, remote in zip(self._chunks, self._remotes, strict=True):
            remote.send(("step", actions[chunk]))
        results = self._gather(self._remotes)
        self._chunk_obs = [r[0] for r in results]
        observations = _concatenate_chunks(self._chunk_obs)
        rewards, terminations, truncations = (np.concatenate([r[k] for r in results]) for k in (1, 2, 3))
        return (
            observations,
            rewards,
            terminations,
            truncations,
            _merge_chunk_infos([r[4] for r in results], self._sizes),
        )

    def close_extras(self, **kwargs: Any) -> None:
        if self._closed_workers:
            return
        self._closed_workers = True
        for remote in self._remotes:
            with contextlib.suppress(BrokenPipeError, OSError):  # a worker that already died
                remote.send(("close", None))
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
        for remote in self._remotes:
            remote.close()


def make_vec(
    env_id: str,
    num_envs: int,
    mode: str = "threads",
    num_workers: int | None = None,
    autoreset_mode: str = "NextStep",
    **env_kwargs: Any,
) -> gym.vector.VectorEnv:
    """A `VectorEnv` of `num_envs` copies of `env_id` built with `env_kwargs` (see the module docstring).

    `num_workers`, the threads (threads mode) or processes (processes mode) that step the envs, defaults
    to the number of CPU cores."""
    if mode not in VECTOR_MODES:
        raise ValueError(f"unknown vector mode {mode!r}; valid modes: {', '.join(map(repr, VECTOR_MODES))}")
    if int(num_envs) < 1:
        raise ValueError(f"num_envs must be at least 1; got {num_envs}")
    full_id = entry(env_id).id
    # Gymnasium's passive checker wraps every step of every copy; the single-env tests already run it.
    env_kwargs.setdefault("disable_env_checker", True)

    # A partial of gym.make, not a closure: worker processes may need to pickle it.
    env_fns = [functools.partial(gym.make, full_id, **env_kwargs)] * int(num_envs)
    if mode == "threads":
        return ThreadedVectorEnv(env_fns, num_threads=num_workers, autoreset_mode=autoreset_mode)
    if mode == "processes":
        return ProcessVectorEnv(env_fns, num_workers=num_workers, autoreset_mode=autoreset_mode)
    if mode == "sync":
        return SyncVectorEnv(env_fns, autoreset_mode=autoreset_mode)
    return AsyncVectorEnv(env_fns, autoreset_mode=autoreset_mode)
