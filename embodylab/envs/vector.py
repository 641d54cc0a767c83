"""Vectorised embodylab envs: `make_vec(id, num_envs, mode=...)` returns a Gymnasium `VectorEnv`.

Modes:
- `threads` (default): the envs live in this process and each `step` runs them on a pool of native
  threads. MuJoCo releases the GIL inside `mj_step`, so one thread's physics overlaps another's Python;
  no process start-up, no pickling, and no `__main__` guard needed. The Python part of each step (~10% for
  the lab tasks) still runs one thread at a time, which bounds the gain (about 1.5x on 2 cores).
- `processes` (the fastest for 2+ cores): the envs are split into `num_workers` contiguous chunks (default:
  one per CPU core); the calling process steps the first chunk itself and one worker process steps each of
  the others, Python included. Actions, observations, rewards, flags and infos pass through shared
  memory; each side spins briefly on a shared counter instead of sleeping, because waking an idle core
  costs more than the message itself on a virtual machine. About 1.5-1.8x on 2 cores here.
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
import pickle
import platform
import select
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from copy import deepcopy
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv
from gymnasium.vector.utils import batch_space, concatenate, iterate

from embodylab.envs.registry import entry

VECTOR_MODES = ("threads", "processes", "sync", "async")


def _finite_actions(actions) -> np.ndarray:
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
            actions = _finite_actions(actions)
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
            _copy_batch(self._observations) if self.copy else self._observations,
            np.copy(self._rewards),
            np.copy(self._terminations),
            np.copy(self._truncations),
            infos,
        )

    def close_extras(self, **kwargs: Any) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        super().close_extras(**kwargs)


def _copy_batch(observations):
    """A copy of a batch of observations (arrays, or dicts of them); `deepcopy` costs several times more."""
    if isinstance(observations, dict):
        return {key: _copy_batch(value) for key, value in observations.items()}
    if isinstance(observations, np.ndarray):
        return observations.copy()
    return deepcopy(observations)


_STORES_STAY_ORDERED = platform.machine().lower() in ("x86_64", "amd64", "x86", "i686")
"""x86 never reorders one core's stores as seen by another, so a counter written after the results
publishes them; elsewhere steps go through the pipe (its syscalls are full barriers)."""


def _shared_layout(observation_space, action_space, num_envs: int) -> dict | None:
    """Name -> (dtype, shape) of the step results that workers write into shared memory: actions,
    observations (a Box, or a Dict of Boxes), rewards, terminations, truncations. None for other spaces
    and off x86."""
    if not isinstance(action_space, spaces.Box) or not _STORES_STAY_ORDERED:
        return None
    layout = {
        # float64 whatever the space says: the envs then see exactly the values the caller passed.
        "actions": (np.dtype(np.float64), (num_envs, *action_space.shape)),
        "rewards": (np.dtype(np.float64), (num_envs,)),
        "terminations": (np.dtype(np.bool_), (num_envs,)),
        "truncations": (np.dtype(np.bool_), (num_envs,)),
    }
    if isinstance(observation_space, spaces.Box):
        layout["obs"] = (observation_space.dtype, (num_envs, *observation_space.shape))
    elif isinstance(observation_space, spaces.Dict) and all(
        isinstance(space, spaces.Box) for space in observation_space.values()
    ):
        for key, space in observation_space.items():
            layout[f"obs.{key}"] = (space.dtype, (num_envs, *space.shape))
    else:
        return None
    return layout


def _shared_arrays(buffers: dict, layout: dict) -> dict[str, np.ndarray]:
    return {
        name: np.frombuffer(buffers[name], dtype=dtype, count=int(np.prod(shape))).reshape(shape)
        for name, (dtype, shape) in layout.items()
    }


_SPIN_SECONDS = 0.002
"""How long a waiting side keeps polling before it sleeps. A process asleep in a syscall leaves its core
idle, and waking an idle core costs more than a step's worth of work on a virtual machine."""
_MIN_SPIN_SECONDS = 0.0001
"""The shortest spin of an idle worker before it sleeps."""
_WORKER_SLEEP_SECONDS = 0.01
"""Longest sleep of an idle worker between looks at its doorbell (bounds the cost of a missed wake-up)."""

_DOORBELL = b"S"
"""The one-byte pipe message that wakes a sleeping worker (other messages are pickled tuples, never this)."""
_GO, _DONE, _ASLEEP, _INFO_BYTES = range(4)
"""Slots of a worker's int64 control block in shared memory: steps ordered by the parent, steps done by the
worker, whether the worker sleeps on its pipe, and the length of its packed infos (-1: on the pipe)."""
_INFO_CAPACITY = 1 << 16
"""Bytes of shared memory per worker for its packed step infos; larger infos travel through the pipe."""

_fence_lock = threading.Lock()


def _memory_fence() -> None:
    """A full memory barrier on x86 (a lock round trip is an atomic read-modify-write): makes the
    'I am asleep' / 'step ordered' flags visible before the other side's flag is read."""
    with _fence_lock:
        pass


class _PipeWaiter:
    """Looks at one end of a pipe through one `select.poll` object made once (a connection's own `poll(0)`
    builds a selector per call and costs ~8x more), where the platform has one."""

    def __init__(self, remote):
        self.remote = remote
        self._poller = None
        if hasattr(select, "poll"):
            self._poller = select.poll()
            self._poller.register(remote.fileno(), select.POLLIN)

    def ready(self) -> bool:
        return bool(self._poller.poll(0)) if self._poller is not None else self.remote.poll(0)

    def wait(self) -> None:
        """Return once a message is there: poll without sleeping for `_SPIN_SECONDS`, then block."""
        deadline = time.perf_counter() + _SPIN_SECONDS
        while not self.ready():
            if time.perf_counter() > deadline:
                self.remote.poll(None)
                return


def _pack_infos(infos: dict):
    """Infos for transport: plain arrays as raw bytes (pickling ndarrays costs ~10x more), else the dict."""
    if all(isinstance(value, np.ndarray) and value.dtype != object for value in infos.values()):
        return tuple((key, value.dtype.str, value.shape, value.tobytes()) for key, value in infos.items())
    return infos


def _unpack_infos(packed) -> dict:
    if isinstance(packed, dict):
        return packed
    return {key: np.frombuffer(raw, dtype=dtype).reshape(shape).copy() for key, dtype, shape, raw in packed}


def _step_into_shared(envs, shared: dict, chunk: slice) -> dict:
    """Step `envs` on their actions in shared memory, write the results there and return the infos."""
    obs, rewards, terminations, truncations, infos = envs.step(shared["actions"][chunk])
    if isinstance(obs, dict):
        for key, value in obs.items():
            shared[f"obs.{key}"][chunk] = value
    else:
        shared["obs"][chunk] = obs
    shared["rewards"][chunk] = rewards
    shared["terminations"][chunk] = terminations
    shared["truncations"][chunk] = truncations
    return infos


def _serve_shared_step(remote, envs, shared: dict, chunk: slice, control: np.ndarray, info_out: np.ndarray):
    """One step ordered through the control block: results and packed infos into shared memory (errors and
    oversized infos onto the pipe as the usual ("error" | "ok", payload) reply), then DONE, written last."""
    try:
        infos = _pack_infos(_step_into_shared(envs, shared, chunk))
        packed = pickle.dumps(infos, pickle.HIGHEST_PROTOCOL)
        if len(packed) <= len(info_out):
            info_out[: len(packed)] = np.frombuffer(packed, dtype=np.uint8)
            control[_INFO_BYTES] = len(packed)
        else:
            remote.send(("ok", infos))
            control[_INFO_BYTES] = -1
    except Exception as exc:  # the env is unchanged after a rejected action: keep serving
        remote.send(("error", (exc, traceback.format_exc())))
        control[_INFO_BYTES] = -1
    control[_DONE] = control[_GO]


def _chunk_worker(
    remote,
    parent_remote,
    env_fns,
    autoreset_mode: str,
    chunk: slice,
    buffers,
    layout,
    control_buffer,
    info_buffer,
) -> None:
    """Serve one chunk of envs. Steps are ordered through shared memory (see `_DOORBELL`'s neighbours); other
    requests come as pickled ("reset", kwargs) / ("step", actions) / ("close", None) and get pipe replies."""
    parent_remote.close()
    envs = ThreadedVectorEnv(env_fns, num_threads=1, copy=False, autoreset_mode=autoreset_mode)
    shared = _shared_arrays(buffers, layout) if layout is not None else None
    control = np.frombuffer(control_buffer, dtype=np.int64)
    info_out = np.frombuffer(info_buffer, dtype=np.uint8)
    waiter = _PipeWaiter(remote)
    idle_since = time.perf_counter()
    # Spin about three times the usual pause between steps, at most _SPIN_SECONDS, and hardly at all after a
    # pause longer than that: a caller that trains between steps (gradient updates) then finds its cores
    # free instead of shared with a spinning worker.
    spin_seconds, typical_pause = _SPIN_SECONDS, 0.0
    try:
        while True:
            if control[_GO] != control[_DONE]:
                pause = time.perf_counter() - idle_since
                if pause < _SPIN_SECONDS:
                    typical_pause = max(pause, 0.95 * typical_pause)  # a slowly forgetting maximum
                    spin_seconds = min(_SPIN_SECONDS, max(_MIN_SPIN_SECONDS, 3.0 * typical_pause))
                else:  # a pause no spin would have bridged: sleep early next time
                    spin_seconds = _MIN_SPIN_SECONDS
                _serve_shared_step(remote, envs, shared, chunk, control, info_out)
                idle_since = time.perf_counter()
            elif waiter.ready():
                message = remote.recv_bytes()
                if message == _DOORBELL:
                    continue
                command, payload = pickle.loads(message)
                if command == "close":
                    break
                try:
                    result = envs.step(payload) if command == "step" else envs.reset(**payload)
                    remote.send(("ok", result))
                except Exception as exc:  # the env is unchanged after a rejected action: keep serving
                    remote.send(("error", (exc, traceback.format_exc())))
                idle_since = time.perf_counter()
            elif time.perf_counter() - idle_since > spin_seconds:
                control[_ASLEEP] = 1
                _memory_fence()
                if control[_GO] == control[_DONE]:
                    remote.poll(_WORKER_SLEEP_SECONDS)  # the parent rings when it sees ASLEEP
                control[_ASLEEP] = 0
    finally:
        envs.close()
        remote.close()


def _obs_rows(observations, rows: slice):
    """A copy of rows of a batch of observations (an array, or a dict of arrays)."""
    if isinstance(observations, dict):
        return {key: value[rows].copy() for key, value in observations.items()}
    return observations[rows].copy()


def _concatenate_chunks(parts: list):
    """Concatenate chunk observations (arrays, or dicts of arrays) along the env axis."""
    if isinstance(parts[0], dict):
        return {key: _concatenate_chunks([part[key] for part in parts]) for key in parts[0]}
    return np.concatenate(parts)


def _merge_chunk_infos(parts: list[dict], sizes: list[int]) -> dict:
    """One vector info dict from per-chunk vector info dicts, with the layout `VectorEnv._add_info` gives:
    `info[key]` holds one entry per env and `info["_" + key]` marks the envs that reported `key`."""
    keys = list(parts[0])
    if all(list(part) == keys for part in parts) and all(
        isinstance(value, np.ndarray) and value.dtype != object for part in parts for value in part.values()
    ):  # the usual step: every chunk reports the same keys as arrays
        return {key: np.concatenate([part[key] for part in parts]) for key in keys}
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
    """`num_envs` envs split into `num_workers` contiguous chunks: the calling process steps the first chunk
    itself and one worker process steps each of the others, all at once.

    Python (control, observations, rewards) runs in parallel too, not only the physics. Actions and step
    results of Box (or Dict-of-Box) spaces travel through shared memory, so a step costs one short message
    per worker; while a step is due, both sides poll their pipe for a moment instead of sleeping, because
    waking an idle core costs more than the message itself on a virtual machine.

    Env i gets seed `seed + i` and the same auto-reset semantics as in `SyncVectorEnv`, so trajectories
    equal `num_envs` separately seeded envs. Workers start as fresh interpreters (`forkserver`, else
    `spawn`; `context` overrides), so a script that makes one needs the `if __name__ == "__main__":` guard,
    as with Gymnasium's `AsyncVectorEnv` under spawn. Non-finite actions are refused before any env moves;
    other errors raised in a worker are re-raised here with the worker's traceback attached, and the worker
    keeps serving."""

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

        # The first chunk lives here: this process would otherwise sit idle while the workers step.
        self._local = ThreadedVectorEnv(
            env_fns[self._chunks[0]], num_threads=1, copy=False, autoreset_mode=self.autoreset_mode
        )
        self.single_observation_space = self._local.single_observation_space
        self.single_action_space = self._local.single_action_space
        self.metadata = {**self._local.metadata, "autoreset_mode": self.autoreset_mode}
        self.spec, self.render_mode = self._local.spec, self._local.render_mode
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        # Forked workers run ~20% slower here (copy-on-write faults on the parent's Python objects) and fork
        # a process that may hold threads; a fresh interpreter per worker avoids both.
        if context is None:
            context = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        ctx = multiprocessing.get_context(context)
        # Step results travel through shared memory (one copy out per step), not through pickles.
        layout = _shared_layout(self.single_observation_space, self.single_action_space, self.num_envs)
        buffers = None
        self._shared = None
        if layout is not None:
            buffers = {
                name: ctx.RawArray("b", max(1, dtype.itemsize * int(np.prod(shape))))
                for name, (dtype, shape) in layout.items()
            }
            self._shared = _shared_arrays(buffers, layout)
        self._remotes, self._processes = [], []
        self._controls, self._info_buffers = [], []
        for chunk in self._chunks[1:]:
            remote, worker_remote = ctx.Pipe()
            control_buffer = ctx.RawArray("q", 4)
            info_buffer = ctx.RawArray("B", _INFO_CAPACITY)
            self._controls.append(np.frombuffer(control_buffer, dtype=np.int64))
            self._info_buffers.append(np.frombuffer(info_buffer, dtype=np.uint8))
            process = ctx.Process(
                target=_chunk_worker,
                args=(
                    worker_remote,
                    remote,
                    env_fns[chunk],
                    self.autoreset_mode.value,
                    chunk,
                    buffers,
                    layout,
                    control_buffer,
                    info_buffer,
                ),
                daemon=True,
                name=f"embodylab-envs-{chunk.start}-{chunk.stop - 1}",
            )
            process.start()
            worker_remote.close()
            self._remotes.append(remote)
            self._processes.append(process)
        self._waiters = {remote: _PipeWaiter(remote) for remote in self._remotes}
        self._closed_workers = False
        self._chunk_obs: list = [None] * len(self._chunks)

    def _receive(self, remote) -> tuple[str, Any]:
        """The next ("ok" | "error", payload) reply of a worker; a dead worker raises RuntimeError."""
        try:
            self._waiters[remote].wait()
            return remote.recv()
        except (EOFError, ConnectionError) as exc:
            error = self._worker_died(self._remotes.index(remote))
            error.add_note(
                'A script that makes a processes-mode vector env needs the `if __name__ == "__main__":` '
                "guard; the worker's own error, if any, is printed above."
            )
            raise error from exc

    @staticmethod
    def _raise_errors(local_error: BaseException | None, worker_error: tuple | None) -> None:
        """Raise this process's error, else the first worker's with its traceback attached."""
        if local_error is not None:
            raise local_error
        if worker_error is not None:
            exc, worker_traceback = worker_error
            exc.add_note(f"raised in an embodylab vector worker process:\n{worker_traceback}")
            raise exc

    def _gather(self, remotes: list, local_error: BaseException | None = None) -> list:
        results, error = [], None
        for remote in remotes:  # receive from every worker before raising, so no reply is left queued
            status, payload = self._receive(remote)
            if status == "error":
                error = error or payload
            results.append(payload)
        self._raise_errors(local_error, error)
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
        requests = {}
        for c, chunk in enumerate(self._chunks):
            chunk_options = dict(options)
            if reset_mask is not None:
                if not np.any(reset_mask[chunk]):
                    continue  # SyncVectorEnv refuses an all-False mask; this chunk keeps its state
                chunk_options["reset_mask"] = np.asarray(reset_mask[chunk])
            requests[c] = {"seed": seeds[chunk], "options": chunk_options or None}
        asked = [c for c in requests if c > 0]
        for c in asked:
            self._remotes[c - 1].send(("reset", requests[c]))
        replies, local_error = {}, None
        if 0 in requests:
            try:
                replies[0] = self._local.reset(**requests[0])
            except Exception as exc:  # the workers' replies are still collected first
                local_error = exc
        replies.update(
            zip(asked, self._gather([self._remotes[c - 1] for c in asked], local_error), strict=True)
        )
        for c, (obs, _) in replies.items():
            self._chunk_obs[c] = _copy_batch(obs)
        infos = [replies[c][1] if c in replies else {} for c in range(len(self._chunks))]
        return _concatenate_chunks(self._chunk_obs), _merge_chunk_infos(infos, self._sizes)

    def step(self, actions):
        actions = _finite_actions(actions)
        if self._shared is not None:
            return self._step_shared(actions)
        for chunk, remote in zip(self._chunks[1:], self._remotes, strict=True):
            remote.send(("step", actions[chunk]))
        local, local_error = None, None
        try:
            local = self._local.step(actions[self._chunks[0]])
        except Exception as exc:
            local_error = exc
        results = [local, *self._gather(self._remotes, local_error)]
        self._chunk_obs = [_copy_batch(r[0]) for r in results]
        observations = _concatenate_chunks(self._chunk_obs)
        rewards, terminations, truncations = (np.concatenate([r[k] for r in results]) for k in (1, 2, 3))
        return (
            observations,
            rewards,
            terminations,
            truncations,
            _merge_chunk_infos([r[4] for r in results], self._sizes),
        )

    def _step_shared(self, actions: np.ndarray):
        shared = self._shared
        if actions.shape != shared["actions"].shape:
            raise ValueError(f"actions have shape {actions.shape}; expected {shared['actions'].shape}")
        np.copyto(shared["actions"], actions, casting="unsafe")
        for control, remote in zip(self._controls, self._remotes, strict=True):
            control[_GO] += 1
            _memory_fence()
            if control[_ASLEEP]:
                try:
                    remote.send_bytes(_DOORBELL)
                except OSError as exc:  # BrokenPipeError: the worker is gone
                    raise self._worker_died(self._remotes.index(remote)) from exc
        local_infos, local_error = {}, None
        try:
            local_infos = _step_into_shared(self._local, shared, self._chunks[0])
        except Exception as exc:
            local_error = exc
        replies, error = [], None
        for w, control in enumerate(self._controls):  # every worker's reply first, so none is left queued
            self._wait_done(w)
            size = int(control[_INFO_BYTES])
            if size >= 0:
                replies.append(pickle.loads(self._info_buffers[w][:size].tobytes()))
                continue
            status, payload = self._receive(self._remotes[w])  # an error, or infos too large for the buffer
            if status == "error":
                error = error or payload
            replies.append(payload if status == "ok" else {})
        self._raise_errors(local_error, error)
        infos = [local_infos, *map(_unpack_infos, replies)]
        if "obs" in shared:
            observations = shared["obs"].copy()
        else:
            observations = {key: shared[f"obs.{key}"].copy() for key in self.single_observation_space}
        # A partial reset() returns these rows for the chunks it does not reset.
        self._chunk_obs = [_obs_rows(observations, chunk) for chunk in self._chunks]
        return (
            observations,
            shared["rewards"].copy(),
            shared["terminations"].copy(),
            shared["truncations"].copy(),
            _merge_chunk_infos(infos, self._sizes),
        )

    def _wait_done(self, w: int) -> None:
        """Wait until worker w has done the step ordered last: spin for `_SPIN_SECONDS`, then nap in short
        sleeps, checking now and then that the worker is alive."""
        control = self._controls[w]
        deadline = time.perf_counter() + _SPIN_SECONDS
        naps = 0
        while control[_DONE] != control[_GO]:
            if time.perf_counter() < deadline:
                continue
            time.sleep(0.0001)
            naps += 1
            if naps % 100 == 0 and not self._processes[w].is_alive():
                raise self._worker_died(w)

    def _worker_died(self, w: int) -> RuntimeError:
        process = self._processes[w]
        process.join(timeout=1)
        return RuntimeError(
            f"vector worker process {process.name} died (exit code {process.exitcode}); this vector env "
            "cannot step any more: close it and make a new one"
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
        self._local.close()


def make_vec(
    env_id: str,
    num_envs: int,
    mode: str = "threads",
    num_workers: int | None = None,
    autoreset_mode: str = "NextStep",
    **env_kwargs: Any,
) -> gym.vector.VectorEnv:
    """A `VectorEnv` of `num_envs` copies of `env_id` built with `env_kwargs` (see the module docstring).

    `num_workers`, the threads (threads mode) or chunks (processes mode: the calling process plus
    `num_workers - 1` worker processes) that step the envs, defaults to the number of CPU cores."""
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
